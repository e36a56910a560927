"""Image folders for tests: handwriting-like digits drawn with Pillow, no download.

:func:`write_digits` writes ``root/<digit>/<n>.png``: each image one digit
(Pillow's built-in FreeType font) at a random size, position, slant,
stroke brightness and background, with pixel noise, in grayscale. Mirrored,
several digits change class or become no digit at all, which is what
``--augment`` is about.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def digit_image(digit: int, size: int, rng: np.random.Generator) -> Image.Image:
    """One grayscale ``size`` x ``size`` image of ``digit``."""
    canvas = 64
    font = ImageFont.load_default(size=int(rng.integers(34, 50)))
    glyph = Image.new("L", (canvas, canvas), 0)
    draw = ImageDraw.Draw(glyph)
    left, top, right, bottom = draw.textbbox((0, 0), str(digit), font=font)
    x = (canvas - (right - left)) / 2 - left + rng.uniform(-6, 6)
    y = (canvas - (bottom - top)) / 2 - top + rng.uniform(-6, 6)
    draw.text((x, y), str(digit), fill=255, font=font, stroke_width=int(rng.integers(0, 3)))
    slant = rng.uniform(-0.25, 0.25)
    glyph = glyph.transform(
        (canvas, canvas),
        Image.Transform.AFFINE,
        (1, slant, -slant * canvas / 2, 0, 1, 0),
        Image.Resampling.BILINEAR,
    )
    glyph = glyph.rotate(rng.uniform(-12, 12), Image.Resampling.BILINEAR)
    ink = np.asarray(glyph.resize((size, size), Image.Resampling.BILINEAR), np.float32) / 255
    background = rng.uniform(0, 90)
    stroke = rng.uniform(170, 255)
    pixels = background + (stroke - background) * ink + rng.normal(0, 8, (size, size))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="L")


def write_digits(
    root: Path, per_class: int = 20, size: int = 32, digits: int = 10, seed: int = 0
) -> Path:
    """Write ``digits`` class folders (``0`` ... ``9``) of ``per_class`` PNG images each."""
    rng = np.random.default_rng(seed)
    for digit in range(digits):
        folder = root / str(digit)
        folder.mkdir(parents=True, exist_ok=True)
        for n in range(per_class):
            digit_image(digit, size, rng).save(folder / f"{n:03d}.png")
    return root
