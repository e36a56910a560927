"""Small full-int8 MobileNets, converted once per test session."""

from __future__ import annotations

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
