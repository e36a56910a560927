"""Benchmarks: mnmcu's figures next to the reference runtime's, measured in one run.

``memory_bench`` builds the reference shapes (MLPerf Tiny VWW: MobileNetV1
alpha 0.25 at 96x96x3, 2 classes; MobileNetV2 alpha 0.35 at 96; V3-Small
alpha 0.75 at 96), converts them to int8 and compares the AOT memory plan's
arena with the arena the tflite-micro runtime allocates for the same model.
The models are untrained: memory does not depend on the weights' values.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mnmcu.graph import load_graph
from mnmcu.log import NullProgress, Progress
from mnmcu.model.spec import ModelSpec

BENCH_SPECS = (
    ("vww", ModelSpec(arch="v1", alpha=0.25, resolution=96, classes=2)),
    ("v2-0.35-96", ModelSpec(arch="v2", alpha=0.35, resolution=96, classes=2)),
    ("v3s-0.75-96", ModelSpec(arch="v3-small", alpha=0.75, resolution=96, classes=2)),
)


def synthetic_images(size: int, channels: int, count: int = 24, seed: int = 0) -> np.ndarray:
    """Smooth random uint8 images (blocky noise plus a gradient), for calibration."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, size=(count, 8, 8, channels))
    reps = -(-size // 8)
    img = np.kron(coarse, np.ones((1, reps, reps, 1)))[:, :size, :size, :]
    ramp = np.linspace(0, 60, size)[None, :, None, None]
    return np.clip(img * 0.8 + ramp, 0, 255).astype(np.uint8)


def convert_untrained(spec: ModelSpec, seed: int = 0) -> bytes:
    """Build ``spec`` with random weights and convert it to full int8.

    An untrained classifier's logits hardly vary, which gives a softmax input
    scale that TFLite rejects; spreading the classifier's biases over [-2, 2]
    gives the logits a real range without touching the backbone.
    """
    import keras

    from mnmcu.model.mobilenet import build_model, spread_classifier_biases
    from mnmcu.quantize import convert_int8

    keras.utils.set_random_seed(seed)  # the same weights in every run
    model = build_model(spec, batch_size=1)
    spread_classifier_biases(model)
    return convert_int8(model, synthetic_images(spec.resolution, spec.channels, seed=seed))


@dataclass(frozen=True)
class MemoryRow:
    """One model's AOT arena next to TFLite Micro's."""

    name: str
    model: str
    macs: int
    aot_arena_bytes: int
    activation_peak_bytes: int
    tflm_arena_bytes: int
    tflm_activation_bytes: int
    tflm_persistent_bytes: int

    @property
    def ratio(self) -> float:
        return self.aot_arena_bytes / self.tflm_arena_bytes

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "ratio": round(self.ratio, 4)}


def memory_bench(progress: Progress | None = None) -> list[MemoryRow]:
    """Measure AOT plan vs TFLite Micro arena for :data:`BENCH_SPECS`."""
    from mnmcu.analyze import analyze
    from mnmcu.emit.aot import firmware_graph, firmware_plan
    from mnmcu.reference import tflm_run

    progress = progress or NullProgress()
    rows = []
    progress.start("Benchmarking memory", len(BENCH_SPECS))
    with tempfile.TemporaryDirectory(prefix="mnmcu-bench-") as tmp:
        for name, spec in BENCH_SPECS:
            path = Path(tmp) / f"{name}.tflite"
            path.write_bytes(convert_untrained(spec))
            graph = load_graph(path)
            plan = firmware_plan(firmware_graph(graph))
            tflm = tflm_run(path)
            rows.append(
                MemoryRow(
                    name=name,
                    model=spec.name,
                    macs=analyze(graph).macs,
                    aot_arena_bytes=plan.arena_bytes,
                    activation_peak_bytes=analyze(graph).activation_peak_bytes,
                    tflm_arena_bytes=tflm.arena_total,
                    tflm_activation_bytes=tflm.arena_head,
                    tflm_persistent_bytes=tflm.arena_tail,
                )
            )
            progress.advance(1, status=name)
    progress.finish()
    return rows
