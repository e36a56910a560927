"""The pinned versions of TFLM and its kernel libraries (``boards/tflm/versions.toml``)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from mnmcu import paths
from mnmcu.errors import InvalidValue

_VERSIONS_FILE = ("tflm", "versions.toml")
VERSIONS_SOURCE = "boards/tflm/versions.toml"


@dataclass(frozen=True)
class Pin:
    """One pinned dependency: what, which version, where the pin was read."""

    name: str
    version: str
    source: str


@dataclass(frozen=True)
class TflmVersions:
    """The contents of ``boards/tflm/versions.toml``."""

    tflm_repository: str
    tflm_commit: str
    tflm_commit_date: str
    makefile_options: str
    cmsis_nn_commit: str
    cmsis_nn_md5: str
    arm_toolchains: tuple[tuple[str, str], ...]
    esp_component: str
    esp_version: str
    esp_nn_component: str
    esp_nn_version: str
    idf_version: str
    notes: tuple[tuple[str, str], ...]
    """(route, how far a pin of that route could be verified)."""

    def toolchain_for(self, platform: str) -> str | None:
        """The ``platform_packages`` toolchain pin for a platform spec, if any."""
        name = platform.split("@", 1)[0].strip()
        return dict(self.arm_toolchains).get(name)


def load_versions(path: Path | None = None) -> TflmVersions:
    """Read the pinned TFLM versions (default: the shipped ``boards/tflm/versions.toml``)."""
    path = path or paths.data_dir("boards").joinpath(*_VERSIONS_FILE)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        tflm, cmsis, esp = data["tflm"], data["tflm"]["cmsis_nn"], data["esp"]
        return TflmVersions(
            tflm_repository=tflm["repository"],
            tflm_commit=tflm["commit"],
            tflm_commit_date=tflm["commit_date"],
            makefile_options=tflm["makefile_options"],
            cmsis_nn_commit=cmsis["commit"],
            cmsis_nn_md5=cmsis["md5"],
            arm_toolchains=tuple(sorted(data["arm"]["toolchain"].items())),
            esp_component=esp["component"],
            esp_version=esp["version"],
            esp_nn_component=esp["nn_component"],
            esp_nn_version=esp["nn_version"],
            idf_version=esp["idf_version"],
            notes=(
                ("tflm-tree", f"tflite-micro {tflm['commit'][:12]}: {tflm['verified']}"),
                ("tflm-tree", f"CMSIS-NN {cmsis['commit'][:12]}: {cmsis['verified']}"),
                ("esp-idf", f"{esp['component']} {esp['version']}: {esp['verified']}"),
                ("esp-idf", f"{esp['nn_component']} {esp['nn_version']}: {esp['nn_verified']}"),
            ),
        )
    except (OSError, tomllib.TOMLDecodeError, KeyError) as exc:
        raise InvalidValue(
            f"cannot read the pinned TFLM versions from {path} ({exc!r})",
            "reinstall mnmcu or restore boards/tflm/versions.toml",
        ) from None
