"""The user's model choice, validated before anything heavy is imported."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mnmcu.errors import InvalidValue, ModelError

ARCHS = ("v1", "v2", "v3-small", "v3-large")
MAX_ALPHA = 1.4
MIN_RESOLUTION = 32
MAX_RESOLUTION = 1024
MAX_CLASSES = 1000
MAX_CLASS_NAME = 64

# The narrowest layer of each architecture before alpha is applied, and how
# Keras rounds it: V1 truncates (int(32 * alpha)), V2/V3 round to multiples of 8
# with a floor of 8, so they never reach zero channels.
_V1_NARROWEST = 32

# Where Keras publishes ImageNet weights (keras.applications, include_top=False).
# V1 and V2 have one file per (alpha, size) for the sizes listed; other input
# sizes load the 224 file, which is valid for a convolutional backbone.
PRETRAINED_ALPHAS: dict[str, tuple[float, ...]] = {
    "v1": (0.25, 0.5, 0.75, 1.0),
    "v2": (0.35, 0.5, 0.75, 1.0, 1.3, 1.4),
    "v3-small": (0.75, 1.0),
    "v3-large": (0.75, 1.0),
}


def parse_float(name: str, text: str | float) -> float:
    """Parse a numeric flag value, naming it in the error."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise InvalidValue(f"{name} {text!r} is not a number", _ALLOWED[name]) from None
    if not math.isfinite(value):
        raise InvalidValue(f"{name} {text!r} is not a finite number", _ALLOWED[name])
    return value


_ALLOWED = {
    "alpha": "use a width multiplier in (0, 1.4], e.g. 0.25, 0.5, 1.0",
    "rho": "use a resolution multiplier in (0, 1], e.g. 0.4286 for 96x96 (input = round(224*rho))",
    "resolution": f"use an input size from {MIN_RESOLUTION} to {MAX_RESOLUTION} pixels, e.g. 96",
    "classes": f"use at least 2 and at most {MAX_CLASSES} classes",
}


def check_alpha(alpha: float, arch: str = "v1") -> float:
    """Return alpha if a model of ``arch`` can be built with it."""
    if not 0 < alpha <= MAX_ALPHA:
        raise InvalidValue(f"alpha {alpha:g} is out of range", _ALLOWED["alpha"])
    if arch == "v1" and int(_V1_NARROWEST * alpha) < 1:
        raise InvalidValue(
            f"alpha {alpha:g} leaves v1's first layer with 0 channels",
            f"use alpha >= {1 / _V1_NARROWEST:g} for v1",
        )
    return alpha


def resolution_from(rho: float | None, resolution: int | None) -> int:
    """Input size from the resolution multiplier rho or an explicit size."""
    if rho is not None and resolution is not None:
        raise InvalidValue(
            f"both rho {rho:g} and resolution {resolution} given", "give one of --rho, --resolution"
        )
    if resolution is None:
        if rho is None:
            rho = 1.0
        if not 0 < rho <= 1:
            raise InvalidValue(f"rho {rho:g} is out of range", _ALLOWED["rho"])
        resolution = round(224 * rho)
        if resolution < MIN_RESOLUTION:
            raise InvalidValue(
                f"rho {rho:g} gives a {resolution}x{resolution} input, below {MIN_RESOLUTION}",
                f"use rho >= {MIN_RESOLUTION / 224:.4f}",
            )
        return resolution
    if not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION:
        raise InvalidValue(f"resolution {resolution} is out of range", _ALLOWED["resolution"])
    return resolution


@dataclass(frozen=True)
class ModelSpec:
    """What to build: architecture, width/resolution multipliers, classes."""

    arch: str = "v1"
    alpha: float = 0.25
    resolution: int = 96
    classes: int = 2
    channels: int = 3
    pretrained: str | None = None
    dropout: float = 0.1
    class_names: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise InvalidValue(f"arch {self.arch!r} is unknown", f"use one of {', '.join(ARCHS)}")
        check_alpha(self.alpha, self.arch)
        resolution_from(None, self.resolution)
        if self.classes < 2:
            raise InvalidValue(f"classes {self.classes} is too few", _ALLOWED["classes"])
        if self.classes > MAX_CLASSES:
            raise InvalidValue(f"classes {self.classes} is too many", _ALLOWED["classes"])
        if self.channels not in (1, 3):
            raise InvalidValue(
                f"channels {self.channels} is not supported", "use 3 (RGB) or 1 (grayscale)"
            )
        if self.class_names and len(self.class_names) != self.classes:
            raise InvalidValue(
                f"{len(self.class_names)} class names for {self.classes} classes",
                "give one name per class",
            )
        if self.pretrained not in (None, "imagenet"):
            raise InvalidValue(
                f"pretrained {self.pretrained!r} is unknown", "use 'imagenet' or leave it out"
            )
        if self.pretrained == "imagenet":
            check_pretrained(self)

    @property
    def name(self) -> str:
        """A short identifier, e.g. ``mobilenet_v1_a0.25_96``."""
        gray = "_gray" if self.channels == 1 else ""
        return f"mobilenet_{self.arch.replace('-', '_')}_a{self.alpha:g}_{self.resolution}{gray}"

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.resolution, self.resolution, self.channels)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["class_names"] = list(self.class_names)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        if "class_names" in known:
            known["class_names"] = tuple(known["class_names"])
        return cls(**known)

    def save(self, path: Path) -> None:
        from mnmcu.outdir import json_text, write_file

        write_file(path, json_text(self.to_dict()))

    @classmethod
    def load(cls, path: Path) -> ModelSpec:
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except FileNotFoundError:
            raise ModelError(
                f"model description {path} is missing", "build the model with 'mnmcu model'"
            ) from None
        except (json.JSONDecodeError, TypeError) as exc:
            raise ModelError(f"model description {path} is unreadable ({exc})") from None


def class_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a class in the firmware, or ``None`` if it can.

    The firmware prints the class name in its boot line, whose fields are
    separated by spaces, and stores it as a C string: printable ASCII
    without spaces, at most 64 characters.
    """
    if not name:
        return "is empty"
    if any(not (" " < ch <= "~") for ch in name):
        return "has spaces, control or non-ASCII characters"
    if len(name) > MAX_CLASS_NAME:
        return f"is longer than {MAX_CLASS_NAME} characters"
    return None


def check_class_names(names: Sequence[str], what: str = "class name", where: str = "") -> None:
    """Raise :class:`InvalidValue` for the first of ``names`` the firmware cannot carry.

    The message reads ``<what> '<name>'<where> <problem>``.
    """
    for name in names:
        problem = class_name_problem(name)
        if problem is not None:
            shown = repr(name) if len(repr(name)) <= 80 else repr(name)[:76] + "...'"
            raise InvalidValue(
                f"{what} {shown}{where} {problem}",
                "use printable ASCII without spaces, at most "
                f"{MAX_CLASS_NAME} characters (the boot line separates fields by spaces)",
            )


def pretrained_combinations() -> str:
    """Human-readable list of the (arch, alpha) pairs with ImageNet weights."""
    return "; ".join(
        f"{arch}: alpha {', '.join(f'{a:g}' for a in alphas)}"
        for arch, alphas in PRETRAINED_ALPHAS.items()
    )


def check_pretrained(spec: ModelSpec) -> None:
    """Raise unless Keras publishes ImageNet weights for this spec."""
    alphas = PRETRAINED_ALPHAS[spec.arch]
    if spec.channels != 3:
        raise InvalidValue(
            "ImageNet weights need 3-channel (RGB) input",
            "drop --grayscale or --pretrained",
        )
    if not any(math.isclose(spec.alpha, a) for a in alphas):
        raise InvalidValue(
            f"no ImageNet weights for {spec.arch} alpha {spec.alpha:g}",
            f"Keras has them for {pretrained_combinations()}",
        )
