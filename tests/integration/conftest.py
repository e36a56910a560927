"""Small full-int8 MobileNets, converted once per test session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mnmcu.model.spec import ModelSpec


def calibration_images(size: int, channels: int, count: int = 24, seed: int = 0) -> np.ndarray:
    """Smooth random images (blurred noise plus gradients) as uint8."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, size=(count, 8, 8, channels))
    reps = -(-size // 8)
    img = np.kron(coarse, np.ones((1, reps, reps, 1)))[:, :size, :size, :]
    ramp = np.linspace(0, 60, size)[None, :, None, None]
    return np.clip(img * 0.8 + ramp, 0, 255).astype(np.uint8)


def convert_untrained(spec: ModelSpec) -> bytes:
    """Build ``spec`` at batch 1 and convert it to full int8.

    An untrained classifier's logits hardly vary, which gives a softmax input
    scale that TFLite rejects; spreading the classifier's biases gives the
    logits a real range without touching the backbone that is under test.
    """
    from mnmcu.model.mobilenet import build_model
    from mnmcu.quantize import convert_int8

    model = build_model(spec, batch_size=1)
    dense = model.get_layer("classifier")
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel, np.linspace(-2.0, 2.0, spec.classes).astype(np.float32)])
    return convert_int8(model, calibration_images(spec.resolution, spec.channels))


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
