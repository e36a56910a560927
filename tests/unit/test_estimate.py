"""The estimator's pieces that need no build: struct sizes, code closure, call graph parsing."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mnmcu import codesize
from mnmcu.estimate import (
    PARAMS_BYTES,
    SCRATCH_DESCRIPTOR_BYTES,
    UNKNOWN_KERNEL_BYTES,
    code_sizes,
    kernel_code,
)
from mnmcu.paths import data_dir

from ..conftest import QEMU_TOOLS_INSTALL, require_tool


def test_params_bytes_are_the_structs_of_the_kernel_header(tmp_path: Path) -> None:
    """sizeof() of each parameter struct on Cortex-M4, as arm-none-eabi-gcc lays it out."""
    require_tool("arm-none-eabi-gcc", QEMU_TOOLS_INSTALL, "MNMCU_REQUIRE_QEMU")
    types = {**PARAMS_BYTES, "mnmcu_buffer_t": SCRATCH_DESCRIPTOR_BYTES}
    source = tmp_path / "sizes.c"
    source.write_text(
        '#include "mnmcu_kernels.h"\n' + "".join(f"char size_of_{t}[sizeof({t})];\n" for t in types)
    )
    obj = tmp_path / "sizes.o"
    include = data_dir("firmware") / "aot" / "include"
    subprocess.run(
        ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-c", f"-I{include}", str(source), "-o", str(obj)],
        check=True,
        timeout=60,
    )
    listing = subprocess.run(
        ["arm-none-eabi-nm", "-S", str(obj)], check=True, capture_output=True, text=True
    ).stdout
    measured = {
        line.split()[3].removeprefix("size_of_"): int(line.split()[1], 16)
        for line in listing.splitlines()
        if len(line.split()) == 4
    }
    assert measured == types


def test_kernel_code_counts_each_function_once() -> None:
    table = code_sizes()["portable"]["functions"]
    conv, dw = "mnmcu_conv2d_s8_run", "mnmcu_depthwise_conv2d_s8_run"
    both, missing = kernel_code({conv, dw}, "portable")
    alone = kernel_code({conv}, "portable")[0] + kernel_code({dw}, "portable")[0]
    shared = set(table[conv][1]) & set(table[dw][1])
    assert shared and missing == []
    # helpers both call (argument checks, the requantisation) counted once
    assert both == alone - kernel_code(shared, "portable")[0]
    total, missing = kernel_code({conv, "mnmcu_not_a_kernel_run"}, "portable")
    assert missing == ["mnmcu_not_a_kernel_run"]
    assert total == kernel_code({conv}, "portable")[0] + UNKNOWN_KERNEL_BYTES


NM = """\
00001000 00000040 T kernel_run
00001040 00000020 t helper
00001060 00000030 t by_pointer
00001090 00000010 T main
"""
OBJDUMP = """\
00001000 <kernel_run>:
    1000:\tbl\t1040 <helper>
    1004:\tb.n\t1010 <kernel_run+0x10>
    103c:\t.word\t0x00001061
00001040 <helper>:
    1040:\tbx\tlr
    1044:\t.word\t0x00001060
00001060 <by_pointer>:
    1060:\tbx\tlr
00001090 <main>:
    1090:\tbl\t1000 <kernel_run>
"""


def test_call_graph_follows_branches_and_function_pointers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def fake(command: list[str], timeout: float) -> Any:
        text = NM if command[0].endswith("nm") else OBJDUMP
        return SimpleNamespace(stdout=text.encode())

    monkeypatch.setattr(codesize, "run_command", fake)
    graph = codesize.call_graph(Path("firmware.elf"))
    names = {a: f.name for a, f in graph.items()}
    callees = {f.name: sorted(names[c] for c in f.callees) for f in graph.values()}
    # a branch inside the function is no call; an even .word is data, not a Thumb pointer
    assert callees == {
        "kernel_run": ["by_pointer", "helper"],
        "helper": [],
        "by_pointer": [],
        "main": ["kernel_run"],
    }
    assert graph[0x1000].size == 0x40
