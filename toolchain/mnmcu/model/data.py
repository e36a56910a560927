"""Datasets as uint8 NHWC arrays: image folders and a built-in procedural set.

Images stay ``uint8`` (N, size, size, channels) until they meet a model;
:func:`to_model_input` maps them to the float range MobileNet expects,
``[-1, 1]``. Labels are ``int64`` class indices into ``class_names``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageOps

from mnmcu.errors import DataError, InvalidValue
from mnmcu.log import NullProgress, Progress, logger

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
"""File name endings read as images (compared case-insensitively)."""

SHAPE_CLASSES = ("circle", "triangle", "plus", "ring", "square", "star")
"""Classes of the built-in ``shapes`` dataset, in label order."""

BUILTIN_SOURCES = ("builtin", "builtin:shapes")
DEFAULT_SHAPE_CLASSES = 4
DEFAULT_BUILTIN_TRAIN = 2000
DEFAULT_BUILTIN_VAL = 480

U8Images = NDArray[np.uint8]
Labels = NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class Dataset:
    """A labelled image set split into training and held-out parts."""

    x_train: U8Images
    y_train: Labels
    x_val: U8Images
    y_val: Labels
    class_names: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]
    """(path, reason) of every file that could not be read."""
    source: str

    @property
    def num_classes(self) -> int:
        """Number of classes, the width a classifier's output must have."""
        return len(self.class_names)

    @property
    def size(self) -> int:
        """Image height and width in pixels."""
        return int(self.x_train.shape[1])

    @property
    def channels(self) -> int:
        """1 for grayscale, 3 for RGB."""
        return int(self.x_train.shape[3])


def to_model_input(x_uint8: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Map uint8 pixels to float32 in [-1, 1] (``x / 127.5 - 1``), MobileNet's input range."""
    return (np.asarray(x_uint8, dtype=np.float32) / np.float32(127.5)) - np.float32(1.0)


def _check_geometry(size: int, channels: int, min_size: int) -> None:
    if size < min_size:
        raise InvalidValue(f"image size {size!r} is too small", f"use at least {min_size}")
    if channels not in (1, 3):
        raise InvalidValue(
            f"channels {channels!r} is not supported", "use 1 (grayscale) or 3 (RGB)"
        )


# --------------------------------------------------------------------------- folders


def _list_images(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )


def _read_image(path: Path, size: int, channels: int) -> U8Images:
    """Decode, fix orientation, flatten alpha onto white, scale the short side, crop the centre."""
    mode = "L" if channels == 1 else "RGB"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # palette-transparency and EXIF chatter
        with Image.open(path) as opened:
            opened.draft(mode, (size, size))  # JPEG: let the decoder downscale big photos
            opened.load()
            img: Image.Image = ImageOps.exif_transpose(opened)
            if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                rgba = img.convert("RGBA")
                white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                img = Image.alpha_composite(white, rgba)
            img = ImageOps.fit(img.convert(mode), (size, size), Image.Resampling.BILINEAR)
    array = np.asarray(img, dtype=np.uint8)
    return array.reshape(size, size, channels)


def load_image_folder(
    path: str | Path,
    size: int,
    channels: int,
    val_fraction: float = 0.2,
    seed: int = 0,
    max_per_class: int | None = None,
    *,
    progress: Progress | None = None,
) -> Dataset:
    """Load ``path/<class>/<image>`` into a :class:`Dataset`.

    Class order is the sorted sub-folder names. Images (.png .jpg .jpeg .bmp
    .gif .webp, any case) are converted to RGB or grayscale, their shorter side
    scaled to ``size`` and the centre cropped square; transparency is flattened
    onto white. Each class is split on its own (stratified, ``val_fraction``
    rounded, at least one image on each side), seeded by ``seed``; the
    training part is then shuffled. ``max_per_class`` keeps a seeded random
    subset of each class. Unreadable files are skipped with a
    warning and listed in :attr:`Dataset.skipped`.
    """
    _check_geometry(size, channels, 1)
    if not 0.0 < val_fraction < 1.0:
        raise InvalidValue(
            f"validation fraction {val_fraction!r} is outside (0, 1)", "use e.g. 0.2"
        )
    if max_per_class is not None and max_per_class < 2:
        raise InvalidValue(
            f"max images per class {max_per_class!r} is below 2", "use 2 or more, or no limit"
        )
    root = Path(path)
    if not root.exists():
        raise DataError(
            f"dataset folder {root} does not exist",
            "pass a folder holding one sub-folder of images per class, or 'builtin'",
        )
    if not root.is_dir():
        raise DataError(
            f"dataset path {root} is not a folder",
            "pass a folder holding one sub-folder of images per class",
        )
    class_dirs = sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.name,
    )
    if not class_dirs:
        raise DataError(
            f"dataset folder {root} has no class sub-folders",
            "put the images of each class in their own sub-folder, e.g. cats/, dogs/",
        )
    if len(class_dirs) < 2:
        raise DataError(
            f"dataset folder {root} has only one class ({class_dirs[0].name})",
            "a classifier needs at least 2 class sub-folders",
        )

    files: list[list[Path]] = []
    for index, class_dir in enumerate(class_dirs):
        images = _list_images(class_dir)
        if not images:
            raise DataError(
                f"class folder {class_dir} has no images",
                f"add {', '.join(IMAGE_SUFFIXES)} files or remove the folder",
            )
        if max_per_class is not None and len(images) > max_per_class:
            rng = np.random.default_rng([seed, index, 1])
            keep = np.sort(rng.permutation(len(images))[:max_per_class])
            images = [images[int(i)] for i in keep]
        files.append(images)

    progress = progress or NullProgress()
    progress.start(f"Reading {root}", total=sum(len(f) for f in files))
    skipped: list[tuple[str, str]] = []
    per_class: list[U8Images] = []
    try:
        for class_dir, images in zip(class_dirs, files, strict=True):
            arrays: list[U8Images] = []
            for image_path in images:
                try:
                    arrays.append(_read_image(image_path, size, channels))
                except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
                    reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
                    logger.warning("skipping unreadable image %s (%s)", image_path, reason)
                    skipped.append((str(image_path), reason))
                progress.advance(1, status=class_dir.name)
            if len(arrays) < 2:
                raise DataError(
                    f"class folder {class_dir} has {len(arrays)} readable image(s)",
                    "each class needs at least 2 for the training/validation split",
                )
            per_class.append(np.stack(arrays))
    finally:
        progress.finish()

    x_train, y_train, x_val, y_val = _stratified_split(per_class, val_fraction, seed)
    logger.info(
        "%s: %d classes, %d training and %d validation images, %d skipped",
        root,
        len(class_dirs),
        len(y_train),
        len(y_val),
        len(skipped),
    )
    return Dataset(
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        class_names=tuple(p.name for p in class_dirs),
        skipped=tuple(skipped),
        source=str(root),
    )


def _stratified_split(
    per_class: Sequence[U8Images], val_fraction: float, seed: int
) -> tuple[U8Images, Labels, U8Images, Labels]:
    train_x: list[U8Images] = []
    train_y: list[Labels] = []
    val_x: list[U8Images] = []
    val_y: list[Labels] = []
    for label, images in enumerate(per_class):
        n = len(images)
        n_val = min(max(round(n * val_fraction), 1), n - 1)
        order = np.random.default_rng([seed, label, 2]).permutation(n)
        val_x.append(images[order[:n_val]])
        train_x.append(images[order[n_val:]])
        val_y.append(np.full(n_val, label, dtype=np.int64))
        train_y.append(np.full(n - n_val, label, dtype=np.int64))
    x_train = np.concatenate(train_x)
    y_train = np.concatenate(train_y)
    shuffle = np.random.default_rng([seed, 3]).permutation(len(y_train))
    return x_train[shuffle], y_train[shuffle], np.concatenate(val_x), np.concatenate(val_y)


# --------------------------------------------------------------------------- built-in


@dataclass(frozen=True)
class _ShapeStyle:
    """The knobs that set how hard the built-in shapes are."""

    radius: tuple[float, float] = (0.25, 0.42)
    """Shape circumradius range, as a fraction of the image size."""
    min_luma_contrast: float = 80.0
    """Least luma difference between the shape and either end of the background gradient."""
    texture: float = 6.0
    """Largest amplitude of the smooth background texture (pixel levels)."""
    noise: float = 4.0
    """Largest standard deviation of the pixel noise."""
    line_odds: tuple[float, float, float] = (0.8, 0.2, 0.0)
    """Chance of 0, 1 or 2 distractor strokes."""
    shade: float = 0.15
    """Largest relative brightness change across the shape."""


SHAPE_STYLE = _ShapeStyle()


def _shape_outline(kind: str, radius: float, angle: float) -> list[tuple[float, float]]:
    """Polygon vertices (relative to the centre) for the polygonal classes."""

    def ring_of(count: int, radii: Sequence[float]) -> list[tuple[float, float]]:
        return [
            (
                radii[k % len(radii)] * math.cos(angle + 2 * math.pi * k / count),
                radii[k % len(radii)] * math.sin(angle + 2 * math.pi * k / count),
            )
            for k in range(count)
        ]

    if kind == "square":
        return ring_of(4, [radius])
    if kind == "triangle":
        return ring_of(3, [1.1 * radius])
    if kind == "star":
        return ring_of(10, [1.15 * radius, 0.47 * radius])
    if kind == "plus":
        w = 0.3 * radius
        r = radius
        pts = [(w, r), (w, w), (r, w), (r, -w), (w, -w), (w, -r)]
        pts += [(-w, -r), (-w, -w), (-r, -w), (-r, w), (-w, w), (-w, r)]
        c, s = math.cos(angle), math.sin(angle)
        return [(c * x - s * y, s * x + c * y) for x, y in pts]
    raise ValueError(kind)


def _draw_mask(
    kind: str, size: int, cx: float, cy: float, radius: float, angle: float
) -> NDArray[np.float32]:
    """Anti-aliased coverage in [0, 1] of one shape, drawn at 2x and box-reduced."""
    ss = 2
    canvas = Image.new("L", (size * ss, size * ss), 0)
    draw = ImageDraw.Draw(canvas)
    x0, y0, r = cx * ss, cy * ss, radius * ss
    if kind == "circle":
        rr = 0.85 * r
        draw.ellipse((x0 - rr, y0 - rr, x0 + rr, y0 + rr), fill=255)
    elif kind == "ring":
        outer, inner = 0.95 * r, 0.55 * r
        draw.ellipse((x0 - outer, y0 - outer, x0 + outer, y0 + outer), fill=255)
        draw.ellipse((x0 - inner, y0 - inner, x0 + inner, y0 + inner), fill=0)
    else:
        pts = [(x0 + px, y0 + py) for px, py in _shape_outline(kind, r, angle)]
        draw.polygon(pts, fill=255)
    small = canvas.reduce(ss)
    return np.asarray(small, dtype=np.float32) / np.float32(255.0)


def _draw_lines(size: int, count: int, rng: np.random.Generator) -> NDArray[np.float32]:
    """Coverage of ``count`` random straight strokes crossing the image."""
    ss = 2
    canvas = Image.new("L", (size * ss, size * ss), 0)
    draw = ImageDraw.Draw(canvas)
    for _ in range(count):
        x1, y1, x2, y2 = rng.uniform(-0.1, 1.1, 4) * size * ss
        width = max(1, round(rng.uniform(0.015, 0.04) * size * ss))
        draw.line((x1, y1, x2, y2), fill=255, width=width)
    return np.asarray(canvas.reduce(ss), dtype=np.float32) / np.float32(255.0)


def _luma(rgb: NDArray[np.float64]) -> NDArray[np.float64]:
    weights = np.array([0.299, 0.587, 0.114])
    return np.asarray(rgb @ weights, dtype=np.float64)


def _smooth_noise(
    rng: np.random.Generator, amplitude: NDArray[np.float32], size: int, grid: int
) -> NDArray[np.float32]:
    """Low-frequency noise (n, 3, size, size): a random grid, bilinearly upsampled."""
    n = len(amplitude)
    coarse = rng.standard_normal((n, 3, grid, grid), dtype=np.float32)
    coarse *= amplitude[:, None, None, None]
    pos = np.linspace(0.0, grid - 1.0, size)
    lo = np.minimum(np.floor(pos).astype(int), grid - 2)
    frac = (pos - lo).astype(np.float32)
    interp = np.zeros((size, grid), dtype=np.float32)
    interp[np.arange(size), lo] = 1.0 - frac
    interp[np.arange(size), lo + 1] = frac
    return np.asarray(interp @ coarse @ interp.T, dtype=np.float32)


def _generate_shapes(
    n: int,
    size: int,
    channels: int,
    num_classes: int,
    seed: np.random.SeedSequence,
    style: _ShapeStyle = SHAPE_STYLE,
) -> tuple[U8Images, Labels]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n, dtype=np.int64) % num_classes
    rng.shuffle(labels)
    out = np.empty((n, size, size, channels), dtype=np.uint8)
    chunk = 64
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        out[start:stop] = _render_chunk(labels[start:stop], size, channels, rng, style)
    return out, labels


def _blend(
    img: NDArray[np.float32], colour: NDArray[np.float32], alpha: NDArray[np.float32]
) -> None:
    """In place: ``img = img * (1 - alpha) + colour * alpha``."""
    delta = colour - img
    delta *= alpha
    img += delta


def _render_chunk(
    labels: Labels, size: int, channels: int, rng: np.random.Generator, style: _ShapeStyle
) -> U8Images:
    """Draw one batch of images; works channels-first and transposes at the end."""
    n = len(labels)
    f32 = np.float32
    # Background: a linear gradient between two random colours, low-frequency
    # texture and pixel noise.
    col_a = rng.uniform(0, 255, (n, 3))
    col_b = rng.uniform(0, 255, (n, 3))
    # Foreground colour: random, but the three colours are redrawn until the
    # shape's luma is above or below the whole gradient by a margin, so the
    # shape stays visible in grayscale too.
    fg = rng.uniform(0, 255, (n, 3))
    for _ in range(1000):
        la, lb, lf = _luma(col_a), _luma(col_b), _luma(fg)
        c = style.min_luma_contrast
        clear = (lf >= np.maximum(la, lb) + c) | (lf <= np.minimum(la, lb) - c)
        weak = ~clear
        if not weak.any():
            break
        for colours in (col_a, col_b, fg):
            colours[weak] = rng.uniform(0, 255, (int(weak.sum()), 3))
    theta = rng.uniform(0, 2 * math.pi, n)
    coords = ((np.arange(size) + 0.5) / size - 0.5).astype(f32)
    # Position along the gradient direction, about [-0.71, 0.71]: (n, 1, y, x).
    t = (
        np.cos(theta).astype(f32)[:, None, None] * coords[None, None, :]
        + np.sin(theta).astype(f32)[:, None, None] * coords[None, :, None]
    )[:, None]
    img = _smooth_noise(rng, rng.uniform(0.0, style.texture, n).astype(f32), size, grid=5)
    img += col_a.astype(f32)[:, :, None, None]
    _blend(img, col_b.astype(f32)[:, :, None, None], np.clip(t / f32(1.2) + f32(0.5), 0, 1))

    # Shape geometry: random circumradius, anywhere the shape fits (star tips
    # reach 1.15 radius).
    radius = rng.uniform(*style.radius, n) * size
    margin = np.minimum(1.15 * radius, size / 2)
    cx = rng.uniform(margin, size - margin)
    cy = rng.uniform(margin, size - margin)
    angle = rng.uniform(0, 2 * math.pi, n)
    n_lines = rng.choice([0, 1, 2], size=n, p=list(style.line_odds))
    line_colour = rng.uniform(0, 255, (n, 3, 1, 1)).astype(f32)
    lines_on_top = rng.random(n) < 0.5
    # Shading across the shape so it is not one flat colour.
    shade = rng.uniform(-style.shade, style.shade, n).astype(f32)
    fg_col = fg.astype(f32)[:, :, None, None]
    noise_amp = rng.uniform(0.0, style.noise, n).astype(f32)
    bank = rng.standard_normal((3, 2 * size, 2 * size), dtype=f32)
    offsets = rng.integers(0, size, (n, 2))

    for i in range(n):
        kind = SHAPE_CLASSES[int(labels[i])]
        alpha = _draw_mask(kind, size, cx[i], cy[i], radius[i], angle[i])
        strokes = _draw_lines(size, int(n_lines[i]), rng) if n_lines[i] else None
        if strokes is not None and not lines_on_top[i]:
            _blend(img[i], line_colour[i], strokes)
        colour = fg_col[i] * (f32(1.0) + shade[i] * t[i])
        _blend(img[i], colour, alpha)
        if strokes is not None and lines_on_top[i]:
            _blend(img[i], line_colour[i], strokes)
        oy, ox = offsets[i]
        noise = bank[:, oy : oy + size, ox : ox + size] * noise_amp[i]
        img[i] += noise
    if channels == 1:
        img = np.tensordot(np.array([0.299, 0.587, 0.114], dtype=f32), img, axes=(0, 1))[:, None]
    np.rint(img, out=img)
    np.clip(img, 0, 255, out=img)
    return img.astype(np.uint8).transpose(0, 2, 3, 1)


def builtin_dataset(
    size: int,
    channels: int,
    n_train: int = DEFAULT_BUILTIN_TRAIN,
    n_val: int = DEFAULT_BUILTIN_VAL,
    seed: int = 0,
    classes: int | None = None,
) -> Dataset:
    """The built-in ``shapes`` set: drawn, not downloaded, identical bytes for one seed.

    Each image holds one shape of :data:`SHAPE_CLASSES` (``classes`` picks the
    first K, default 4: circle, triangle, plus, ring) with random size,
    position, rotation and colour, lightly shaded, on a random two-colour
    gradient with smooth texture and pixel noise; one image in five is crossed
    by a random stroke drawn over or under the shape. The shape is lighter or
    darker than the whole background (either way, at random), so it shows in
    grayscale too. Colours are independent of the class: only the outline
    tells classes apart. Classes are balanced; the held-out split comes from
    its own random stream, so it does not change with ``n_train``.

    MobileNet V1 0.25 at 96x96 learns the 4-class set to 93-99 % held-out
    accuracy in 6 epochs of 2000 images; all 6 classes need about twice that.
    """
    _check_geometry(size, channels, 32)
    k = DEFAULT_SHAPE_CLASSES if classes is None else classes
    if not 2 <= k <= len(SHAPE_CLASSES):
        raise InvalidValue(
            f"the builtin shapes dataset has no {k!r}-class variant",
            f"ask for 2 to {len(SHAPE_CLASSES)} classes",
        )
    if n_train < k or n_val < k:
        raise InvalidValue(
            f"builtin dataset sizes n_train={n_train}, n_val={n_val} are too small",
            f"ask for at least one image per class ({k})",
        )
    train_seq, val_seq = np.random.SeedSequence(seed).spawn(2)
    x_train, y_train = _generate_shapes(n_train, size, channels, k, train_seq)
    x_val, y_val = _generate_shapes(n_val, size, channels, k, val_seq)
    return Dataset(
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        class_names=SHAPE_CLASSES[:k],
        skipped=(),
        source="builtin:shapes",
    )


def load_dataset(
    source: str | Path,
    size: int,
    channels: int,
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    max_per_class: int | None = None,
    n_train: int = DEFAULT_BUILTIN_TRAIN,
    n_val: int = DEFAULT_BUILTIN_VAL,
    classes: int | None = None,
    progress: Progress | None = None,
) -> Dataset:
    """``"builtin"`` / ``"builtin:shapes"`` give :func:`builtin_dataset`; anything else is a folder.

    ``val_fraction`` and ``max_per_class`` apply to folders, ``n_train``,
    ``n_val`` and ``classes`` to the built-in set. A folder literally named
    ``builtin`` is reached as ``./builtin``.
    """
    if isinstance(source, str) and (source == "builtin" or source.startswith("builtin:")):
        if source not in BUILTIN_SOURCES:
            raise InvalidValue(
                f"unknown builtin dataset {source!r}", f"use one of {', '.join(BUILTIN_SOURCES)}"
            )
        return builtin_dataset(
            size, channels, n_train=n_train, n_val=n_val, seed=seed, classes=classes
        )
    if classes is not None:
        raise InvalidValue(
            f"classes={classes} only applies to the builtin dataset",
            "a folder's classes are its sub-folders",
        )
    return load_image_folder(
        source,
        size,
        channels,
        val_fraction=val_fraction,
        seed=seed,
        max_per_class=max_per_class,
        progress=progress,
    )


def balanced_pick(labels: NDArray[np.int64], count: int, seed: int = 0) -> NDArray[np.int64]:
    """Indices of up to ``count`` items drawn class by class, so that every class is covered.

    Each class's items are shuffled (seeded); the draw then takes one item of
    each class in turn (the classes in a seeded order) until ``count`` items
    are taken or all are: the classes get equal shares, give or take one, and
    every class appears once ``count`` reaches the number of classes. Held-out
    splits are sorted by class, so their first items are usually all one class.
    """
    if count < 0:
        raise InvalidValue(f"count {count!r} is negative", "ask for 0 or more items")
    labels = np.asarray(labels)
    rng = np.random.default_rng([seed, 5])
    classes = np.unique(labels)
    pools = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    order = rng.permutation(len(classes))
    picked: list[int] = []
    depth = 0
    while len(picked) < count and any(depth < len(pool) for pool in pools):
        for k in order:
            if depth < len(pools[k]) and len(picked) < count:
                picked.append(int(pools[k][depth]))
        depth += 1
    return np.asarray(picked, dtype=np.int64)


def representative_samples(dataset: Dataset, count: int = 200, seed: int = 0) -> U8Images:
    """Up to ``count`` training images (uint8), a seeded random pick, for int8 calibration."""
    if count < 1:
        raise InvalidValue(f"representative sample count {count!r} is below 1", "use e.g. 200")
    n = len(dataset.x_train)
    pick = np.random.default_rng([seed, 4]).permutation(n)[: min(count, n)]
    return dataset.x_train[np.sort(pick)]
