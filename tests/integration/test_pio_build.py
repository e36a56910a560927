"""The model of PlatformIO's flag handling the framework-source tests build with.

Fast checks, no framework sources: where SCons's ``ParseFlags`` (which
PlatformIO's ``ProcessFlags`` calls) puts each kind of ``build_flags`` entry,
how ``build_unflags``, ``build_src_flags`` and ``pre:`` extra scripts apply,
and the order of a compile command.
"""

from __future__ import annotations

from pathlib import Path

from .pio_build import (
    OBJECT,
    BuildEnv,
    parse_flags,
    platformio_env,
    project_env,
    project_library,
)


def test_build_flags_land_where_platformio_puts_them() -> None:
    parsed = parse_flags(
        '-DA -DB=2 -DS=\\"x\\" -Iinc -mfpu=fpv4-sp-d16 -mfloat-abi=hard -std=gnu++17 '
        "-std=gnu11 -Wl,--gc-sections -Os"
    )
    assert parsed["CPPDEFINES"] == ["A", "B=2", 'S="x"']
    assert parsed["CPPPATH"] == ["inc"]
    # -m flags reach C and C++ compiles only: not the assembler, not the linker.
    assert parsed["CCFLAGS"] == ["-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-Os"]
    assert "ASFLAGS" not in parsed
    assert parsed["LINKFLAGS"] == ["-Wl,--gc-sections"]
    assert (parsed["CXXFLAGS"], parsed["CFLAGS"]) == (["-std=gnu++17"], ["-std=gnu11"])


def test_unflags_leave_every_scope() -> None:
    env = BuildEnv()
    env.append(CXXFLAGS=["-std=gnu++17", "-std=gnu++14"], CPPDEFINES=["X=1", "Y"])
    env.process_unflags("-std=gnu++14 -DX")
    assert env["CXXFLAGS"] == ["-std=gnu++17"] and env["CPPDEFINES"] == ["Y"]


def test_pre_scripts_and_flags_apply_in_platformio_order(tmp_path: Path) -> None:
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "fpu.py").write_text(
        'Import("env")\nenv.Append(ASFLAGS=["-mfloat-abi=hard"], LINKFLAGS=["-mfloat-abi=hard"])\n'
    )
    (tmp_path / "platformio.ini").write_text(
        "[env:b]\nbuild_flags = -DM -mfloat-abi=hard -std=gnu++17\n"
        "build_unflags = -std=gnu++14\nextra_scripts = pre:tools/fpu.py\n"
    )

    def framework(env: BuildEnv) -> None:
        env.append(CCFLAGS=["-mthumb"], CXXFLAGS=["-std=gnu++14"], CPPDEFINES=["F"])

    env, pio = platformio_env(tmp_path, "-DBOARD", framework)
    assert pio.name == "b"
    assert env["CPPDEFINES"][1:] == ["BOARD", "M", "F"]
    assert env["CCFLAGS"] == ["-mfloat-abi=hard", "-mthumb"]
    assert env["CXXFLAGS"] == ["-std=gnu++17"]
    assert env["ASFLAGS"] == env["LINKFLAGS"] == ["-mfloat-abi=hard"]
    command = env.command(tmp_path / "a.cpp")
    assert command[:4] == ["arm-none-eabi-g++", "-o", OBJECT, "-c"]
    assert command[4:7] == ["-std=gnu++17", "-mfloat-abi=hard", "-mthumb"]


def test_build_src_flags_reach_the_project_sources_only(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "lib" / "l").mkdir(parents=True)
    (tmp_path / "lib" / "l" / "library.json").write_text(
        '{"name": "l", "build": {"flags": ["-std=gnu++17"]}}'
    )
    (tmp_path / "lib" / "l" / "a.cpp").write_text("")
    (tmp_path / "platformio.ini").write_text("[env:b]\nbuild_src_flags = -std=gnu++17 -DSRC\n")

    def framework(env: BuildEnv) -> None:
        env.append(CXXFLAGS=["-std=gnu++14"])

    env, pio = platformio_env(tmp_path, "", framework)
    library = project_library(tmp_path / "lib" / "l", env)
    src = project_env(env, pio, [library])
    # The framework's own sources keep its standard; the library's and src/'s flags come last.
    assert env["CXXFLAGS"] == ["-std=gnu++14"] and "SRC" not in env["CPPDEFINES"]
    assert library.env["CXXFLAGS"][-1] == "-std=gnu++17"
    assert src["CXXFLAGS"] == ["-std=gnu++14", "-std=gnu++17"] and "SRC" in src["CPPDEFINES"]
    assert src["CPPPATH"][0] == str(tmp_path / "src")
