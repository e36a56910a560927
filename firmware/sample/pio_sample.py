# PlatformIO pre-build step of the repository's own platformio.ini.
#
# Each environment of the top-level platformio.ini builds the firmware in
# firmware/ for one board against the sample model of this folder. Before
# the build, this script has mnmcu generate that board's project from the
# current firmware/ sources ('mnmcu emit', deterministic) into
# .pio/dev/<env>/ (beside the build folder), then points the build at it: its src/ for the sources,
# its lib/ for libraries, its CMake files and sdkconfig.defaults (ESP-IDF).
# The generated project's own pre-build steps (TFLite Micro's) run next.
#
# mnmcu runs in the Python that runs PlatformIO (with the checkout's
# toolchain/ on its path), or in the Python named by MNMCU_PYTHON.
import configparser
import os
import subprocess
import sys
from pathlib import Path

Import("env")  # noqa: F821 - provided by PlatformIO (SCons)

SAMPLE = Path("firmware") / "sample" / "mnmcu_sample.tflite"
TIMEOUT_S = 600

repo = Path(env.subst("$PROJECT_DIR"))  # noqa: F821
board = env.subst("$PIOENV")  # noqa: F821
runtime = env.GetProjectOption("custom_mnmcu_runtime", "")  # noqa: F821
# Beside PlatformIO's build folder (.pio/build, or PLATFORMIO_BUILD_DIR): .pio/dev/<env>.
out = Path(env.subst("$PROJECT_BUILD_DIR")).parent / "dev" / board  # noqa: F821
python = os.environ.get("MNMCU_PYTHON") or env.subst("$PYTHONEXE")  # noqa: F821
command = [python, "-m", "mnmcu", "emit", str(repo / SAMPLE), "--board", board]
command += ["--out", str(out), "--force"] + (["--runtime", runtime] if runtime else [])
child_env = dict(os.environ)
child_env["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(repo / "toolchain"), os.environ.get("PYTHONPATH", "")) if p
)
print(f"mnmcu: generating the {board} project of {SAMPLE} into {out}")
try:
    result = subprocess.run(
        command, cwd=repo, env=child_env, capture_output=True, text=True, timeout=TIMEOUT_S
    )
except (OSError, subprocess.TimeoutExpired) as exc:
    sys.stderr.write(f"Error: 'mnmcu emit' did not finish ({exc}).\n")
    env.Exit(1)  # noqa: F821
if result.returncode != 0:
    sys.stderr.write(result.stdout + result.stderr)
    sys.stderr.write(
        f"Error: mnmcu could not generate the {board} project with {python}. Run PlatformIO "
        "from the Python environment mnmcu is installed in (after 'make setup': "
        ".venv/bin/pio run -e " + board + "), or set MNMCU_PYTHON to that Python.\n"
    )
    env.Exit(1)  # noqa: F821

env.Replace(PROJECT_DIR=str(out), PROJECT_SRC_DIR=str(out / "src"))  # noqa: F821
env.Prepend(LIBSOURCE_DIRS=[str(out / "lib")])  # noqa: F821

ini = configparser.ConfigParser(interpolation=None)
ini.read(out / "platformio.ini", encoding="utf-8")
scripts = ini.get(f"env:{board}", "extra_scripts", fallback="").replace(",", "\n").split()
for script in scripts:
    if script.startswith("pre:"):
        env.SConscript(str(out / script[len("pre:") :]), exports="env")  # noqa: F821
