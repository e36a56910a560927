"""The escaping helpers of every format mnmcu writes, fed hostile text.

Each test writes hostile text through one helper, reads the result back with
that format's own parser where one is installed (C compiler with trigraphs,
configparser and PlatformIO's ProjectConfig, PyYAML, Python's ast, bash,
ElementTree) and checks that nothing but the intended line, value or word
came out of it.
"""

from __future__ import annotations

import ast
import configparser
import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from xml.etree import ElementTree

import pytest

from mnmcu import escape
from mnmcu.emit import cgen

HOSTILE = [
    "m\n[env]\nbuild_src_flags = !touch x\n;.tflite",
    "a\r\n[platformio]\r\nx = 1\rY",
    "??= ??/ ??' ??( ??) ??! ??< ??> ??- ???/",
    "*/ int injected; /* //",
    "${sysenv.HOME} ${this.__env__} $(id) `id` %(x)s % %%",
    "quote\" and 'single' and \\back\\slash\\",
    "!touch x",
    "tab\there nul\x00 esc\x1b[2J del\x7f nel\x85 ls\u2028 ps\u2029 rlo\u202e zw\u200b bom\ufeff",
    "ünïcødé ✓ 字 \U0001f600",
    "# [[bracket]] #[[cmake]] --> <!-- `code` ``` | pipe * _ [x](y) <b>&amp;",
    "ends with a backslash\\",
    "   leading and trailing spaces   ",
    "",
]
# A file name that is not valid UTF-8, as Python decodes it (surrogateescape).
NON_UTF8 = b"model-\xff\xfe.tflite".decode("utf-8", "surrogateescape")
EVERYTHING = [*HOSTILE, NON_UTF8]

LINE_BREAKS = re.compile("[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")


def one_line(text: str) -> bool:
    return LINE_BREAKS.search(text) is None


# --------------------------------------------------------------------------
# visible text, comments
# --------------------------------------------------------------------------


@pytest.mark.parametrize("text", EVERYTHING)
def test_visible_is_one_printable_line(text: str) -> None:
    shown = escape.visible(text)
    assert one_line(shown) and shown.isprintable()
    assert escape.ascii_visible(text).isascii()
    if text.isprintable():
        assert shown == text


def test_visible_names_what_it_escaped() -> None:
    assert escape.visible("a\nb\x1b\u2028") == "a\\nb\\x1b\\u2028"


@pytest.mark.parametrize("helper", [escape.hash_comment, escape.ini_comment])
def test_line_comments_stay_on_their_line(helper) -> None:
    for text in EVERYTHING:
        line = helper(text)
        assert one_line(line) and line[0] in "#;"
        assert line == line[0] or line.startswith(line[0] + " ")


def test_html_comment_cannot_close_early() -> None:
    for text in [*EVERYTHING, "-->", "--!>", "---->", "a-", "-"]:
        shown = escape.html_comment(text)
        assert "--" not in shown and one_line(shown)
    page = "<!--\n" + "\n".join(escape.html_comment(t) for t in EVERYTHING) + "\n-->\n# Title\n"
    assert page.count("-->") == 1 and page.index("-->") == page.index("\n# Title") - 3


# --------------------------------------------------------------------------
# C: strings and comments compile with trigraphs on, and read back exactly
# --------------------------------------------------------------------------


def test_c_strings_and_comments_compile_with_trigraphs_and_read_back(tmp_path: Path) -> None:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed: apt-get install gcc")
    lines = ["#include <stdio.h>", ""]
    for i, text in enumerate(EVERYTHING):
        lines += [
            cgen.banner(f"f{i}.c", text, "ab" * 32, text).rstrip("\n"),
            f"/* {cgen.c_comment(text)} */",
            f"static const char s{i}[] = {cgen.c_string(text)};",
        ]
    lines += ["int main(void)", "{"]
    for i in range(len(EVERYTHING)):
        lines += [
            f"    for (size_t k = 0; k + 1 < sizeof s{i}; k++)",
            f'        printf("%02x", (unsigned char)s{i}[k]);',
            '    printf("\\n");',
        ]
    lines += ["    return 0;", "}", ""]
    source = tmp_path / "hostile.c"
    source.write_text("\n".join(lines), encoding="ascii")
    exe = tmp_path / "hostile"
    flags = ["-std=c99", "-trigraphs", "-Wall", "-Wextra", "-Werror", "-Wcomment", "-Wtrigraphs"]
    subprocess.run(["gcc", *flags, str(source), "-o", str(exe)], check=True, capture_output=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split("\n")
    for i, text in enumerate(EVERYTHING):
        assert bytes.fromhex(out[i]) == text.encode("utf-8", "surrogateescape"), repr(text)


def test_c_string_escapes_every_question_mark() -> None:
    assert cgen.c_string("??=") == '"\\?\\?="'
    assert "??" not in cgen.c_comment("a ??= b ???/")


# --------------------------------------------------------------------------
# INI: platformio.ini as configparser and PlatformIO read it
# --------------------------------------------------------------------------


def _ini_holds(text: str) -> bool:
    return (
        bool(text)
        and text.isprintable()
        and "${" not in text
        and text == text.strip()
        and re.search(r"(^|\s)[;#]", text) is None
    )


SAFE_VALUES = [
    '-DNAME="a b"',
    "100%",
    "50%% done",
    "a;b#c",
    "[env] inside",
    "$PATH and $(x)",
    "back\\slash",
    *(t for t in HOSTILE if _ini_holds(t) and not t.startswith("!")),
]


def test_ini_refuses_what_it_cannot_hold() -> None:
    refused = [t for t in EVERYTHING if not _ini_holds(t)]
    assert len(refused) >= 7
    for text in [*refused, "a ;comment", "a #comment", ";x", "#x", "x ", "a ${b}"]:
        with pytest.raises(escape.UnsafeText) as caught:
            escape.ini_value(text, "test value")
        assert "\n" not in str(caught.value) and "test value" in str(caught.value)
    with pytest.raises(escape.UnsafeText, match="shell command"):
        escape.ini_flag("!touch x", "flag")
    with pytest.raises(escape.UnsafeText):
        escape.ini_key("build_flags\n[env]")


def test_ini_values_and_comments_read_back_exactly(tmp_path: Path) -> None:
    lines = [escape.ini_comment(t) for t in EVERYTHING]
    lines += ["", "[env:qemu-m4]", "platform = native"]
    for i, value in enumerate(SAFE_VALUES):
        lines.append(f"custom_v{i} = {escape.ini_value(value, 'v')}")
    lines.append("build_flags =")
    lines += [f"    {escape.ini_flag(v, 'flag')}" for v in SAFE_VALUES]
    lines.append("")
    ini = tmp_path / "platformio.ini"
    ini.write_text("\n".join(lines), encoding="utf-8", errors="surrogateescape")

    parser = configparser.ConfigParser(inline_comment_prefixes=("#", ";"))
    parser.read(ini, encoding="utf-8")
    assert parser.sections() == ["env:qemu-m4"]
    section = parser["env:qemu-m4"]
    expected = {"platform", "build_flags", *(f"custom_v{i}" for i in range(len(SAFE_VALUES)))}
    assert set(section) == expected
    for i, value in enumerate(SAFE_VALUES):
        assert section[f"custom_v{i}"] == value
    assert section["build_flags"].strip().split("\n") == SAFE_VALUES

    from platformio.project.config import ProjectConfig

    config = ProjectConfig(str(ini), parse_extra=False)
    assert config.sections() == ["env:qemu-m4"]
    for i, value in enumerate(SAFE_VALUES):
        assert config.get("env:qemu-m4", f"custom_v{i}") == value
    assert config.get("env:qemu-m4", "build_flags") == SAFE_VALUES


# --------------------------------------------------------------------------
# '#'-comment formats, YAML, Python, Kconfig
# --------------------------------------------------------------------------


def _hash_file(sentinel: str) -> str:
    return "\n".join([*(escape.hash_comment(t) for t in EVERYTHING), sentinel, ""])


def test_hash_comments_in_yaml_python_cmake() -> None:
    yaml = pytest.importorskip("yaml")
    assert yaml.safe_load(_hash_file("only: 1")) == {"only": 1}
    tree = ast.parse(_hash_file("ONLY = 1").encode("utf-8", "surrogateescape"))
    assert [type(node).__name__ for node in tree.body] == ["Assign"]
    cmake = _hash_file("project(only)").splitlines()
    assert all(line.startswith("# ") or line == "#" for line in cmake[:-1])
    assert not any(line.startswith("#[") for line in cmake)


@pytest.mark.parametrize("text", [t for t in EVERYTHING if "\udcff" not in t])
def test_yaml_and_python_strings_read_back(text: str) -> None:
    yaml = pytest.importorskip("yaml")
    literal = escape.yaml_string(text)
    assert one_line(literal)
    assert yaml.safe_load(f"key: {literal}\n") == {"key": text}
    assert ast.literal_eval(escape.py_string(text)) == text
    assert one_line(escape.py_string(text))


def test_kconfig_string() -> None:
    assert escape.kconfig_string('a"b\\c', "x") == '"a\\"b\\\\c"'
    with pytest.raises(escape.UnsafeText):
        escape.kconfig_string("a\nCONFIG_X=y", "x")


# --------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------


@pytest.mark.parametrize("text", EVERYTHING)
def test_markdown_text_and_code_stay_inline(text: str) -> None:
    plain = escape.md_text(text)
    assert one_line(plain)
    assert re.search(r"(?<!\\)[`*_<>\[\]|]", plain) is None, plain
    code = escape.md_code(text, table=True)
    assert one_line(code)
    fence = re.match(r"`+", code)
    assert fence is not None
    inner = code[len(fence.group(0)) : -len(fence.group(0))]
    assert fence.group(0) not in inner
    assert "|" not in inner.replace("\\|", "")


# --------------------------------------------------------------------------
# Renode and Robot Framework
# --------------------------------------------------------------------------


def test_renode_paths() -> None:
    assert escape.renode_path(Path("/tmp/build-1/x_y.elf")) == "@/tmp/build-1/x_y.elf"
    for bad in ["/tmp/a b.elf", "/tmp/${x}.elf", "/tmp/a\nb", "/tmp/#x", "/tmp/a;b", "/tmp/é"]:
        with pytest.raises(escape.UnsafeText, match="Renode scripts cannot name"):
            escape.renode_path(bad)


def _robot_unescape(cell: str) -> str:
    """Robot Framework's reading of one cell (the escapes robot_value writes)."""
    cell = cell.replace("${SPACE}", " ").replace("${EMPTY}", "")
    return re.sub(r"\\(.)", r"\1", cell)


@pytest.mark.parametrize("text", [t for t in EVERYTHING if t.isprintable()])
def test_robot_cells_read_back(text: str) -> None:
    cell = escape.robot_value(text, "value", argument=True)
    assert one_line(cell) and "  " not in cell and "\t" not in cell
    assert not cell.startswith(("#", " ")) and not cell.endswith(" ")
    assert re.search(r"(?<!\\)[$@&%]\{(?!SPACE\}|EMPTY\})", cell) is None
    assert re.match(r"[A-Za-z_]\w*=", cell) is None
    assert _robot_unescape(cell) == text


def test_robot_refuses_line_breaks() -> None:
    with pytest.raises(escape.UnsafeText):
        escape.robot_value("a\n*** Test Cases ***", "value")


# --------------------------------------------------------------------------
# XML and shell
# --------------------------------------------------------------------------


def test_xml_text_keeps_the_document_valid() -> None:
    root = ElementTree.Element("r", value=escape.xml_text("\x01\x1b" + EVERYTHING[7]))
    root.text = escape.xml_text(NON_UTF8 + EVERYTHING[0])
    data = ElementTree.tostring(root, encoding="utf-8")
    parsed = ElementTree.fromstring(data)
    assert parsed.text is not None and "[env]" in parsed.text


@pytest.mark.parametrize("text", EVERYTHING)
def test_shell_words_read_back_in_bash(text: str) -> None:
    word = escape.shell_quote(text)
    assert one_line(word) and word.isprintable()
    if text.isprintable():
        assert shlex.split(word) == [text]
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    if "\x00" in text:
        return  # no shell can hold NUL in a word
    out = subprocess.run(
        ["bash", "-c", f"printf %s {word}"], capture_output=True, check=True
    ).stdout
    assert out == text.encode("utf-8", "surrogateescape")


def test_shell_join_is_one_line() -> None:
    line = escape.shell_join(["pio", "run", "-d", "/tmp/a b\n[env]"])
    assert line == "pio run -d $'/tmp/a b\\n[env]'"
    assert json.loads(json.dumps(line)) == line


def test_yaml_keys_are_plain_names_or_quoted() -> None:
    yaml = pytest.importorskip("yaml")
    assert escape.yaml_key("espressif/esp-nn") == "espressif/esp-nn"
    for key in ["a: b", "x\n[y]: 1", "#c", "- item", "{x}", "ünï"]:
        text = f"{escape.yaml_key(key)}: 1\n"
        assert one_line(text.rstrip("\n")) and yaml.safe_load(text) == {key: 1}
