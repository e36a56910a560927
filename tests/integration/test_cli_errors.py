"""Bad input gets one line naming the value and what is allowed, a non-zero exit, no traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ..conftest import run_mnmcu, tensorflow_int8


def one_error_line(result, *fragments: str, code: int | None = None) -> str:
    assert result.returncode != 0, result.stdout + result.stderr
    if code is not None:
        assert result.returncode == code
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    (line,) = lines
    assert line.startswith("error: ")
    for fragment in fragments:
        assert fragment in line, line
    return line


@pytest.mark.parametrize(
    ("value", "fragment"),
    [("0", "alpha 0 "), ("-1", "alpha -1 "), ("2", "alpha 2 "), ("abc", "alpha 'abc'")],
)
def test_bad_alpha(tmp_path: Path, value: str, fragment: str) -> None:
    result = run_mnmcu("model", "--alpha", value, "--out", str(tmp_path / "m"))
    one_error_line(result, fragment, "(0, 1.4]", code=2)
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("value", ["0", "1.5"])
def test_bad_rho(tmp_path: Path, value: str) -> None:
    result = run_mnmcu("model", "--rho", value, "--out", str(tmp_path / "m"))
    one_error_line(result, f"rho {value}", "(0, 1]", code=2)


def test_bad_resolution(tmp_path: Path) -> None:
    result = run_mnmcu("model", "--resolution", "8", "--out", str(tmp_path / "m"))
    one_error_line(result, "resolution 8", "32 to 1024", code=2)


def test_bad_classes(tmp_path: Path) -> None:
    result = run_mnmcu("model", "--classes", "1", "--out", str(tmp_path / "m"))
    one_error_line(result, "classes 1", "at least 2", code=2)


def test_unknown_board_suggests(tmp_path: Path) -> None:
    result = run_mnmcu("build", "--board", "esp32-s3")
    one_error_line(result, "'esp32-s3'", "esp32s3", code=2)


def test_unknown_option_is_one_line() -> None:
    result = run_mnmcu("model", "--alhpa", "0.5", "--out", "x")
    one_error_line(result, "--alhpa", "--help", code=2)


def test_missing_data_folder(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = run_mnmcu("build", "--board", "qemu-m4", "--data", str(missing))
    one_error_line(result, str(missing))


def test_empty_data_folder(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    result = run_mnmcu("build", "--board", "qemu-m4", "--data", str(tmp_path / "data"))
    one_error_line(result, str(tmp_path / "data"))


def test_class_folder_without_images(tmp_path: Path) -> None:
    from PIL import Image

    data = tmp_path / "data"
    (data / "cat").mkdir(parents=True)
    (data / "dog").mkdir()
    (data / "dog" / "notes.txt").write_text("no images here")
    for i in range(3):
        Image.new("RGB", (40, 40), (i * 40, 0, 0)).save(data / "cat" / f"{i}.png")
    result = run_mnmcu("build", "--board", "qemu-m4", "--data", str(data))
    one_error_line(result, "dog")


def test_output_folder_with_files_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("the user's file")
    result = run_mnmcu("model", "--out", str(out))
    one_error_line(result, str(out), "mine.txt", "--force")
    assert (out / "mine.txt").read_text() == "the user's file"


def test_not_a_tflite_file(tmp_path: Path) -> None:
    bogus = tmp_path / "model.tflite"
    bogus.write_bytes(b"\x00" * 64)
    result = run_mnmcu("analyze", str(bogus))
    one_error_line(result, str(bogus), "TFLite")


def _convert(model, int8: bool) -> bytes:
    import tensorflow as tf

    from mnmcu.log import captured_output

    with captured_output("converter"):
        if int8:
            rng = np.random.default_rng(0)
            samples = (rng.uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32) for _ in range(8))
            return tensorflow_int8(model, samples)
        return bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())


@pytest.fixture(scope="module")
def odd_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A float MobileNet-like .tflite, and an int8 one with ops no MobileNet has."""
    import keras

    root = tmp_path_factory.mktemp("odd")
    inp = keras.Input(shape=(32, 32, 3), batch_size=1)
    x = keras.layers.Conv2D(8, 3, activation="relu")(inp)
    out = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    (root / "float.tflite").write_bytes(_convert(keras.Model(inp, out), int8=False))
    y = keras.layers.Subtract()([x, keras.layers.Conv2D(8, 1)(x)])
    z = keras.layers.Maximum()([y, x])
    out2 = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(z))
    (root / "odd.tflite").write_bytes(_convert(keras.Model(inp, out2), int8=True))
    return {"float": root / "float.tflite", "odd": root / "odd.tflite"}


@pytest.mark.slow
def test_float_model_is_refused(odd_models: dict[str, Path]) -> None:
    result = run_mnmcu("analyze", str(odd_models["float"]))
    one_error_line(result, str(odd_models["float"]), "not a full-int8 model", "mnmcu quantize")


@pytest.mark.slow
def test_unsupported_ops_named(odd_models: dict[str, Path]) -> None:
    result = run_mnmcu("analyze", str(odd_models["odd"]))
    line = one_error_line(result, "ops mnmcu does not support")
    assert "SUB" in line and "MAXIMUM" in line


def test_litert_arithmetic_with_tflm_runtime_is_refused(tmp_path: Path) -> None:
    from mnmcu.paths import data_dir

    sample = data_dir("firmware") / "sample" / "mnmcu_sample.tflite"
    out = tmp_path / "project"
    result = run_mnmcu(
        "emit", str(sample), "--board", "qemu-m4", "--runtime", "tflm", "--arithmetic",
        "litert", "--out", str(out),
    )  # fmt: skip
    one_error_line(result, "TFLite Micro firmware has TFLite Micro's arithmetic", "--runtime aot")
    assert not out.exists()
