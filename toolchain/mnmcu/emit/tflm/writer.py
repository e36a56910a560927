"""What both routes write with: the template writer and a route's platformio.ini additions."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mnmcu import escape
from mnmcu.emit import cgen
from mnmcu.emit.tflm.versions import Pin
from mnmcu.outdir import write_file


@dataclass
class Writer:
    """Renders templates of ``firmware/templates/tflm`` into a project, remembering the files."""

    project_dir: Path
    model_name: str
    sha: str
    context: dict[str, Any]
    written: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.env = cgen.template_env("tflm")

    def banner(self, path: Path, what: str, style: str) -> str:
        """The generated-file banner as a C comment, ``#`` lines or an HTML comment."""
        if style == "c":
            return cgen.banner(path.name, self.model_name, self.sha, what)
        lines = cgen.banner_lines(path.name, self.model_name, self.sha, what)
        if style == "html":
            return "<!--\n" + "".join(escape.html_comment(line) + "\n" for line in lines) + "-->"
        return "".join(escape.hash_comment(line) + "\n" for line in lines)

    def render(self, template: str, path: Path, what: str, style: str, **extra: Any) -> str:
        banner = self.banner(path, what, style) if what else ""
        text: str = self.env.get_template(template).render(banner=banner, **self.context, **extra)
        write_file(path, text)
        self.written.append(path)
        return text


@dataclass(frozen=True)
class RouteFiles:
    """What a route adds to platformio.ini, and its pins."""

    build_flags: tuple[str, ...] = ()
    build_unflags: tuple[str, ...] = ()
    build_src_flags: tuple[str, ...] = ()
    platform_packages: tuple[str, ...] = ()
    extra_scripts: tuple[str, ...] = ()
    pins: tuple[Pin, ...] = ()
