"""Training, evaluation, BatchNormalization recalibration and model files (tiny models only)."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mnmcu.errors import InvalidValue, ModelError  # noqa: E402
from mnmcu.model.augment import AUGMENTATIONS, DEFAULT_AUGMENT  # noqa: E402
from mnmcu.model.data import Dataset, builtin_dataset, to_model_input  # noqa: E402
from mnmcu.model.train import (  # noqa: E402
    TrainConfig,
    _training_wrapper,
    evaluate,
    load_model,
    recalibrate_batch_norm,
    save_model,
    train_model,
)

SIZE = 32


def _tiny_model(classes: int, batch: int | None = None, channels: int = 3) -> keras.Model:
    inp = keras.Input(shape=(SIZE, SIZE, channels), batch_size=batch)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="stem")(inp)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(classes, activation="softmax", name="head")(x)
    return keras.Model(inp, out)


class RecordingProgress:
    def __init__(self) -> None:
        self.events: list[tuple[str, object, object]] = []

    def start(self, description: str, total: int | None) -> None:
        self.events.append(("start", description, total))

    def advance(self, steps: int = 1, status: str = "") -> None:
        self.events.append(("advance", steps, status))

    def finish(self) -> None:
        self.events.append(("finish", None, None))


@pytest.fixture(scope="module")
def shapes() -> Dataset:
    return builtin_dataset(SIZE, 3, n_train=128, n_val=64, seed=0)


def test_train_reports_progress_and_evaluate_matches_numpy(shapes: Dataset) -> None:
    model = _tiny_model(shapes.num_classes)
    progress = RecordingProgress()
    config = TrainConfig(epochs=2, batch_size=32, patience=None, seed=1)

    result = train_model(model, shapes, config, progress)

    assert result.epochs_run == 2 and not result.stopped_early
    assert len(result.history) == 2
    assert set(result.history[0]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert result.seconds > 0 and 1 <= result.best_epoch <= 2
    assert progress.events[0] == ("start", "Training", 2)
    assert progress.events[-1][0] == "finish"
    statuses = [e[2] for e in progress.events if e[0] == "advance"]
    assert len(statuses) == 2 and str(statuses[0]).startswith("epoch 1 loss ")

    scores = model.predict(to_model_input(shapes.x_val), batch_size=16, verbose=0)
    independent = float(np.mean(np.argmax(scores, axis=1) == shapes.y_val))
    assert evaluate(model, shapes.x_val, shapes.y_val) == pytest.approx(independent)
    assert result.float_accuracy == pytest.approx(independent)
    # The caller's model is not left compiled for training.
    assert getattr(model, "optimizer", None) is None


def test_batch_one_model_trains_like_a_free_batch_one(shapes: Dataset) -> None:
    """Same start, same config: same weights (repeatable), whatever the input batch size."""
    free = _tiny_model(shapes.num_classes)
    fixed = _tiny_model(shapes.num_classes, batch=1)
    fixed.set_weights(free.get_weights())
    before = [w.copy() for w in free.get_weights()]
    config = TrainConfig(epochs=1, warmup_epochs=0, patience=None, seed=3)

    a = train_model(free, shapes, config)
    b = train_model(fixed, shapes, config)

    assert tuple(fixed.inputs[0].shape) == (1, SIZE, SIZE, 3)
    assert a.history == b.history
    for x, y in zip(free.get_weights(), fixed.get_weights(), strict=True):
        assert np.array_equal(x, y)
    assert any(not np.array_equal(x, s) for x, s in zip(free.get_weights(), before, strict=True))
    assert fixed.predict(to_model_input(shapes.x_val[:1]), verbose=0).shape == (1, 4)


def test_freeze_backbone_trains_only_the_head(shapes: Dataset) -> None:
    model = _tiny_model(shapes.num_classes)
    stem = model.get_layer("stem").get_weights()[0].copy()
    stem_bn = [w.copy() for w in model.get_layer("stem_bn").get_weights()]
    head = model.get_layer("head").get_weights()[0].copy()
    config = TrainConfig(epochs=1, warmup_epochs=0, patience=None, freeze_backbone=True)
    train_model(model, shapes, config)
    assert np.array_equal(model.get_layer("stem").get_weights()[0], stem)
    for saved, now in zip(stem_bn, model.get_layer("stem_bn").get_weights(), strict=True):
        assert np.array_equal(saved, now)
    assert not np.array_equal(model.get_layer("head").get_weights()[0], head)
    assert all(layer.trainable for layer in model.layers)


def test_nested_backbone_is_trained_and_copied_back(shapes: Dataset) -> None:
    inner_in = keras.Input(shape=(SIZE, SIZE, 3))
    h = keras.layers.Conv2D(8, 3, strides=2, use_bias=False)(inner_in)
    h = keras.layers.BatchNormalization(name="inner_bn")(h)
    backbone = keras.Model(inner_in, keras.layers.ReLU()(h), name="backbone")
    inp = keras.Input(shape=(SIZE, SIZE, 3), batch_size=1)
    pooled = keras.layers.GlobalAveragePooling2D()(backbone(inp))
    model = keras.Model(inp, keras.layers.Dense(4, activation="softmax")(pooled))
    bn = backbone.get_layer("inner_bn")
    mean_before = bn.moving_mean.numpy().copy()

    train_model(model, shapes, TrainConfig(epochs=1, warmup_epochs=0, patience=None))

    assert not np.array_equal(bn.moving_mean.numpy(), mean_before)
    assert bn.momentum == 0.99  # the caller's layer settings are untouched


def test_shape_mismatches_raise_model_error(shapes: Dataset) -> None:
    with pytest.raises(ModelError, match=r"output width 3 .* 4 classes"):
        train_model(_tiny_model(3), shapes)
    with pytest.raises(ModelError, match=r"\(32, 32, 1\) .* \(32, 32, 3\)"):
        train_model(_tiny_model(4, channels=1), shapes)


def test_train_config_rejects_bad_values() -> None:
    with pytest.raises(InvalidValue, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(InvalidValue, match="learning rate"):
        TrainConfig(learning_rate=-1.0)
    with pytest.raises(InvalidValue, match="momentum"):
        TrainConfig(bn_momentum=1.0)
    with pytest.raises(InvalidValue, match="warm-up"):
        TrainConfig(epochs=2, warmup_epochs=2)
    with pytest.raises(InvalidValue, match="augmentation 'mirror' .* none, shift, flip"):
        TrainConfig(augment="mirror")


@pytest.mark.parametrize(
    ("augment", "layers"),
    [
        ("none", []),
        ("shift", ["RandomTranslation"]),
        ("flip", ["RandomFlip"]),
        ("flip-shift", ["RandomFlip", "RandomTranslation"]),
    ],
)
def test_each_augmentation_adds_its_layers(augment: str, layers: list[str]) -> None:
    trainer = _training_wrapper(_tiny_model(2), 0, augment)
    random = [type(layer).__name__ for layer in trainer.layers if "Random" in type(layer).__name__]
    assert random == layers
    assert augment in AUGMENTATIONS and AUGMENTATIONS[augment]


def test_the_default_augmentation_does_not_mirror() -> None:
    """Mirroring changes the class of digits, letters and arrows: it is opt-in."""
    assert TrainConfig().augment == DEFAULT_AUGMENT == "shift"
    trainer = _training_wrapper(_tiny_model(2), 0, TrainConfig().augment)
    assert not any(isinstance(layer, keras.layers.RandomFlip) for layer in trainer.layers)


def test_recalibration_sets_exact_batch_average() -> None:
    inp = keras.Input(shape=(2, 2, 1))
    bn = keras.layers.BatchNormalization(momentum=0.99)
    model = keras.Model(inp, bn(inp))
    x = np.arange(8 * 4, dtype=np.uint8).reshape(8, 2, 2, 1) * 7
    recalibrate_batch_norm(model, x, batch_size=4)
    batches = to_model_input(x).reshape(2, 16)
    assert float(bn.moving_mean.numpy()[0]) == pytest.approx(batches.mean(axis=1).mean(), rel=1e-5)
    assert float(bn.moving_variance.numpy()[0]) == pytest.approx(
        batches.var(axis=1).mean(), rel=1e-4
    )
    assert bn.momentum == 0.99


def test_evaluate_checks_lengths() -> None:
    model = _tiny_model(4)
    with pytest.raises(InvalidValue):
        evaluate(model, np.zeros((3, SIZE, SIZE, 3), np.uint8), np.zeros(2, np.int64))


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    model = _tiny_model(4, batch=1)
    path = save_model(model, tmp_path / "out" / "m.keras")
    loaded = load_model(path)
    assert tuple(loaded.inputs[0].shape) == (1, SIZE, SIZE, 3)
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        assert np.array_equal(a, b)


def test_load_model_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.keras"
    with pytest.raises(ModelError, match="does not exist") as info:
        load_model(missing)
    assert str(missing) in str(info.value)
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"not a zip file")
    with pytest.raises(ModelError, match="not a readable Keras model") as info:
        load_model(junk)
    assert str(junk) in str(info.value)
    with pytest.raises(InvalidValue, match=r"\.keras"):
        save_model(_tiny_model(4), tmp_path / "model.h5")
