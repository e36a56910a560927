"""Build MobileNet V1/V2/V3 with any width multiplier and input size.

The backbones are Keras's reference implementations
(``keras.applications``), which accept any alpha when no pretrained weights
are loaded. The classifier head is the same for every architecture:
global average pooling, dropout, a dense layer and softmax, which converts
to MEAN, FULLY_CONNECTED and SOFTMAX in TFLite.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mnmcu.errors import ModelError
from mnmcu.log import logger
from mnmcu.model.spec import ModelSpec, pretrained_combinations

if TYPE_CHECKING:
    import keras


def _keras() -> Any:
    import keras

    return keras


def set_random_seed(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow (Keras's ``set_random_seed``): repeatable weights."""
    _keras().utils.set_random_seed(seed)


def build_model(spec: ModelSpec, batch_size: int | None = None) -> keras.Model:
    """Return an uncompiled Keras model for ``spec``.

    ``batch_size=1`` gives the static-shape model used for conversion (no
    SHAPE/STRIDED_SLICE/PACK chains in the TFLite graph); ``None`` gives the
    model used for training.
    """
    keras = _keras()
    inp = keras.Input(shape=spec.input_shape, batch_size=batch_size, name="image")
    weights = spec.pretrained
    kwargs: dict[str, Any] = {
        "input_tensor": inp,
        "alpha": spec.alpha,
        "include_top": False,
        "weights": weights,
    }
    apps = keras.applications
    try:
        if spec.arch == "v1":
            base = apps.MobileNet(**kwargs)
        elif spec.arch == "v2":
            base = apps.MobileNetV2(**kwargs)
        elif spec.arch == "v3-small":
            base = apps.MobileNetV3Small(include_preprocessing=False, **kwargs)
        else:
            base = apps.MobileNetV3Large(include_preprocessing=False, **kwargs)
    except ValueError as exc:
        raise ModelError(
            f"Keras cannot build {spec.name}: {exc}",
            f"ImageNet weights exist for {pretrained_combinations()}",
        ) from None
    except Exception as exc:  # network errors from keras.utils.get_file
        if weights is None:
            raise
        raise ModelError(
            f"ImageNet weights for {spec.arch} alpha {spec.alpha:g} could not be loaded ({exc})",
            "Keras downloads them once into ~/.keras/models; connect to the internet once, "
            "copy that folder from a machine that has them, or train from scratch "
            "without --pretrained",
        ) from None
    x = keras.layers.GlobalAveragePooling2D(name="pool")(base.output)
    if spec.dropout > 0:
        x = keras.layers.Dropout(spec.dropout, name="dropout")(x)
    out = keras.layers.Dense(spec.classes, activation="softmax", name="classifier")(x)
    model = keras.Model(inp, out, name=spec.name.replace(".", "_"))
    logger.debug("built %s", spec.name)
    return model


def spread_classifier_biases(model: keras.Model) -> None:
    """Give an untrained classifier's logits a real range, in place.

    Random backbone weights give logits that hardly vary, hence a softmax
    input scale TFLite rejects; spreading the ``classifier`` biases over
    [-2, 2] fixes that without touching the backbone.
    """
    dense = model.get_layer("classifier")
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel, np.linspace(-2.0, 2.0, bias.shape[0]).astype(np.float32)])


def with_batch_size(model: keras.Model, spec: ModelSpec, batch_size: int | None) -> keras.Model:
    """Rebuild ``model`` with a fixed batch size and copy its weights."""
    fixed = build_model(
        ModelSpec.from_dict({**spec.to_dict(), "pretrained": None}), batch_size=batch_size
    )
    fixed.set_weights(model.get_weights())
    return fixed
