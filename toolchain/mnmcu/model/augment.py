"""The training augmentations ``--augment`` chooses from (no TensorFlow needed to list them)."""

from __future__ import annotations

from mnmcu.errors import InvalidValue

SHIFT_FRACTION = 1.0 / 16
"""Largest random shift, as a fraction of the image size."""

AUGMENTATIONS: dict[str, str] = {
    "none": "the training images as they are",
    "shift": "random shifts of up to 1/16 of the image each way (edges reflected)",
    "flip": "random horizontal mirroring",
    "flip-shift": "random horizontal mirroring and shifts of up to 1/16 of the image",
}
"""Each augmentation and what it does to every training image in every epoch.

Mirroring suits photos of things that look alike mirrored (animals, objects);
it is wrong for digits, letters, arrows or anything whose class depends on
left and right, hence the default without it. Held-out images are never
augmented.
"""

DEFAULT_AUGMENT = "shift"


def check_augment(augment: str) -> str:
    """``augment`` if it names one of :data:`AUGMENTATIONS`; :class:`InvalidValue` otherwise."""
    if augment not in AUGMENTATIONS:
        raise InvalidValue(
            f"augmentation {augment!r} is unknown", f"use one of {', '.join(AUGMENTATIONS)}"
        )
    return augment


def flips(augment: str) -> bool:
    """Whether ``augment`` mirrors images."""
    return check_augment(augment) in ("flip", "flip-shift")


def shifts(augment: str) -> bool:
    """Whether ``augment`` shifts images."""
    return check_augment(augment) in ("shift", "flip-shift")
