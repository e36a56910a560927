"""Full-int8 conversion and float-vs-int8 evaluation.

The converted model has int8 input and output, per-channel int8 weights and
int32 biases, and no float op. Accuracy of the int8 model is measured with
TFLite's reference kernels (LiteRT ``BUILTIN_REF``), the arithmetic the
microcontroller runtimes reproduce.
"""

from __future__ import annotations

import builtins
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mnmcu.errors import QuantizationError, UnsupportedModel
from mnmcu.graph import Graph, check_int8_mobilenet, load_graph
from mnmcu.log import NullProgress, Progress, captured_output, logger
from mnmcu.model.data import to_model_input

if TYPE_CHECKING:
    import keras

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DEFAULT_REPRESENTATIVE = 200

# TFLite's int8 softmax (and TFLite Micro's) turns beta * input_scale into a
# fixed-point multiplier with 5 integer bits and checks that it is above 1:
# input_scale * beta * 2**26 must exceed 1, or the runtime aborts the process.
_SOFTMAX_SCALED_DIFF_BITS = 5


def quantize_input(x_uint8: np.ndarray, graph: Graph) -> np.ndarray:
    """uint8 images -> the int8 input tensor's values, using its scale and zero point."""
    q = graph.input.quantization
    if q is None:
        raise QuantizationError("the model input has no quantization parameters")
    scaled = np.round(to_model_input(x_uint8) / q.scale[0]) + q.zero_point[0]
    quantized: np.ndarray = np.clip(scaled, -128, 127).astype(np.int8)
    return quantized


def check_softmax_scale(graph: Graph) -> None:
    """Raise if a SOFTMAX input scale is too small for TFLite/TFLM to run."""
    for op in graph.ops:
        if op.opcode != "SOFTMAX":
            continue
        t = graph.tensor(op.inputs[0])
        if t.quantization is None:
            continue
        beta = float(op.options.get("beta", 1.0))
        scale = t.quantization.scale[0]
        limit = 1.0 / (beta * 2.0 ** (31 - _SOFTMAX_SCALED_DIFF_BITS))
        if scale <= limit:
            raise QuantizationError(
                f"softmax input scale {scale:.3g} is below {limit:.3g}, which TFLite and "
                "TFLite Micro cannot run (they abort)",
                "the logits hardly vary over the representative data: train the model first "
                "('mnmcu train') or give representative images that the classes differ on",
            )


def convert_int8(
    model: keras.Model, representative: np.ndarray, progress: Progress | None = None
) -> bytes:
    """Convert a batch-1 Keras model to a full-int8 .tflite flatbuffer.

    ``representative`` holds uint8 images (N, H, W, C) used to calibrate
    activation ranges.
    """
    import tensorflow as tf

    if len(representative) == 0:
        raise QuantizationError("no representative images", "give a dataset with images")
    progress = progress or NullProgress()
    progress.start("Calibrating int8 ranges", len(representative))

    def samples() -> Iterator[list[np.ndarray]]:
        for img in representative:
            yield [to_model_input(img[None])]
            progress.advance(1)

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = samples
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    try:
        with captured_output("the TFLite converter"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            flatbuffer: bytes = converter.convert()
    except Exception as exc:
        raise QuantizationError(f"TFLite conversion failed: {exc}") from None
    finally:
        progress.finish()
    graph = load_graph(flatbuffer)
    check_int8_mobilenet(graph)
    check_softmax_scale(graph)
    return flatbuffer


def reference_interpreter(flatbuffer: bytes) -> Any:
    """A LiteRT interpreter with TFLite's reference kernels, tensors allocated.

    Callers must have run :func:`check_softmax_scale` on the model first:
    the runtime aborts the process on a too-small softmax scale.
    """
    from ai_edge_litert import interpreter as litert

    with litert_errors():
        interp = litert.Interpreter(
            model_content=flatbuffer,
            experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF,
        )
        interp.allocate_tensors()
    return interp


@contextmanager
def litert_errors() -> Iterator[None]:
    """Turn LiteRT's refusal of a model (its verifier, a kernel's Prepare) into one line."""
    try:
        yield
    except (ValueError, RuntimeError) as exc:
        detail = " ".join(str(exc).split())
        raise UnsupportedModel(
            f"LiteRT's reference interpreter refuses the model: {detail[:300]}"
        ) from None


def run_int8(flatbuffer: bytes, x_int8: np.ndarray, progress: Progress | None = None) -> np.ndarray:
    """Run the int8 model on each quantized input; return int8 outputs (N, classes)."""
    graph = load_graph(flatbuffer)
    check_softmax_scale(graph)
    interp = reference_interpreter(flatbuffer)
    inp = interp.get_input_details()[0]["index"]
    out = interp.get_output_details()[0]["index"]
    results = []
    progress = progress or NullProgress()
    progress.start("Evaluating int8 (TFLite reference kernels)", len(x_int8))
    try:
        for x in x_int8:
            interp.set_tensor(inp, x[None])
            with litert_errors():
                interp.invoke()
            results.append(interp.get_tensor(out)[0].copy())
            progress.advance(1)
    finally:
        progress.finish()
    return np.stack(results)


@dataclass(frozen=True)
class Accuracy:
    """Float vs int8 top-1 on held-out images, and how often they agree."""

    float: builtins.float
    int8: builtins.float
    agreement: builtins.float
    images: int
    # counts[true class][predicted class] of each model
    confusion_float: tuple[tuple[int, ...], ...] = ()
    confusion_int8: tuple[tuple[int, ...], ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "float": self.float,
            "int8": self.int8,
            "agreement": self.agreement,
            "images": self.images,
            "confusion_float": [list(row) for row in self.confusion_float],
            "confusion_int8": [list(row) for row in self.confusion_int8],
        }


def confusion_matrix(
    y: np.ndarray, predicted: np.ndarray, classes: int
) -> tuple[tuple[int, ...], ...]:
    """``counts[true][predicted]`` over ``classes`` classes."""
    counts = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(y, dtype=np.int64), np.asarray(predicted, dtype=np.int64)), 1)
    return tuple(tuple(int(v) for v in row) for row in counts)


def compare_accuracy(
    model: keras.Model,
    flatbuffer: bytes,
    x_uint8: np.ndarray,
    y: np.ndarray,
    progress: Progress | None = None,
) -> Accuracy:
    """Top-1 of the float Keras model and of the int8 model on the same images."""
    if len(x_uint8) == 0:
        raise QuantizationError("no held-out images to evaluate on")
    with captured_output("Keras predict"):
        float_pred = np.argmax(model.predict(to_model_input(x_uint8), verbose=0), axis=1)
    graph = load_graph(flatbuffer)
    int8_pred = np.argmax(run_int8(flatbuffer, quantize_input(x_uint8, graph), progress), axis=1)
    y = np.asarray(y)
    classes = max(int(graph.output.shape[-1]), int(y.max()) + 1)
    acc = Accuracy(
        float=float(np.mean(float_pred == y)),
        int8=float(np.mean(int8_pred == y)),
        agreement=float(np.mean(float_pred == int8_pred)),
        images=len(y),
        confusion_float=confusion_matrix(y, float_pred, classes),
        confusion_int8=confusion_matrix(y, int8_pred, classes),
    )
    logger.debug(
        "top-1 on %d held-out images: float %.2f%%, int8 %.2f%%, agreement %.2f%%",
        acc.images,
        100 * acc.float,
        100 * acc.int8,
        100 * acc.agreement,
    )
    return acc
