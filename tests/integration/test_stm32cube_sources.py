"""Generated STM32Cube projects compiled against ST's own HAL and CMSIS sources (issue 16).

Runs only where ``MNMCU_STM32CUBE_SOURCES`` names a folder with ST's
standalone repositories at the versions platform-ststm32 19.6.0's packages
carry; it skips otherwise (CI cannot fetch them)::

    stm32f4xx_hal_driver/        STMicroelectronics/stm32f4xx_hal_driver v1.8.3
    cmsis_device_f4/             STMicroelectronics/cmsis_device_f4 v2.6.10
    stm32f7xx_hal_driver/        v1.3.1     cmsis_device_f7/   v1.2.9
    stm32h7xx_hal_driver/        v1.11.3    cmsis_device_h7/   v1.10.4
    CMSIS_5/CMSIS/Core/Include/  ARM-software/CMSIS_5 5.9.0

The TFLM runtime's cases also need ``MNMCU_TFLM_SOURCES`` (a tflite-micro
checkout with its downloads, see :mod:`framework_sources`); without it they
skip. Besides those, Debian's ``arm-none-eabi-gcc`` (12.2, where PlatformIO
would use its own GCC 7.2.1 or, for TFLM, 12.3.1), newlib and
``libstdc++-arm-none-eabi-newlib``, and for the runs ``qemu-system-arm``.

For disco_f407vg, nucleo_f446re, disco_f746ng and nucleo_h743zi, with the
aot and the tflm runtime, the project generated from the sample model is
compiled as PlatformIO 6 with platform-ststm32 19.6.0 would compile it: the
flags of ``builder/frameworks/stm32cube.py`` at tag v19.6.0 and of the board
manifests ``boards/<board>.json``, then the project's ``platformio.ini``
(``build_flags``, ``build_unflags``, ``pre:`` extra scripts), the HAL
configuration the builder's ``generate_hal_config_file`` makes (the driver's
``*_hal_conf_template.h`` as ``*_hal_conf.h``), every HAL driver source (the
builder's ``src_filter``), ``system_stm32<f>xx.c``, ST's gcc startup file
and, for tflm, the TFLM library the project's ``lib/tflite-micro/library.json``
describes. Every generated source is compiled a second time with
``-Wall -Wextra -Werror`` and the framework and TFLM folders as ``-isystem``,
which must pass; the PlatformIO build's own warnings are reported, split into
ours and the framework's.

The F4 boards are then linked with a script written from the board manifest
and run in QEMU's netduinoplus2 (an STM32F405: the F407's memory and
peripheral map, USART2 on the second ``-serial``): the boot line is printed
and must say ok=1 (and, once it has a ``clock=`` field, report the fallback to
the HSI, as QEMU does not model the RCC), and 10 inputs go through the serial
protocol, bit-exact against TFLite's reference kernels. The summary of every
case is printed at the end of the session.

Run, e.g.::

    MNMCU_STM32CUBE_SOURCES=/work/fw/stm32cube MNMCU_TFLM_SOURCES=/work/fw/tflite-micro \\
        python -m pytest tests/integration/test_stm32cube_sources.py -q
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mnmcu.boards import Board, get_board
from mnmcu.emit.project import ProjectInfo, emit_project
from mnmcu.emit.tflm import load_versions

from ..conftest import require_qemu_tools
from .framework_sources import (
    STM32CUBE,
    TFLM,
    install_tflm_tree,
    sample_model,
    tflm_project_tree,
    tree_fingerprint,
)
from .pio_build import (
    ARM,
    SOURCE_EXT,
    STRICT,
    BuildEnv,
    Compiled,
    Compiler,
    Library,
    case_id,
    elf_sizes,
    platformio_env,
    project_env,
    project_library,
    project_sources,
    require_arm_gcc,
    require_compiled,
    run_tool,
    shorten,
    split_warnings,
    warning_summary,
)


@dataclass(frozen=True)
class PioBoard:
    """What platform-ststm32 v19.6.0 ``boards/<id>.json`` says about a board's build."""

    cpu: str  # build.cpu
    extra_flags: str  # build.extra_flags
    f_cpu: str  # build.f_cpu
    mcu: str  # build.mcu
    product_line: str  # build.product_line
    flash_bytes: int  # upload.maximum_size
    ram_bytes: int  # upload.maximum_ram_size

    @property
    def family(self) -> str:
        """``f4``, ``f7`` or ``h7`` (the builder's ``MCU[5:7]``)."""
        return self.mcu[5:7]


PIO_BOARDS = {
    "disco_f407vg": PioBoard(
        "cortex-m4", "-DSTM32F4 -DSTM32F407xx -DSTM32F40_41xxx", "168000000L",
        "stm32f407vgt6", "STM32F407xx", 1048576, 131072,
    ),
    "nucleo_f446re": PioBoard(
        "cortex-m4", "-DSTM32F4 -DSTM32F446xx", "180000000L",
        "stm32f446ret6", "STM32F446xx", 524288, 131072,
    ),
    "disco_f746ng": PioBoard(
        "cortex-m7", "-DSTM32F7 -DSTM32F746xx", "216000000L",
        "stm32f746ngh6", "STM32F746xx", 1048576, 327680,
    ),
    "nucleo_h743zi": PioBoard(
        "cortex-m7", "-DSTM32H7 -DSTM32H7xx -DSTM32H743xx", "400000000L",
        "stm32h743zit6", "STM32H743xx", 2097152, 524288,
    ),
}  # fmt: skip
RUNTIMES = ("aot", "tflm")
# Boards run in QEMU's netduinoplus2 (STM32F405): the F4 parts with USART2 consoles.
QEMU_BOARDS = ("disco_f407vg", "nucleo_f446re")
HIL_COUNT = 10
CASES = [(b, r) for b in PIO_BOARDS for r in RUNTIMES]
RUN_CASES = [(b, r) for b in QEMU_BOARDS for r in RUNTIMES]


@dataclass(frozen=True)
class Stm32Tree:
    """One family's folders in ``MNMCU_STM32CUBE_SOURCES``, as framework-stm32cube lays them out."""

    root: Path
    family: str

    @property
    def hal(self) -> Path:
        """``Drivers/STM32F4xx_HAL_Driver``."""
        return self.root / f"stm32{self.family}xx_hal_driver"

    @property
    def device(self) -> Path:
        """``Drivers/CMSIS/Device/ST/STM32F4xx``."""
        return self.root / f"cmsis_device_{self.family}"

    @property
    def cmsis(self) -> Path:
        """``Drivers/CMSIS/Include``."""
        return self.root / "CMSIS_5" / "CMSIS" / "Core" / "Include"

    @property
    def folders(self) -> tuple[Path, ...]:
        """Every folder the build reads."""
        return (self.hal, self.device, self.cmsis)


def hal_config(tree: Stm32Tree, cache: Path) -> Path:
    """The folder of ``stm32<f>xx_hal_conf.h``: the driver's template, copied as the builder does.

    ``generate_hal_config_file`` copies it into the driver's ``Inc`` folder;
    here it goes to a folder of its own, placed right after ``Inc`` on the
    include path, so the sources stay untouched.
    """
    template = tree.hal / "Inc" / f"stm32{tree.family}xx_hal_conf_template.h"
    folder = cache / "stm32cube-conf" / tree.family
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / f"stm32{tree.family}xx_hal_conf.h"
    if not conf.is_file() or conf.read_bytes() != template.read_bytes():
        shutil.copyfile(template, conf)
    return folder


def stm32cube_framework(board: PioBoard, tree: Stm32Tree, project: Path, conf: Path) -> BuildEnv:
    """What platform-ststm32 v19.6.0 ``builder/frameworks/stm32cube.py`` appends.

    ``machine_flags``, CCFLAGS, CPPDEFINES (``$BOARD_F_CPU`` is build.f_cpu),
    CPPPATH in its order, CXXFLAGS, LINKFLAGS and LIBS. The CMSIS-DSP include
    folder it also adds is left out: the fetched sources have no CMSIS-DSP and
    nothing here includes it.
    """
    machine = ["-mthumb", f"-mcpu={board.cpu}"]
    env = BuildEnv()
    env.append(
        ASFLAGS=machine,
        ASPPFLAGS=["-x", "assembler-with-cpp"],
        CCFLAGS=[*machine, "-Os", "-ffunction-sections", "-fdata-sections", "-Wall", "-nostdlib"],
        CPPDEFINES=["USE_HAL_DRIVER", f"F_CPU={board.f_cpu}"],
        CPPPATH=[
            str(project / "src"),
            str(project / "include"),
            str(tree.cmsis),
            str(tree.device / "Include"),
            str(tree.hal / "Inc"),
            str(conf),
            str(tree.hal / "Src"),
        ],
        CXXFLAGS=["-fno-rtti", "-fno-exceptions"],
        LINKFLAGS=[*machine, "-Os", "-Wl,--gc-sections,--relax"]
        + ["--specs=nano.specs", "--specs=nosys.specs"],
        LIBS=["c", "gcc", "m", "stdc++", "nosys"],
    )
    return env


LDSCRIPT = """\
/*
 * {board_id}: {flash_k}K flash, {ram_k}K RAM (platform-ststm32 v19.6.0 boards/{board_id}.json,
 * upload.maximum_size and upload.maximum_ram_size).
 *
 * PlatformIO links with the first {mcu_upper}*_FLASH.ld of its tool-ldscripts-ststm32
 * package (get_linker_script in builder/frameworks/stm32cube.py); only where none
 * matches does generate_ldscript fill the package's tpl/linker.tpl with the same three
 * numbers: the flash size, the RAM size and _estack = 0x20000000 + RAM size. That
 * package is not reachable here, so this script follows the layout of ST's own
 * *_FLASH.ld scripts: the symbols ST's startup code reads (_sidata, _sdata, _edata,
 * _sbss, _ebss, _estack), end for newlib's _sbrk, and a check that 0x200 bytes of
 * heap and 0x400 of stack are left.
 */
ENTRY(Reset_Handler)
_estack = 0x{estack:08X};
_Min_Heap_Size = 0x200;
_Min_Stack_Size = 0x400;

MEMORY
{{
  FLASH (rx)  : ORIGIN = 0x08000000, LENGTH = {flash_k}K
  RAM   (xrw) : ORIGIN = 0x20000000, LENGTH = {ram_k}K
}}

SECTIONS
{{
  .isr_vector : {{ . = ALIGN(4); KEEP(*(.isr_vector)) . = ALIGN(4); }} >FLASH
  .text : {{
    . = ALIGN(4);
    *(.text) *(.text*) *(.glue_7) *(.glue_7t) *(.eh_frame)
    KEEP(*(.init)) KEEP(*(.fini))
    . = ALIGN(4);
    _etext = .;
  }} >FLASH
  .rodata : {{ . = ALIGN(4); *(.rodata) *(.rodata*) . = ALIGN(4); }} >FLASH
  .ARM.extab : {{ *(.ARM.extab* .gnu.linkonce.armextab.*) }} >FLASH
  .ARM : {{ __exidx_start = .; *(.ARM.exidx*) __exidx_end = .; }} >FLASH
  .preinit_array : {{
    PROVIDE_HIDDEN(__preinit_array_start = .);
    KEEP(*(.preinit_array*))
    PROVIDE_HIDDEN(__preinit_array_end = .);
  }} >FLASH
  .init_array : {{
    PROVIDE_HIDDEN(__init_array_start = .);
    KEEP(*(SORT(.init_array.*))) KEEP(*(.init_array*))
    PROVIDE_HIDDEN(__init_array_end = .);
  }} >FLASH
  .fini_array : {{
    PROVIDE_HIDDEN(__fini_array_start = .);
    KEEP(*(SORT(.fini_array.*))) KEEP(*(.fini_array*))
    PROVIDE_HIDDEN(__fini_array_end = .);
  }} >FLASH
  _sidata = LOADADDR(.data);
  .data : {{
    . = ALIGN(4); _sdata = .;
    *(.data) *(.data*)
    . = ALIGN(4); _edata = .;
  }} >RAM AT> FLASH
  .bss : {{
    _sbss = .; __bss_start__ = _sbss;
    *(.bss) *(.bss*) *(COMMON)
    . = ALIGN(4);
    _ebss = .; __bss_end__ = _ebss;
  }} >RAM
  ._user_heap_stack : {{
    . = ALIGN(8);
    PROVIDE(end = .); PROVIDE(_end = .);
    . = . + _Min_Heap_Size;
    . = . + _Min_Stack_Size;
    . = ALIGN(8);
  }} >RAM
  .ARM.attributes 0 : {{ *(.ARM.attributes) }}
}}
"""


def write_ldscript(board_id: str, path: Path) -> Path:
    """The linker script of ``board_id``, from its PlatformIO board manifest."""
    board = PIO_BOARDS[board_id]
    path.write_text(
        LDSCRIPT.format(
            board_id=board_id,
            mcu_upper=board.mcu.upper()[:12] + "X",
            flash_k=board.flash_bytes // 1024,
            ram_k=board.ram_bytes // 1024,
            estack=0x20000000 + board.ram_bytes,
        )
    )
    return path


@dataclass
class Stm32Build:
    """One generated project compiled the PlatformIO way, plus the strict compile of its sources."""

    board_id: str
    runtime: str
    info: ProjectInfo
    env: BuildEnv
    strict: list[Compiled]
    ours: list[Compiled]
    wextra: list[Compiled]
    framework: list[Compiled]
    startup: Compiled
    root: Path
    library: Library | None = None
    library_objects: list[Compiled] = field(default_factory=list)

    @property
    def roots(self) -> dict[str, Path | None]:
        """Labels for the source folders in messages."""
        tree = self.library.env["CPPPATH"][0] if self.library is not None else None
        return {STM32CUBE.variable: self.root, "TFLM tree": Path(tree) if tree else None}

    @property
    def src(self) -> Path:
        """The project's ``src`` folder."""
        return self.info.project_dir / "src"

    def has_cxx(self) -> bool:
        """Whether a C++ source is linked (SCons then links with the C++ driver)."""
        sources = [r.source for r in self.ours + self.library_objects]
        return any(s.suffix in (".cpp", ".cc") for s in sources)


@pytest.fixture(scope="module")
def stm32_builds() -> dict[tuple[str, str], Stm32Build]:
    """Builds made so far in this module, by (board, runtime)."""
    return {}


def build(
    board_id: str,
    runtime: str,
    builds: dict[tuple[str, str], Stm32Build],
    tmp_path_factory: pytest.TempPathFactory,
    cache: Path,
) -> Stm32Build:
    """Generate and compile the (board, runtime) project once per module."""
    if (board_id, runtime) in builds:
        return builds[board_id, runtime]
    root = STM32CUBE.locate()
    tflm_root = TFLM.locate() if runtime == "tflm" else None
    require_arm_gcc()
    board = PIO_BOARDS[board_id]
    tree = Stm32Tree(root, board.family)
    out = tmp_path_factory.mktemp(f"{board_id}-{runtime}")
    info = emit_project(sample_model(), get_board(board_id), out / "project", runtime=runtime)
    project = info.project_dir
    trees = [*tree.folders]
    tflm_tree = None
    if tflm_root is not None:
        tflm_tree = tflm_project_tree(tflm_root, load_versions().makefile_options, cache)
        install_tflm_tree(project, tflm_tree)
        trees.append(tflm_tree)
    conf = hal_config(tree, cache)
    framework = stm32cube_framework(board, tree, project, conf)
    env, pio = platformio_env(project, board.extra_flags, lambda e: e.append(**framework.scopes))
    fingerprint = tree_fingerprint(trees)
    cached = Compiler(out / "obj", cache / "objects", fingerprint, {str(project): "<PROJECT>"})

    library, library_objects = None, []
    if tflm_tree is not None:
        library = project_library(project / "lib" / "tflite-micro", env, src_root=tflm_tree)
        library_objects = cached.compile([(s, library.env.command(s)) for s in library.sources])
    src_env = project_env(env, pio, [library] if library else [])

    sources = project_sources(project)
    system = [root, *([tflm_tree] if tflm_tree else [])]
    ours = Compiler(out / "obj-ours")
    strict = Compiler(out / "obj-strict").compile(
        [(s, src_env.command(s, system=system, extra=STRICT)) for s in sources]
    )
    faithful = ours.compile([(s, src_env.command(s)) for s in sources])
    wextra = Compiler(out / "obj-wextra").compile(
        [(s, src_env.command(s, extra=STRICT[:2])) for s in sources]
    )
    hal_sources = _hal_sources(tree)
    device = tree.device / "Source" / "Templates"
    startup = out / f"startup_{board.product_line.lower()}.S"
    shutil.copyfile(device / "gcc" / f"startup_{board.product_line.lower()}.s", startup)
    framework_units = [*hal_sources, device / f"system_stm32{board.family}xx.c"]
    framework_objects = cached.compile([(s, env.command(s)) for s in framework_units])
    (startup_object,) = Compiler(out / "obj-startup").compile([(startup, env.command(startup))])
    result = Stm32Build(
        board_id,
        runtime,
        info,
        env,
        strict,
        faithful,
        wextra,
        framework_objects,
        startup_object,
        root,
        library,
        library_objects,
    )
    builds[board_id, runtime] = result
    return result


def _hal_sources(tree: Stm32Tree) -> list[Path]:
    """The builder's ``src_filter="+<*> -<Src/*_template.c> -<Src/Legacy>"`` over the driver."""
    from platformio.fs import match_src_files

    names = match_src_files(str(tree.hal), "+<*> -<Src/*_template.c> -<Src/Legacy>", SOURCE_EXT)
    return [tree.hal / n for n in names]


@pytest.fixture
def case(
    request: pytest.FixtureRequest,
    stm32_builds: dict[tuple[str, str], Stm32Build],
    tmp_path_factory: pytest.TempPathFactory,
    framework_cache: Path,
) -> Stm32Build:
    """The (board, runtime) build of the test's parameter."""
    board_id, runtime = request.param
    return build(board_id, runtime, stm32_builds, tmp_path_factory, framework_cache)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, indirect=True, ids=case_id)
def test_generated_sources_compile_with_warnings_as_errors(
    case: Stm32Build, build_summary: dict[str, list[str]]
) -> None:
    require_compiled(case.strict, "generated sources (-Wall -Wextra -Werror)")
    generated = project_sources(case.info.project_dir)
    assert [r.source for r in case.strict] == generated
    require_compiled(case.wextra, "generated sources (-Wall -Wextra)")
    ours, headers = split_warnings(case.wextra, case.src)
    build_summary.setdefault(f"{case.board_id} {case.runtime}", []).extend(
        [
            f"{len(generated)} generated sources compile with PlatformIO's flags plus "
            "-Wall -Wextra -Werror (framework and TFLM folders -isystem)",
            f"with -Wall -Wextra and those folders -I as PlatformIO passes them: "
            f"{warning_summary(headers)} in framework/TFLM headers",
            *(f"  {shorten(line, case.roots)}" for line in sorted(set(headers))[:10]),
        ]
    )
    assert ours == [], "\n".join(ours)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, indirect=True, ids=case_id)
def test_platformio_build_compiles(case: Stm32Build, build_summary: dict[str, list[str]]) -> None:
    require_compiled(case.ours, "generated sources (PlatformIO's flags)")
    require_compiled([*case.framework, case.startup], "STM32Cube sources")
    require_compiled(case.library_objects, "TFLM library sources")
    ours, headers = split_warnings(case.ours, case.src)
    lines = [
        f"PlatformIO's flags: {' '.join(case.env['CCFLAGS'])}; "
        f"defines {' '.join(case.env['CPPDEFINES'])}",
        f"generated sources: {warning_summary(ours)} in our files, "
        f"{warning_summary(headers)} in framework/TFLM headers",
        f"HAL {len(case.framework) - 1} sources + system + startup: "
        f"{warning_summary([w for r in [*case.framework, case.startup] for w in r.warnings])}",
    ]
    for line in sorted({*ours, *headers})[:10]:
        lines.append(f"  {shorten(line, case.roots)}")
    if case.library is not None:
        warnings = [w for r in case.library_objects for w in r.warnings]
        lines.append(
            f"TFLM library ({case.library.path.name}): {len(case.library_objects)} sources, "
            f"{warning_summary(warnings)}"
        )
    build_summary.setdefault(f"{case.board_id} {case.runtime}", []).extend(lines)
    assert ours == [], "\n".join(ours)


def link(case: Stm32Build, out: Path) -> Path:
    """The firmware ELF, linked as PlatformIO links: objects, then LIBS in one group."""
    board = PIO_BOARDS[case.board_id]
    *hal, system = case.framework
    members = {out / "libFrameworkCMSISDevice.a": [system, case.startup]}
    if case.library is not None:
        members = {out / f"lib{case.library.name}.a": case.library_objects, **members}
    for archive, objects in members.items():
        run_tool(["arm-none-eabi-gcc-ar", "rc", str(archive), *(str(r.obj) for r in objects)], "ar")
        run_tool(["arm-none-eabi-gcc-ranlib", str(archive)], "ranlib")
    archives = list(members)
    env = case.env.clone()
    env.scopes["LINKFLAGS"][:0] = ["-T", str(write_ldscript(case.board_id, out / "ldscript.ld"))]
    elf = out / "firmware.elf"
    linker = ARM.cxx if case.has_cxx() else ARM.cc
    objects = [r.obj for r in [*case.ours, *hal]]
    run_tool(env.link_command(linker, objects, archives, elf), f"linking {board.mcu}")
    return elf


def qemu_board(board_id: str) -> Board:
    """The board with QEMU's netduinoplus2 and USART2 on its second ``-serial``."""
    board = get_board(board_id)
    simulator = dataclasses.replace(
        board.simulator, qemu_machine="netduinoplus2", qemu_serial_index=1
    )
    return dataclasses.replace(board, simulator=simulator)


@pytest.mark.slow
@pytest.mark.sim
@pytest.mark.parametrize("case", RUN_CASES, indirect=True, ids=case_id)
def test_runs_in_netduinoplus2_bit_exact(
    case: Stm32Build, build_summary: dict[str, list[str]], tmp_path: Path
) -> None:
    from mnmcu.graph import load_graph
    from mnmcu.hil import load_target, run_hil
    from mnmcu.link.session import open_session
    from mnmcu.sim.qemu import qemu_session, run_qemu
    from mnmcu.verify import make_inputs

    require_qemu_tools()
    require_compiled([*case.ours, *case.framework, case.startup, *case.library_objects], "sources")
    summary = build_summary.setdefault(f"{case.board_id} {case.runtime}", [])
    elf = link(case, tmp_path)
    sizes = elf_sizes(elf)
    summary.append(
        f"linked: flash {sizes['flash']:,} B, RAM {sizes['ram']:,} B (.text {sizes['.text']:,}, "
        f".rodata {sizes.get('.rodata', 0):,}, .data {sizes.get('.data', 0):,}, "
        f".bss {sizes.get('.bss', 0):,})"
    )
    board = qemu_board(case.board_id)
    boot = run_qemu(board, elf, timeout=120, log_path=tmp_path / "qemu-boot.log")
    summary.append(f"boot line: {boot.boot_line}")
    assert boot.fields["board"] == case.board_id and boot.fields["runtime"] == case.runtime
    assert boot.ok, boot.boot_line
    if "clock" in boot.fields:
        # QEMU does not model the RCC: the clock setup must give up and stay on the HSI.
        assert "fallback" in boot.fields["clock"], boot.boot_line

    model = sample_model()
    inputs, _ = make_inputs(load_graph(model), HIL_COUNT)
    target = load_target(case.info.project_dir, model)
    with qemu_session(board, elf, log_path=tmp_path / "qemu-hil.log") as url:
        with open_session(url) as session:
            report = run_hil(session, target, inputs, board_id=case.board_id)
    assert report.error is None, report.error
    outputs = {sample.output for sample in report.samples}
    instructions = report.latency()["instructions"]
    summary.append(
        f"HIL over USART2: {len(report.samples) - len(report.mismatches)}/{len(report.samples)} "
        f"bit-exact, {len(outputs)} distinct outputs"
        + (f", median {instructions['median']:,.0f} instructions" if instructions else "")
    )
    assert len(report.samples) == HIL_COUNT and report.mismatches == []
    assert len(outputs) > 1, "every input gave the same output: the check proves nothing"


@pytest.mark.parametrize("board_id", PIO_BOARDS)
def test_manifest_figures_match_the_board_file(board_id: str) -> None:
    """The copied board-manifest figures agree with boards/<id>.toml (no sources needed)."""
    board, manifest = get_board(board_id), PIO_BOARDS[board_id]
    assert board.platformio is not None and board.platformio.board == board_id
    assert int(manifest.f_cpu.rstrip("L")) == board.cpu.clock_hz
    assert (manifest.flash_bytes, manifest.ram_bytes) == (
        board.memory.flash_bytes,
        board.memory.ram_bytes,
    )
    assert f"-mcpu={manifest.cpu}" in board.cpu.gcc_flags
