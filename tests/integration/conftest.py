"""Small full-int8 MobileNets, converted once per test session; the framework-source
tests' object cache and summary."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mnmcu.bench import convert_untrained
from mnmcu.model.spec import ModelSpec

SPECS = {
    "v1": ModelSpec(arch="v1", alpha=0.25, resolution=96, classes=2),
    "v2": ModelSpec(arch="v2", alpha=0.35, resolution=96, classes=3),
    "v3-small": ModelSpec(arch="v3-small", alpha=0.75, resolution=96, classes=4),
    "v3-large": ModelSpec(arch="v3-large", alpha=0.5, resolution=64, classes=2),
}


@pytest.fixture(scope="session")
def int8_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """arch -> path of a converted .tflite, for the specs in SPECS."""
    root = tmp_path_factory.mktemp("int8_models")
    paths = {}
    for arch, spec in SPECS.items():
        path = root / f"{arch}.tflite"
        path.write_bytes(convert_untrained(spec))
        paths[arch] = path
    return paths


# The AOT verify configurations: name -> a key of int8_models, or a spec converted on demand.
MOBILENETS: dict[str, str | ModelSpec] = {
    "v1-a0.25-96": "v1",
    "v1-a0.25-97": ModelSpec(arch="v1", alpha=0.25, resolution=97, classes=2),
    "v1-a0.5-128": ModelSpec(arch="v1", alpha=0.5, resolution=128, classes=3),
    "v2-a0.35-96": "v2",
    "v3-small-a0.75-96": "v3-small",
    "v3-large-a0.5-64": "v3-large",
}


@pytest.fixture(scope="session")
def verify_models(
    int8_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Path]:
    """name of MOBILENETS -> its .tflite, converted once per session."""
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            entry = MOBILENETS[name]
            if isinstance(entry, str):
                cache[name] = int8_models[entry]
            else:
                path = tmp_path_factory.mktemp("verify_models") / f"{name}.tflite"
                path.write_bytes(convert_untrained(entry))
                cache[name] = path
        return cache[name]

    return get


@pytest.fixture(scope="session")
def framework_cache(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Where the framework-source tests keep compiled framework objects between sessions.

    pytest's cache folder (``.pytest_cache/d/mnmcu-framework-objects``), or a
    session folder when the cache plugin is off (``-p no:cacheprovider``).
    """
    cache = getattr(request.config, "cache", None)
    if cache is None:
        return tmp_path_factory.mktemp("framework-objects")
    return Path(cache.mkdir("mnmcu-framework-objects"))


@pytest.fixture(scope="session")
def build_summary(request: pytest.FixtureRequest) -> Iterator[dict[str, list[str]]]:
    """Lines the framework-source tests report per board and runtime, printed at the end.

    They are also written to ``summary.txt`` in the framework cache folder.
    """
    lines: dict[str, list[str]] = {}
    yield lines
    if not lines:
        return
    text = "\n".join(f"{key}: {line}" for key in sorted(lines) for line in lines[key])
    cache = getattr(request.config, "cache", None)
    if cache is not None:
        path = Path(cache.mkdir("mnmcu-framework-objects")) / "summary.txt"
        path.write_text(text + "\n")
        text += f"\n(saved in {path})"
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print("\nframework-source builds:\n" + text)
