"""Small helpers that write C literals: arrays, identifiers, numbers, banners.

Templates give generated files their structure; every literal inside them
comes from here, so formatting is uniform and deterministic (the same values
give the same bytes).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import jinja2
import numpy as np

from mnmcu import __version__, escape
from mnmcu.paths import data_dir

# Keywords of C99, C11, C23 and C++ (generated headers are included from C++),
# plus names the C library defines as macros. An identifier equal to one of
# these gets a trailing underscore.
C_KEYWORDS = frozenset(
    """
    auto break case char const continue default do double else enum extern float for goto if
    inline int long register restrict return short signed sizeof static struct switch typedef
    union unsigned void volatile while _Alignas _Alignof _Atomic _Bool _Complex _Generic
    _Imaginary _Noreturn _Static_assert _Thread_local alignas alignof bool constexpr false
    nullptr static_assert thread_local true typeof typeof_unqual _BitInt _Decimal128
    _Decimal32 _Decimal64 asm catch class const_cast decltype delete dynamic_cast explicit
    export friend mutable namespace new noexcept operator private protected public
    reinterpret_cast static_cast template this throw try typeid typename using virtual
    wchar_t char8_t char16_t char32_t concept consteval constinit co_await co_return co_yield
    requires and and_eq bitand bitor compl not not_eq or or_eq xor xor_eq
    NULL EOF assert errno offsetof main
    """.split()
)

# C integer type -> (min, max).
_C_TYPES: dict[str, tuple[int, int]] = {
    "int8_t": (-(2**7), 2**7 - 1),
    "uint8_t": (0, 2**8 - 1),
    "int16_t": (-(2**15), 2**15 - 1),
    "int32_t": (-(2**31), 2**31 - 1),
    "int64_t": (-(2**63), 2**63 - 1),
}

LINE_WIDTH = 100


def c_identifier(text: str, prefix: str = "") -> str:
    """``text`` made a valid, non-reserved C identifier.

    Characters other than letters, digits and ``_`` become ``_`` (runs
    collapsed), leading underscores are dropped (names starting with ``_``
    are reserved), a leading digit or an empty result gets ``prefix`` or
    ``m``, and a keyword gets a trailing ``_``.
    """
    name = re.sub(r"[^A-Za-z0-9_]+", "_", prefix + text)
    name = re.sub(r"_+", "_", name).strip("_")
    if not name or name[0].isdigit():
        name = (prefix or "m") + ("_" if name else "") + name
        name = re.sub(r"_+", "_", name).strip("_")
    if name in C_KEYWORDS:
        name += "_"
    return name


def c_int(value: int, ctype: str = "int32_t") -> str:
    """An integer literal that is valid for ``ctype`` (INT_MIN safe)."""
    v = int(value)
    if ctype == "int64_t":
        if v == -(2**63):
            return "(INT64_C(-9223372036854775807) - 1)"
        return f"INT64_C({v})"
    if v == -(2**31):
        return "(-2147483647 - 1)"
    if not -(2**31) < v < 2**31:
        raise ValueError(f"{v} does not fit in {ctype}")
    return str(v)


def c_float(value: float) -> str:
    """A float literal (``f`` suffix) that reads back as the same float32."""
    f = np.float32(value)
    if not math.isfinite(float(f)):
        raise ValueError(f"{value} is not a finite float")
    text = f"{float(f):.9g}"
    if "e" not in text and "." not in text:
        text += ".0"
    return text + "f"


def c_string(text: str) -> str:
    """A C string literal of ``text``, read back as its UTF-8 bytes.

    ``"`` and ``\\`` are escaped, every ``?`` too (``\\?``: with trigraphs
    enabled, ``??=`` or ``??/`` would become another character, ``??/`` an
    escape), and every byte outside printable ASCII is an octal escape (three
    digits, so a following digit cannot extend it). The literal is on one line.
    """
    try:
        data = text.encode("utf-8", "surrogateescape")  # a non-UTF-8 file name: its bytes
    except UnicodeEncodeError:
        data = text.encode("utf-8", "backslashreplace")
    out = []
    for byte in data:
        ch = chr(byte)
        if ch in ('"', "\\", "?"):
            out.append("\\" + ch)
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def c_comment(text: str) -> str:
    """``text`` safe inside a ``/* */`` comment, on one line, ASCII only.

    Control and non-ASCII characters are shown as escapes (``\\n``,
    ``\\u00e9``); ``*/`` and ``/*`` are broken up, so the comment neither ends
    early nor nests (``-Wcomment``), and so is every ``??`` (no trigraph).
    """
    clean = escape.ascii_visible(text)
    clean = clean.replace("*/", "* /").replace("/*", "/ *")
    return re.sub(r"\?(?=\?)", "? ", clean)


def _wrap(items: Sequence[str], indent: str = "    ", width: int = LINE_WIDTH) -> str:
    lines: list[str] = []
    line = indent
    for i, item in enumerate(items):
        piece = item + ("," if i < len(items) - 1 else "")
        if line != indent and len(line) + 1 + len(piece) > width:
            lines.append(line.rstrip())
            line = indent
        line += ("" if line == indent else " ") + piece
    if line.strip():
        lines.append(line.rstrip())
    return "\n".join(lines)


def c_array(
    name: str,
    values: np.ndarray | Sequence[int],
    ctype: str,
    comment: str = "",
    align: int = 16,
    static: bool = True,
) -> str:
    """A const C array with its element count as ``<name>_size``.

    Writes ``MNMCU_ALIGN(16) static const <ctype> <name>[N] = {...};``
    preceded by ``enum { <name>_size = N };``, values flattened in C order,
    lines wrapped at 100 columns. Raises ``ValueError`` when a value does not
    fit ``ctype`` or ``name`` is not a valid identifier.
    """
    if ctype not in _C_TYPES:
        raise ValueError(f"unsupported C type {ctype!r}")
    if c_identifier(name) != name:
        raise ValueError(f"{name!r} is not a valid C identifier")
    lo, hi = _C_TYPES[ctype]
    flat = [int(v) for v in np.asarray(values).reshape(-1)]
    if not flat:
        raise ValueError(f"array {name} is empty")
    if min(flat) < lo or max(flat) > hi:
        raise ValueError(f"array {name} has values outside {ctype}")
    items = [c_int(v, ctype) for v in flat]
    head = f"/* {c_comment(comment)} */\n" if comment else ""
    storage = "static " if static else ""
    return (
        f"{head}enum {{ {name}_size = {len(flat)} }};\n"
        f"MNMCU_ALIGN({align}) {storage}const {ctype} {name}[{len(flat)}] = {{\n"
        f"{_wrap(items)}\n}};\n"
    )


def c_dims(dims: Iterable[int]) -> str:
    """A braced initializer of an ``mnmcu_dims_t``: ``{1, 96, 96, 3}``."""
    return "{" + ", ".join(c_int(d) for d in dims) + "}"


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def banner_lines(filename: str, model_name: str, model_sha256: str, what: str) -> list[str]:
    """The text of the banner that opens every generated file, one string per line.

    It names the file, the generator and its version, the source model and
    its SHA-256, and says not to edit the file. The lines are raw text: each
    format's writer puts them through its comment helper (:func:`c_comment`,
    :func:`mnmcu.escape.hash_comment`, ...), which keeps a hostile model
    name on its line.
    """
    return [
        filename,
        what,
        "",
        f"Generated by mnmcu {__version__} from model {model_name}",
        f"(SHA-256 {model_sha256}).",
        "Do not edit: changes are lost when mnmcu generates this file again.",
    ]


def banner(filename: str, model_name: str, model_sha256: str, what: str) -> str:
    """:func:`banner_lines` as a C block comment."""
    lines = banner_lines(filename, model_name, model_sha256, what)
    body = "\n".join((" * " + c_comment(line)).rstrip() for line in lines)
    return f"/*\n{body}\n */\n"


def guard_macro(filename: str) -> str:
    """Include-guard macro for a header file name, e.g. ``MNMCU_MODEL_VWW_H``."""
    return c_identifier(filename).upper()


def template_env(subdir: str) -> jinja2.Environment:
    """Jinja environment over ``firmware/templates/<subdir>``, strict about undefined names."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(data_dir("firmware") / "templates" / subdir)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
