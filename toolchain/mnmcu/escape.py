"""One escaping rule per text format mnmcu writes.

User-controlled text (model and file names, paths, tensor and class names,
board-file fields, what a device reports) reaches many formats. Every writer
puts such text through the helper of its format here (C literals are in
:mod:`mnmcu.emit.cgen`, which builds on :func:`visible`), so that it can
never start a new line, section, option, directive or command:

* ``#`` line comments (CMake, YAML, sdkconfig, Python, .gitignore, .resc,
  .robot): :func:`hash_comment`
* INI (platformio.ini): :func:`ini_comment`, :func:`ini_key`, :func:`ini_value`,
  :func:`ini_flag`
* Kconfig strings (sdkconfig.defaults): :func:`kconfig_string`
* Python literals: :func:`py_string`; YAML: :func:`yaml_string`, :func:`yaml_key`
* Markdown: :func:`md_text`, :func:`md_code`; :func:`html_comment` for banners
* Renode and Robot Framework: :func:`renode_path`, :func:`robot_value`
* XML text (JUnit reports): :func:`xml_text`
* shell commands printed for the user: :func:`shell_quote`, :func:`shell_join`

Comments and display text are escaped (a line break shows as ``\\n``);
values a format cannot escape (an INI value with a line break or ``${``, a
path Renode cannot quote) raise :class:`UnsafeText`, one line naming the
value, what it is and what is allowed. JSON needs no helper: ``json.dumps``
escapes control characters by construction.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from pathlib import PurePath

from mnmcu.errors import InvalidValue


class UnsafeText(InvalidValue):
    """Text that cannot be written into a generated file unchanged and safely."""


_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(ch: str) -> str:
    if ch in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[ch]
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def is_plain(text: str) -> bool:
    """True when ``text`` has only printable characters: no control, format or line-break ones.

    Printable as Python's :meth:`str.isprintable` says: this rules out C0 and C1
    controls (``\\n``, ``\\r``, ``\\x85``...), Unicode line and paragraph
    separators, bidirectional overrides, zero-width characters and lone
    surrogates (file names that are not valid UTF-8).
    """
    return text.isprintable()


def visible(text: str) -> str:
    """``text`` on one line: every non-printable character shown as an escape (``\\n``, ``\\x1b``).

    Printable characters, backslashes included, stay as they are. The
    result has no character any format treats as a line break.
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape_char(ch) for ch in text)


def ascii_visible(text: str) -> str:
    """:func:`visible`, and every non-ASCII character as ``\\uXXXX`` too (for C sources)."""
    return "".join(ch if " " <= ch <= "~" else _escape_char(ch) for ch in text)


def describe(text: str, limit: int = 80) -> str:
    """``text`` quoted for an error message: one line, at most ``limit`` characters."""
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 4] + "...'"


# --- comments ---------------------------------------------------------------------


def hash_comment(text: str) -> str:
    """One ``#`` comment line holding ``text`` (CMake, YAML, sdkconfig, Python, .gitignore).

    The marker is always followed by a space, so CMake never reads ``#[[`` as
    the start of a bracket comment.
    """
    return ("# " + visible(text)).rstrip()


def ini_comment(text: str) -> str:
    """One ``;`` comment line of an INI file (platformio.ini) holding ``text``."""
    return ("; " + visible(text)).rstrip()


def html_comment(text: str) -> str:
    """``text`` safe inside an HTML/Markdown ``<!-- -->`` comment, on one line.

    No ``--`` survives (so neither ``-->`` nor ``--!>`` can close the comment
    early), and no line break.
    """
    return re.sub(r"-(?=-)", "- ", visible(text))


# --- INI: platformio.ini ------------------------------------------------------------

_INI_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
# PlatformIO's configparser drops what follows whitespace + ';' or '#' (inline comments).
_INI_INLINE_COMMENT = re.compile(r"\s[;#]")


def ini_key(key: str) -> str:
    """An option name of platformio.ini: letters, digits, ``_ . -``."""
    if not _INI_KEY.fullmatch(key):
        raise UnsafeText(
            f"platformio.ini option name {describe(key)} is not a plain name",
            "use letters, digits, '_', '.' and '-'",
        )
    return key


def ini_value(text: str, what: str) -> str:
    """``text`` as an option value (or one item of a multi-line value) of platformio.ini.

    Refused (:class:`UnsafeText` naming ``what``): an empty value, control or
    line-break characters (they would start a new option or section),
    ``${`` (PlatformIO expands it, reading other options or the
    environment), a leading ``;``/``#`` or whitespace followed by one (a
    comment that cuts the value), leading or trailing whitespace (stripped by
    the parser). ``%`` is doubled, as PlatformIO's configparser reads
    ``%%`` as ``%``.
    """
    problem = None
    if not text:
        problem = "is empty"
    elif not is_plain(text):
        problem = "contains a line break or control character"
    elif "${" in text:
        problem = "contains '${', which PlatformIO expands"
    elif text[0] in ";#" or _INI_INLINE_COMMENT.search(text):
        problem = "contains ';' or '#' where platformio.ini starts a comment"
    elif text != text.strip():
        problem = "starts or ends with whitespace"
    if problem is not None:
        raise UnsafeText(
            f"{what} {describe(text)} {problem}",
            "platformio.ini cannot hold it unchanged; change the value",
        )
    return text.replace("%", "%%")


def ini_flag(text: str, what: str) -> str:
    """One ``build_flags`` item: :func:`ini_value`, and no leading ``!``.

    SCons (which PlatformIO builds with) runs a flag that starts with ``!``
    as a shell command and uses its output.
    """
    if text.startswith("!"):
        raise UnsafeText(
            f"{what} {describe(text)} starts with '!', which PlatformIO runs as a shell command",
            "give the flags themselves",
        )
    return ini_value(text, what)


# --- other configuration formats ----------------------------------------------------


def kconfig_string(text: str, what: str) -> str:
    """A double-quoted Kconfig string value (sdkconfig.defaults)."""
    if not is_plain(text):
        raise UnsafeText(
            f"{what} {describe(text)} contains a line break or control character",
            "sdkconfig.defaults cannot hold it; change the value",
        )
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def py_string(text: str) -> str:
    """A Python string literal of ``text``, on one line."""
    return repr(str(text))


def yaml_string(text: str) -> str:
    """A double-quoted YAML scalar of ``text``, on one line.

    ``"`` and ``\\`` are escaped, every non-printable character (YAML also
    breaks lines at ``\\x85``, ``\\u2028`` and ``\\u2029``) becomes a
    ``\\x``/``\\u``/``\\U`` escape.
    """
    out = []
    for ch in str(text):
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(_escape_char(ch))
    return '"' + "".join(out) + '"'


_YAML_PLAIN_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")


def yaml_key(text: str) -> str:
    """A YAML mapping key: plain when it is a simple name (``espressif/esp-nn``), else quoted."""
    return text if _YAML_PLAIN_KEY.fullmatch(text) else yaml_string(text)


# --- Markdown -------------------------------------------------------------------------

# Characters that start inline Markdown constructs: emphasis, code, links, HTML,
# tables, strikethrough, entities. Escaped with a backslash (CommonMark allows it
# before any ASCII punctuation).
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&])")


def md_text(text: str) -> str:
    """``text`` as plain Markdown text inside a line: no markup, no line break."""
    return _MD_SPECIAL.sub(r"\\\1", visible(text))


def md_code(text: str, table: bool = False) -> str:
    """``text`` as an inline code span, on one line; ``table`` escapes ``|`` for a table cell."""
    shown = visible(text)
    longest = max((len(run) for run in re.findall(r"`+", shown)), default=0)
    fence = "`" * (longest + 1)
    if shown.startswith("`") or shown.endswith("`"):
        shown = f" {shown} "
    if table:
        shown = shown.replace("|", "\\|")
    return f"{fence}{shown}{fence}"


# --- Renode and Robot Framework --------------------------------------------------------

_RENODE_PATH = re.compile(r"[A-Za-z0-9_./+-]+")


def renode_path(path: PurePath | str) -> str:
    """A Renode path token (``@/abs/path``) for a .resc or .robot file.

    Renode's Monitor reads ``@`` and then the path up to the next space, and
    Robot Framework reads ``${...}``, ``#`` and runs of spaces specially, so
    only letters, digits and ``_ . - + /`` are allowed; anything else is
    refused with :class:`UnsafeText`.
    """
    text = PurePath(path).as_posix()
    if not _RENODE_PATH.fullmatch(text):
        raise UnsafeText(
            f"Renode scripts cannot name the path {describe(text)}",
            "use a folder whose path has only letters, digits and '_', '.', '-', '+', '/'",
        )
    return "@" + text


_ROBOT_VARIABLE = re.compile(r"([$@&%]\{)")


def robot_value(text: str, what: str, argument: bool = False) -> str:
    """``text`` as one cell of a Robot Framework file: read back as exactly ``text``.

    Backslashes are doubled; ``${``-style variables and a leading ``#`` are
    escaped with a backslash; spaces that Robot would read as a cell
    separator or strip are written as ``${SPACE}``. For a keyword
    ``argument``, ``name=`` at the start is escaped too (Robot would read a
    named argument). Line breaks and control characters are refused.
    """
    if not is_plain(text):
        raise UnsafeText(
            f"{what} {describe(text)} contains a line break or control character",
            "a Robot Framework file cannot hold it",
        )
    out = _ROBOT_VARIABLE.sub(r"\\\1", text.replace("\\", "\\\\"))
    if argument:
        out = re.sub(r"^([A-Za-z_]\w*)=", r"\1\\=", out)
    if out.startswith("#"):
        out = "\\" + out
    out = re.sub(r"(?<= ) ", "${SPACE}", out)
    if out.startswith(" "):
        out = "${SPACE}" + out[1:]
    if out.endswith(" "):
        out = out[:-1] + "${SPACE}"
    return out or "${EMPTY}"


# --- XML --------------------------------------------------------------------------------

_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """``text`` with the characters XML 1.0 forbids (most controls, surrogates) shown as escapes.

    ElementTree escapes ``< > & "`` but writes forbidden characters as they
    are, which makes the document unreadable.
    """
    return _XML_ILLEGAL.sub(lambda match: _escape_char(match.group(0)), text)


# --- shell commands printed for the user ----------------------------------------------

_ANSI_C_SPECIAL = {"\\": "\\\\", "'": "\\'"}


def shell_quote(arg: str | PurePath) -> str:
    """One shell word for ``arg``: :func:`shlex.quote`, or ``$'...'`` for control characters.

    Either way the word stays on one line and a POSIX shell (bash, zsh for
    ``$'...'``) reads it back as exactly ``arg``.
    """
    text = str(arg)
    if is_plain(text):
        return shlex.quote(text)
    body = "".join(
        _ANSI_C_SPECIAL.get(ch, ch) if ch.isprintable() else _escape_ansi_c(ch) for ch in text
    )
    return f"$'{body}'"


def _escape_ansi_c(ch: str) -> str:
    if ch in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[ch]
    code = ord(ch)
    if 0xD800 <= code <= 0xDFFF:  # a byte of a non-UTF-8 file name (surrogateescape)
        return f"\\x{code - 0xDC00:02x}" if code >= 0xDC80 else f"\\u{code:04x}"
    return _escape_char(ch)


def shell_join(args: Iterable[str | PurePath]) -> str:
    """A command line for the user to copy: :func:`shell_quote` of each argument."""
    return " ".join(shell_quote(arg) for arg in args)
