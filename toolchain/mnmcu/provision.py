"""PlatformIO's ``tool-scons`` package, provisioned offline from PyPI's ``scons``.

``pio run`` builds with SCons, which PlatformIO installs as its ``tool-scons``
package from its registry on first use. :func:`provision_offline` puts that
package into a PlatformIO core dir from the ``scons`` Python package installed
beside mnmcu, so a build needs no network: :func:`mnmcu.build.pio_run` does
it before every build, and ``mnmcu emit`` does it into a project whose
``platformio.ini`` names its own core dir (:func:`provision_project`), so
that a plain ``pio run`` there builds offline too.
"""

from __future__ import annotations

import configparser
import json
import os
import shutil
from pathlib import Path

from mnmcu.errors import InvalidValue, ToolMissing
from mnmcu.log import logger

SCONS_PACKAGE = "tool-scons"
PIOPM = ".piopm"
# SCons's DocBook tool carries 20 MB of XSL stylesheets PlatformIO never uses.
_SCONS_IGNORE = ("__pycache__", "*.pyc", "docbook-xsl-*")
_SCONS_LAUNCHER = '''\
"""SCons launcher of the tool-scons package mnmcu provisioned offline."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import SCons.Script  # noqa: E402

SCons.Script.main()
'''


def scons_package_version(scons_version: str) -> str:
    """PlatformIO's version of a tool-scons package: SCons 4.11.1 -> ``4.41101.0``."""
    parts = scons_version.split(".")
    if len(parts) < 3 or not all(p.isdigit() for p in parts[:3]):
        raise InvalidValue(f"unexpected SCons version {scons_version!r}")
    major, minor, patch = (int(p) for p in parts[:3])
    return f"{major}.{major}{minor:02d}{patch:02d}.0"


def _required_scons() -> str:
    """The tool-scons requirement of the installed PlatformIO, e.g. ``~4.41101.0``."""
    try:
        from platformio.dependencies import get_core_dependencies
    except ImportError:
        raise ToolMissing("PlatformIO is not installed", "pip install platformio") from None
    return str(get_core_dependencies()[SCONS_PACKAGE])


def _scons_source() -> tuple[Path, str]:
    try:
        import SCons
    except ImportError:
        raise ToolMissing(
            "the scons Python package is not installed", "pip install scons==4.11.1"
        ) from None
    return Path(SCons.__file__).resolve().parent, str(SCons.__version__)


def _satisfies(version: str, requirement: str) -> bool:
    import semantic_version

    return semantic_version.Version(version) in semantic_version.NpmSpec(requirement)


def provision_offline(core_dir: Path) -> None:
    """Install PlatformIO's ``tool-scons`` package into ``core_dir`` from PyPI's scons.

    Writes ``<core_dir>/packages/tool-scons`` with the ``SCons`` package, a
    ``scons.py`` launcher, a ``package.json`` and the ``.piopm`` metadata
    PlatformIO's package manager reads (spec owner ``platformio``), so
    ``pio run`` finds the package it would otherwise download. Does nothing
    when a version PlatformIO accepts is already there (provisioned or
    downloaded). Raises :class:`ToolMissing`
    when the installed scons does not satisfy the installed PlatformIO.
    """
    source, scons_version = _scons_source()
    version = scons_package_version(scons_version)
    requirement = _required_scons()
    if not _satisfies(version, requirement):
        raise ToolMissing(
            f"PlatformIO needs tool-scons {requirement} but the installed scons is "
            f"{scons_version} (package version {version})",
            "install the scons release PlatformIO expects (pyproject.toml pins it)",
        )
    package = Path(core_dir) / "packages" / SCONS_PACKAGE
    meta = package / PIOPM
    if meta.is_file():
        try:
            present = str(json.loads(meta.read_text(encoding="utf-8")).get("version"))
            if _satisfies(present, requirement):
                return  # ours or PlatformIO's own download: either serves
        except (OSError, ValueError):
            pass
    if package.exists():
        shutil.rmtree(package)
    package.mkdir(parents=True)
    shutil.copytree(source, package / "SCons", ignore=shutil.ignore_patterns(*_SCONS_IGNORE))
    (package / "scons.py").write_text(_SCONS_LAUNCHER, encoding="utf-8")
    manifest = {
        "name": SCONS_PACKAGE,
        "version": version,
        "description": f"SCons {scons_version}, provisioned offline by mnmcu from PyPI's scons",
        "keywords": ["build tool"],
        "homepage": "https://scons.org",
        "license": "MIT",
        "system": "*",
    }
    (package / "package.json").write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
    # The metadata PlatformIO writes for an installed package (platformio/package/meta.py,
    # PackageMetadata.as_dict); written last, so a half-copied package is not used.
    metadata = {
        "type": "tool",
        "name": SCONS_PACKAGE,
        "version": version,
        "spec": {
            "owner": "platformio",
            "id": None,
            "name": SCONS_PACKAGE,
            "requirements": None,
            "uri": None,
        },
    }
    meta.write_text(json.dumps(metadata), encoding="utf-8")
    logger.debug(
        "provisioned %s %s (SCons %s) in %s", SCONS_PACKAGE, version, scons_version, package
    )


def project_core_dir(project_dir: Path) -> Path | None:
    """The core dir a project's ``platformio.ini`` names (``[platformio] core_dir``), or None.

    A relative path is relative to the project, as PlatformIO resolves it
    when ``pio run`` runs in (or with ``-d``) the project.
    """
    ini = Path(project_dir) / "platformio.ini"
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(ini.read_text(encoding="utf-8"), source=str(ini))
    except (OSError, configparser.Error) as exc:
        raise InvalidValue(f"cannot read {ini} ({exc})") from None
    value = parser.get("platformio", "core_dir", fallback="").strip()
    return Path(project_dir) / value if value else None


def provision_project(project_dir: Path) -> Path | None:
    """Provision ``tool-scons`` where ``pio run`` in the project will look for it.

    That is ``PLATFORMIO_CORE_DIR`` when set (it overrides the project's
    setting), else the core dir the project's ``platformio.ini`` names.
    Returns the core dir provisioned, or None for a project that names none
    (a board whose platform PlatformIO downloads, with ``tool-scons``, into
    its default core dir ``~/.platformio``).
    """
    core = project_core_dir(project_dir)
    if core is None:
        return None
    configured = os.environ.get("PLATFORMIO_CORE_DIR")
    if configured:
        core = Path(configured)
    provision_offline(core)
    return core
