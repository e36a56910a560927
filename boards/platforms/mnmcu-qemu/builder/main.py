"""SCons build script of the mnmcu-qemu PlatformIO platform.

Builds bare-metal firmware for QEMU's MPS2/MPS3 machines with the
``arm-none-eabi-gcc`` found on ``PATH`` (Debian's ``gcc-arm-none-eabi``), so
no toolchain package is downloaded. Produces ``firmware.elf``,
``firmware.bin`` and ``firmware.map`` in the build folder and prints the
section sizes.

Flags: the board's ``build.cpu_flags`` (overridable in platformio.ini with
``board_build.cpu_flags``) for compiling and linking; ``-Os``, function and
data sections with ``--gc-sections``; newlib-nano; the project's own
sources (``src/``) and this platform's startup code with
``-Wall -Wextra -Werror``. Libraries from ``lib_deps`` get no ``-Werror``.
"""

import os
import shutil
import sys
from os.path import isdir, join

from SCons.Script import AlwaysBuild, Builder, Default, DefaultEnvironment

TOOLCHAIN_PREFIX = "arm-none-eabi-"
INSTALL_HINT = "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi"
WARNING_FLAGS = ["-Wall", "-Wextra", "-Werror"]

env = DefaultEnvironment()
platform = env.PioPlatform()
board = env.BoardConfig()
PLATFORM_DIR = platform.get_dir()


def find_toolchain_bin():
    """The folder holding arm-none-eabi-gcc: PATH first, then /usr/bin."""
    path = env["ENV"].get("PATH", os.environ.get("PATH", ""))
    found = shutil.which(TOOLCHAIN_PREFIX + "gcc", path=path)
    if found is None and os.path.isfile("/usr/bin/" + TOOLCHAIN_PREFIX + "gcc"):
        found = "/usr/bin/" + TOOLCHAIN_PREFIX + "gcc"
    if found is None:
        sys.stderr.write(
            f"Error: {TOOLCHAIN_PREFIX}gcc was not found on PATH; the mnmcu-qemu platform "
            f"builds with the system's Arm GCC: {INSTALL_HINT}\n"
        )
        env.Exit(1)
    return os.path.dirname(found)


def tool(name):
    return join(TOOLCHAIN_BIN, TOOLCHAIN_PREFIX + name)


TOOLCHAIN_BIN = find_toolchain_bin()
CPU_FLAGS = board.get("build.cpu_flags", "").split()
if not CPU_FLAGS:
    sys.stderr.write(f"Error: board {env.subst('$BOARD')} has no build.cpu_flags\n")
    env.Exit(1)

env.Replace(
    AR=tool("gcc-ar"),
    AS=tool("gcc"),
    CC=tool("gcc"),
    CXX=tool("g++"),
    GDB=tool("gdb"),
    OBJCOPY=tool("objcopy"),
    RANLIB=tool("gcc-ranlib"),
    SIZETOOL=tool("size"),
    ARFLAGS=["rc"],
    PROGNAME="firmware",
    PROGSUFFIX=".elf",
    # "pio run" prints flash and RAM use from these (as PlatformIO's Arm platforms do).
    SIZECHECKCMD="$SIZETOOL -A -d $SOURCES",
    SIZEPRINTCMD="$SIZETOOL -A -d $SOURCES",
    SIZEPROGREGEXP=(
        r"^(?:\.isr_vector|\.text|\.rodata|\.ARM\.extab|\.ARM\.exidx|\.preinit_array"
        r"|\.init_array|\.fini_array|\.data)\s+(\d+).*"
    ),
    SIZEDATAREGEXP=r"^(?:\.data|\.bss|\.heap|\.stack)\s+(\d+).*",
    LDSCRIPT_PATH=join(PLATFORM_DIR, "ldscripts", board.get("build.ldscript")),
)

env.Append(
    ASFLAGS=CPU_FLAGS,
    ASPPFLAGS=["-x", "assembler-with-cpp"],
    CCFLAGS=CPU_FLAGS + ["-Os", "-g", "-ffunction-sections", "-fdata-sections", "-fno-common"],
    CXXFLAGS=["-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics"],
    CPPDEFINES=[("F_CPU", "$BOARD_F_CPU"), "MNMCU_QEMU"],
    LINKFLAGS=CPU_FLAGS
    + [
        "-Os",
        "--specs=nano.specs",
        "-nostartfiles",
        "-Wl,--gc-sections",
        "-Wl,--no-warn-rwx-segments",
        "-Wl,-Map," + join("$BUILD_DIR", "firmware.map"),
        "-Wl,--cref",
    ],
    LIBPATH=[join(PLATFORM_DIR, "ldscripts")],
    LIBS=["c", "gcc"],
    BUILDERS=dict(
        ElfToBin=Builder(
            action=env.VerboseAction(
                " ".join(["$OBJCOPY", "-O", "binary", "$SOURCES", "$TARGET"]),
                "Building $TARGET",
            ),
            suffix=".bin",
        )
    ),
)

# Warnings as errors for the project's own sources (src/), not for libraries.
env.Append(SRC_BUILD_FLAGS=WARNING_FLAGS)

# The platform's startup code and system calls, built with the same flags.
startup_env = env.Clone()
startup_env.ProcessFlags(board.get("build.extra_flags", ""))
startup_env.Append(CCFLAGS=WARNING_FLAGS)
startup_env.BuildSources(join("$BUILD_DIR", "mnmcu_qemu"), join(PLATFORM_DIR, "startup"))

if not isdir(env.subst("$PROJECT_SRC_DIR")):
    sys.stderr.write(f"Error: no source folder {env.subst('$PROJECT_SRC_DIR')}\n")
    env.Exit(1)

target_elf = env.BuildProgram()
target_bin = env.ElfToBin(join("$BUILD_DIR", "${PROGNAME}"), target_elf)
env.Depends(target_bin, "checkprogsize")

AlwaysBuild(
    env.Alias(
        "size",
        target_elf,
        env.VerboseAction("$SIZEPRINTCMD", "Calculating size $SOURCE"),
    )
)

Default([env.Alias("buildprog", target_bin), "size"])
