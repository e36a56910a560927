"""Datasets: image folders, the built-in shapes, and their error messages."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnmcu.errors import DataError, InvalidValue
from mnmcu.model.data import (
    SHAPE_CLASSES,
    Dataset,
    balanced_pick,
    builtin_dataset,
    load_dataset,
    load_image_folder,
    representative_samples,
    to_model_input,
)


def _write_image(path: Path, size: tuple[int, int] = (40, 30), colour: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(colour)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def _make_folder(root: Path, counts: dict[str, int], suffix: str = ".png") -> Path:
    for name, count in counts.items():
        for i in range(count):
            _write_image(root / name / f"img{i}{suffix}", colour=i)
    return root


# --------------------------------------------------------------------------- folders


def test_folder_sizes_class_order_and_split(tmp_path: Path) -> None:
    root = _make_folder(tmp_path / "data", {"zebra": 10, "ant": 15})
    _write_image(root / "ant" / "extra.JPG")  # upper-case suffix, JPEG
    (root / "ant" / "notes.txt").write_text("not an image")

    ds = load_image_folder(root, size=24, channels=3, val_fraction=0.2, seed=0)

    assert ds.class_names == ("ant", "zebra")
    assert ds.x_train.dtype == np.uint8 and ds.x_train.shape[1:] == (24, 24, 3)
    assert ds.y_train.dtype == np.int64
    assert (ds.size, ds.channels, ds.num_classes) == (24, 3, 2)
    # 16 ants -> 3 held out (round(3.2)); 10 zebras -> 2 held out.
    assert np.bincount(ds.y_val).tolist() == [3, 2]
    assert np.bincount(ds.y_train).tolist() == [13, 8]
    assert ds.skipped == ()
    assert ds.source == str(root)


def test_folder_split_is_deterministic_and_seeded(tmp_path: Path) -> None:
    root = _make_folder(tmp_path, {"a": 12, "b": 12})
    first = load_image_folder(root, 16, 3, seed=1)
    again = load_image_folder(root, 16, 3, seed=1)
    other = load_image_folder(root, 16, 3, seed=2)
    assert np.array_equal(first.x_val, again.x_val)
    assert np.array_equal(first.x_train, again.x_train)
    assert not np.array_equal(first.x_val, other.x_val)


def test_folder_grayscale_and_max_per_class(tmp_path: Path) -> None:
    root = _make_folder(tmp_path, {"a": 9, "b": 6}, suffix=".jpeg")
    ds = load_image_folder(root, 20, 1, val_fraction=0.5, max_per_class=4)
    assert ds.x_train.shape[1:] == (20, 20, 1)
    assert len(ds.y_train) + len(ds.y_val) == 8
    assert np.bincount(ds.y_val).tolist() == [2, 2]


def test_folder_resizes_short_side_and_crops_centre(tmp_path: Path) -> None:
    # A wide image: left third red, middle green, right third blue.
    wide = np.zeros((30, 90, 3), dtype=np.uint8)
    wide[:, :30, 0] = 255
    wide[:, 30:60, 1] = 255
    wide[:, 60:, 2] = 255
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for i in range(2):
            Image.fromarray(wide).save(tmp_path / name / f"{i}.png")
    ds = load_image_folder(tmp_path, 10, 3)
    centre = ds.x_train[0, 5, 5]
    assert centre[1] > 200 and centre[0] < 50 and centre[2] < 50


def test_corrupt_image_is_skipped_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = _make_folder(tmp_path, {"a": 3, "b": 3})
    bad = root / "a" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n but not really")
    with caplog.at_level(logging.WARNING, logger="mnmcu"):
        ds = load_image_folder(root, 16, 3)
    assert len(ds.skipped) == 1
    assert ds.skipped[0][0] == str(bad)
    assert len(ds.y_train) + len(ds.y_val) == 6
    assert any(str(bad) in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize(
    ("layout", "needle"),
    [
        ("missing", "does not exist"),
        ("file", "is not a folder"),
        ("empty", "no class sub-folders"),
        ("one_class", "only one class"),
        ("class_without_images", "has no images"),
        ("one_image", "readable image"),
        ("only_corrupt", "readable image"),
    ],
)
def test_folder_errors_name_the_path(tmp_path: Path, layout: str, needle: str) -> None:
    root = tmp_path / "data"
    named = root
    if layout == "file":
        root.write_text("x")
    elif layout == "empty":
        root.mkdir()
    elif layout == "one_class":
        _make_folder(root, {"only": 3})
    elif layout == "class_without_images":
        _make_folder(root, {"a": 3})
        (root / "b").mkdir()
        (root / "b" / "readme.txt").write_text("x")
        named = root / "b"
    elif layout == "one_image":
        _make_folder(root, {"a": 3, "b": 1})
        named = root / "b"
    elif layout == "only_corrupt":
        _make_folder(root, {"a": 3})
        (root / "b").mkdir()
        (root / "b" / "x.png").write_bytes(b"junk")
        named = root / "b"
    with pytest.raises(DataError) as info:
        load_image_folder(root, 16, 3)
    message = str(info.value)
    assert needle in message
    assert str(named) in message
    assert "\n" not in message


def test_bad_parameters_are_invalid_values(tmp_path: Path) -> None:
    root = _make_folder(tmp_path, {"a": 2, "b": 2})
    with pytest.raises(InvalidValue, match="channels"):
        load_image_folder(root, 16, 2)
    with pytest.raises(InvalidValue, match="validation fraction"):
        load_image_folder(root, 16, 3, val_fraction=1.0)


# --------------------------------------------------------------------------- built-in


def test_builtin_is_deterministic_per_seed() -> None:
    a = builtin_dataset(48, 3, n_train=40, n_val=12, seed=3)
    b = builtin_dataset(48, 3, n_train=40, n_val=12, seed=3)
    c = builtin_dataset(48, 3, n_train=40, n_val=12, seed=4)
    assert a.x_train.tobytes() == b.x_train.tobytes()
    assert a.x_val.tobytes() == b.x_val.tobytes()
    assert np.array_equal(a.y_train, b.y_train)
    assert a.x_train.tobytes() != c.x_train.tobytes()
    # The held-out split does not depend on the training-set size.
    d = builtin_dataset(48, 3, n_train=60, n_val=12, seed=3)
    assert d.x_val.tobytes() == a.x_val.tobytes()


def test_builtin_shapes_balance_and_classes() -> None:
    ds = builtin_dataset(32, 3, n_train=60, n_val=30, classes=6)
    assert ds.class_names == SHAPE_CLASSES
    assert np.bincount(ds.y_train).tolist() == [10] * 6
    assert np.bincount(ds.y_val).tolist() == [5] * 6
    assert ds.x_train.shape == (60, 32, 32, 3) and ds.x_train.dtype == np.uint8
    assert ds.source == "builtin:shapes"
    gray = builtin_dataset(40, 1, n_train=8, n_val=4)
    assert gray.x_train.shape == (8, 40, 40, 1)
    assert gray.num_classes == 4


def test_builtin_rejects_unknown_class_counts() -> None:
    with pytest.raises(InvalidValue, match="7"):
        builtin_dataset(32, 3, classes=7)
    with pytest.raises(InvalidValue, match="1"):
        builtin_dataset(32, 3, classes=1)
    with pytest.raises(InvalidValue, match="too small"):
        builtin_dataset(16, 3)


def _nearest_mean_accuracy(ds: Dataset, features_of: str) -> float:
    def features(x: np.ndarray) -> np.ndarray:
        flat = x.reshape(len(x), -1, x.shape[-1]).astype(np.float64)
        if features_of == "mean":
            return flat.mean(axis=1)
        return np.concatenate([flat.mean(axis=1), flat.std(axis=1)], axis=1)

    train, val = features(ds.x_train), features(ds.x_val)
    centres = np.stack([train[ds.y_train == k].mean(axis=0) for k in range(ds.num_classes)])
    distance = ((val[:, None, :] - centres[None]) ** 2).sum(axis=2)
    return float(np.mean(distance.argmin(axis=1) == ds.y_val))


@pytest.mark.parametrize("classes", [4, 6])
def test_builtin_classes_are_not_separable_by_colour(classes: int) -> None:
    """An independent check that the task is not trivial: colour statistics give ~chance."""
    ds = builtin_dataset(32, 3, n_train=800, n_val=400, seed=5, classes=classes)
    chance = 1.0 / classes
    assert _nearest_mean_accuracy(ds, "mean") < chance + 0.07
    assert _nearest_mean_accuracy(ds, "mean+std") < chance + 0.12


# --------------------------------------------------------------------------- helpers


def test_to_model_input_range() -> None:
    x = np.array([[0, 127, 255]], dtype=np.uint8)
    y = to_model_input(x)
    assert y.dtype == np.float32
    assert y[0, 0] == -1.0 and y[0, 2] == 1.0
    assert abs(float(y[0, 1])) < 0.01


def test_load_dataset_dispatch(tmp_path: Path) -> None:
    ds = load_dataset("builtin", 32, 3, n_train=8, n_val=4)
    assert ds.source == "builtin:shapes"
    assert load_dataset("builtin:shapes", 32, 1, n_train=8, n_val=4).channels == 1
    with pytest.raises(InvalidValue, match="builtin:nope"):
        load_dataset("builtin:nope", 32, 3)
    root = _make_folder(tmp_path / "builtin_like", {"a": 2, "b": 2})
    assert load_dataset(root, 16, 3).class_names == ("a", "b")
    assert load_dataset(str(root), 16, 3).class_names == ("a", "b")


def test_representative_samples() -> None:
    ds = builtin_dataset(32, 3, n_train=20, n_val=8)
    picked = representative_samples(ds, 200, seed=0)
    assert picked.shape == (20, 32, 32, 3) and picked.dtype == np.uint8
    few = representative_samples(ds, 5, seed=1)
    assert few.shape[0] == 5
    train_rows = {row.tobytes() for row in ds.x_train}
    assert all(row.tobytes() in train_rows for row in few)
    assert np.array_equal(few, representative_samples(ds, 5, seed=1))


def test_balanced_pick_covers_every_class_first() -> None:
    labels = np.repeat(np.arange(10), 36)  # a held-out split: sorted by class
    pick = balanced_pick(labels, 28, seed=0)
    assert len(pick) == len(set(pick.tolist())) == 28
    counts = np.bincount(labels[pick], minlength=10)
    assert counts.min() >= 2 and counts.max() <= 3  # equal shares, give or take one
    assert set(labels[pick[:10]].tolist()) == set(range(10))  # a full round before repeats
    assert np.array_equal(pick, balanced_pick(labels, 28, seed=0))
    assert not np.array_equal(pick, balanced_pick(labels, 28, seed=1))
    # more than there are: all of them, once
    assert sorted(balanced_pick(labels[:40], 100).tolist()) == list(range(40))
    uneven = np.array([0] * 30 + [1] * 2 + [2] * 5)
    assert np.bincount(uneven[balanced_pick(uneven, 9)]).tolist() == [4, 2, 3]
