"""``mnmcu build --tflite``: a model made with TensorFlow's converter, not with mnmcu.

Keras's own MobileNetV2 (alpha 0.35, 96x96x3, a 3-class head), a small CNN
with max pooling and concatenation, and keyword-spotting, anomaly-detection
and sensor shapes go through ``tf.lite.TFLiteConverter`` with full int8, then
``mnmcu build --tflite`` for qemu-m4 (analysis, firmware, reports; no model,
training or quantization stage) and ``mnmcu hil`` over QEMU's UART.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ..conftest import require_qemu_tools, run_mnmcu, tensorflow_int8

pytestmark = [pytest.mark.slow]


def _smooth(seed: int, size: int) -> np.ndarray:
    """A blocky random image in [-1, 1] (Keras's MobileNetV2 input range)."""
    coarse = np.random.default_rng(seed).uniform(-1, 1, (1, 6, 6, 3))
    return np.kron(coarse, np.ones((1, size // 6, size // 6, 1))).astype(np.float32)


@pytest.fixture(scope="module")
def keras_v2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import keras

    keras.utils.set_random_seed(1)
    inputs = keras.Input((96, 96, 3), batch_size=1)
    base = keras.applications.MobileNetV2(
        input_tensor=inputs, alpha=0.35, weights=None, include_top=False, pooling="avg"
    )
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(base.output))
    # Untrained, the batch-norm statistics (mean 0, variance 1) leave the output the same
    # for every input; one image's statistics make it depend on the input.
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    model(_smooth(100, 96), training=True)
    path = tmp_path_factory.mktemp("keras") / "keras_mobilenet_v2.tflite"
    path.write_bytes(tensorflow_int8(model, (_smooth(seed, 96) for seed in range(16))))
    return path


@pytest.mark.sim
def test_keras_mobilenet_v2_builds_and_runs_bit_exact(keras_v2: Path, tmp_path: Path) -> None:
    require_qemu_tools()
    out = tmp_path / "out"
    result = run_mnmcu("build", "--tflite", str(keras_v2), "--board", "qemu-m4", "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["source_tflite"] == keras_v2.name
    assert report["accuracy"] is None and report["training"] is None
    assert (out / "model_int8.tflite").read_bytes() == keras_v2.read_bytes()
    estimate = report["firmware"]["estimate"]
    assert abs(estimate["flash_error_percent"]) <= 2.0 and estimate["ram_difference_bytes"] == 0
    html = (out / "report.html").read_text()
    assert f"mnmcu report: {keras_v2.name} on qemu-m4" in html

    hil_json = tmp_path / "hil.json"
    result = run_mnmcu(
        "hil", "--board", "qemu-m4", "--project", str(out / "firmware"), "--count", "10",
        "--report", str(hil_json), timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    samples = json.loads(hil_json.read_text())["samples"]
    assert len(samples) == 10 and all(s["bit_exact"] for s in samples)
    assert len({tuple(s["output"]) for s in samples}) > 1


def test_model_options_are_refused_with_tflite(keras_v2: Path, tmp_path: Path) -> None:
    result = run_mnmcu(
        "build", "--tflite", str(keras_v2), "--board", "qemu-m4", "--alpha", "0.5",
        "--epochs", "3", "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "error: --alpha, --epochs cannot be used with --tflite: the model is already built: "
        "leave them out, or build a model without --tflite"
    ]
    assert not (tmp_path / "out").exists()


def _keyword_spotting():  # type: ignore[no-untyped-def]
    """DS-CNN-like: a [1, 49, 10, 1] spectrogram, not square."""
    import keras

    inputs = keras.Input((49, 10, 1), batch_size=1)
    x = keras.layers.Conv2D(16, (5, 3), strides=2, padding="same", activation="relu")(inputs)
    x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(24, 1, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(6, activation="softmax")(x))


def _sensor():  # type: ignore[no-untyped-def]
    """A [1, 12, 4] sensor window: Conv1D (EXPAND_DIMS, RESHAPE), TANH, dense, LOGISTIC."""
    import keras

    inputs = keras.Input((12, 4), batch_size=1)
    x = keras.layers.Conv1D(6, 3, activation="tanh")(inputs)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(16, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="sigmoid")(x))


def _autoencoder():  # type: ignore[no-untyped-def]
    """Anomaly-detection-like: a [1, 640] feature vector through dense layers."""
    import keras

    inputs = keras.Input((640,), batch_size=1)
    x = keras.layers.Dense(128, activation="relu")(inputs)
    x = keras.layers.Dense(8, activation="relu")(x)
    x = keras.layers.Dense(128, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(640)(x))


@pytest.mark.sim
@pytest.mark.parametrize(
    "make", [_keyword_spotting, _autoencoder, _sensor], ids=["kws", "ad", "sensor"]
)
def test_other_input_shapes_build_and_run_bit_exact(make, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Any int8 input shape (here [1, 49, 10, 1] and [1, 640]): a seeded random sample."""
    import keras

    require_qemu_tools()
    keras.utils.set_random_seed(2)
    model = make()
    shape = tuple(model.inputs[0].shape)
    rng = np.random.default_rng(0)
    samples = (rng.normal(0, 1, shape).astype(np.float32) for _ in range(32))
    tflite = tmp_path / f"{make.__name__.strip('_')}.tflite"
    tflite.write_bytes(tensorflow_int8(model, samples))

    out = tmp_path / "out"
    result = run_mnmcu("build", "--tflite", str(tflite), "--board", "qemu-m4", "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    project = json.loads((out / "firmware" / "mnmcu_project.json").read_text())
    assert project["input_shape"] == list(shape)
    assert project["sample_source"] == "seeded random int8 values (seed 0)"
    assert project["arithmetic"] == "tflm"
    hil_json = tmp_path / "hil.json"
    result = run_mnmcu(
        "hil", "--board", "qemu-m4", "--project", str(out / "firmware"), "--count", "6",
        "--report", str(hil_json), timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    samples = json.loads(hil_json.read_text())["samples"]
    assert len(samples) == 6 and all(s["bit_exact"] for s in samples)
    assert len({tuple(s["output"]) for s in samples}) > 1
    # images cannot stand in for these inputs: one line, not a crash
    result = run_mnmcu(
        "hil", "--board", "qemu-m4", "--project", str(out / "firmware"), "--data", "builtin",
        "--count", "4", "--report", str(tmp_path / "hil-data.json"), timeout=300,
    )  # fmt: skip
    assert result.returncode == 2
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [
        f"error: --data gives square images, but the model input is {list(shape)}, not "
        "[1, H, H, C]: leave out --data to send random inputs"
    ]


def _small_cnn():  # type: ignore[no-untyped-def]
    """A plain CNN: convolutions, two MAX_POOL_2D, a CONCATENATION of two branches."""
    import keras

    layers = keras.layers
    inputs = keras.Input((32, 32, 3), batch_size=1)
    x = layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = layers.MaxPooling2D(2)(x)
    a = layers.Conv2D(8, 1, activation="relu")(x)
    b = layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = layers.Concatenate()([a, b])
    x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(5, activation="softmax")(x))


@pytest.mark.sim
def test_small_cnn_with_max_pooling_and_concatenation(tmp_path: Path) -> None:
    import keras

    from mnmcu.graph import load_graph

    require_qemu_tools()
    keras.utils.set_random_seed(3)
    model = _small_cnn()
    tflite = tmp_path / "small_cnn.tflite"
    tflite.write_bytes(tensorflow_int8(model, (_smooth(seed, 32) for seed in range(32))))
    ops = {op.opcode for op in load_graph(tflite).ops}
    assert {"MAX_POOL_2D", "CONCATENATION"} <= ops

    out = tmp_path / "out"
    result = run_mnmcu("build", "--tflite", str(tflite), "--board", "qemu-m4", "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    hil_json = tmp_path / "hil.json"
    result = run_mnmcu(
        "hil", "--board", "qemu-m4", "--project", str(out / "firmware"), "--count", "10",
        "--report", str(hil_json), timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    samples = json.loads(hil_json.read_text())["samples"]
    assert len(samples) == 10 and all(s["bit_exact"] for s in samples)
    assert len({tuple(s["output"]) for s in samples}) > 1
