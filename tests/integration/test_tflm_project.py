"""TFLite Micro projects for the real boards, checked structurally (issue 4, acceptance 3).

TFLM cannot be compiled here (its sources are not reachable), so for each of
esp32s3, esp32, disco_f407vg, disco_f746ng, nucleo_h743zi and nano33ble, and for
a VWW-shape MobileNetV1 and a MobileNetV3-Small (HARD_SWISH, MUL, ADD, MEAN too),
the generated project must:

* pass ``pio project config --lint`` with no error and no warning;
* register in its ``MicroMutableOpResolver<N>`` exactly the ops LiteRT's
  interpreter reports for the model (an independent reading of the .tflite),
  N equal to their count, with the int8 kernels TFLM declares;
* reserve an arena at least the one the tflite-micro runtime measures;
* pin platform, packages, libraries and the TFLM sources exactly.

What can be compiled here is compiled: the model C array with gcc (and run, to
compare it byte for byte with the .tflite), and the runtime source with g++
against stub TFLM headers written by this test (the API it uses, declared as in
tflite-micro's headers at the pinned commit).
"""

from __future__ import annotations

import configparser
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mnmcu.boards import Board, get_board
from mnmcu.emit import tflm
from mnmcu.graph import load_graph
from mnmcu.paths import data_dir
from mnmcu.reference import TflmRun, expected_outputs, tflm_run

from .framework_sources import TFLM, tflm_include_dirs, tree_fingerprint
from .pio_build import OBJECT, Compiler, require_compiled

BOARDS = ("esp32s3", "esp32", "disco_f407vg", "disco_f746ng", "nucleo_h743zi", "nano33ble")
MODELS = ("v1", "v3-small")  # keys of the int8_models fixture (tests/integration/conftest.py)

# What tflite-micro's kernel headers declare (kernels/conv.h, depthwise_conv.h,
# fully_connected.h, add.h, mul.h, softmax.h, pooling.h, pad.h); ops without an
# int8 variant take the resolver's default registration.
INT8_KERNELS = {
    "CONV_2D": "tflite::Register_CONV_2D_INT8()",
    "DEPTHWISE_CONV_2D": "tflite::Register_DEPTHWISE_CONV_2D_INT8()",
    "FULLY_CONNECTED": "tflite::Register_FULLY_CONNECTED_INT8()",
    "ADD": "tflite::Register_ADD_INT8()",
    "MUL": "tflite::Register_MUL_INT8()",
    "SOFTMAX": "tflite::Register_SOFTMAX_INT8()",
    "AVERAGE_POOL_2D": "tflite::Register_AVERAGE_POOL_2D_INT8()",
    "MAX_POOL_2D": "tflite::Register_MAX_POOL_2D_INT8()",
    "PAD": "tflite::Register_PAD_INT8()",
}
Projects = dict[tuple[str, str], Path]
EXACT = r"\d+\.\d+\.\d+"


@pytest.fixture(scope="session")
def measured(int8_models: dict[str, Path]) -> dict[str, TflmRun]:
    """The tflite-micro runtime's arena for each model."""
    return {name: tflm_run(int8_models[name]) for name in MODELS}


@pytest.fixture(scope="session")
def litert_ops(int8_models: dict[str, Path]) -> dict[str, set[str]]:
    """The op names LiteRT's interpreter reports for each model."""
    from ai_edge_litert import interpreter as litert

    ops = {}
    for name in MODELS:
        interp = litert.Interpreter(model_path=str(int8_models[name]))
        ops[name] = {d["op_name"] for d in interp._get_ops_details()}
    return ops


def minimal_ini(project: Path, board: Board, sources: tflm.TflmSources) -> None:
    """The board's environment plus what the TFLM emitter asks for."""
    pio = board.platformio
    assert pio is not None
    lines = [
        f"[env:{board.id}]",
        f"platform = {pio.platform}",
        f"board = {pio.board}",
        f"framework = {pio.framework}",
    ]
    lines += [f"{key} = {value}" for key, value in pio.ini_options]
    for key, values in sources.platformio_options().items():
        lines += [f"{key} =", *(f"    {value}" for value in values)]
    (project / "platformio.ini").write_text("\n".join(lines) + "\n")


def project_emitter() -> Callable[..., object] | None:
    """mnmcu.emit.project.emit_project, or None while it does not exist."""
    try:
        from mnmcu.emit.project import emit_project
    except ImportError:
        return None
    return emit_project


@pytest.fixture(scope="session")
def projects(
    int8_models: dict[str, Path],
    measured: dict[str, TflmRun],
    tmp_path_factory: pytest.TempPathFactory,
) -> Projects:
    """One generated TFLM project per (board, model), through the project emitter if present."""
    emit_project = project_emitter()
    root = tmp_path_factory.mktemp("tflm_projects")
    out = {}
    for model in MODELS:
        for board_id in BOARDS:
            board, project = get_board(board_id), root / f"{board_id}-{model}"
            if emit_project is not None:
                emit_project(int8_models[model], board, project, runtime="tflm")
            else:
                graph = load_graph(int8_models[model])
                sources = tflm.emit_tflm_sources(
                    graph, int8_models[model], board, project / "src", project, measured[model]
                )
                minimal_ini(project, board, sources)
                for header in ("common/mnmcu_runtime.h", "hal/mnmcu_hal.h"):
                    shutil.copy(data_dir("firmware") / header, project / "src")
            out[board_id, model] = project
    return out


CASES = [(b, m) for m in MODELS for b in BOARDS]


def resolver(project: Path) -> tuple[int, dict[str, str]]:
    """N of MicroMutableOpResolver<N>, and op name -> registration argument."""
    text = (project / "src" / "mnmcu_runtime_tflm.cpp").read_text()
    (size,) = re.findall(r"MicroMutableOpResolver<(\d+)>", text)
    calls = re.findall(r"resolver\.Add(\w+)\(([^()]*(?:\(\))?)\)", text)
    # AddDepthwiseConv2D -> DEPTHWISE_CONV_2D, AddRelu6 -> RELU6
    names = [re.sub(r"(?<=[a-z])(?=[A-Z]|\dD)", "_", method).upper() for method, _ in calls]
    assert len(set(names)) == len(names), f"an op is registered twice: {names}"
    return int(size), dict(zip(names, (arg for _, arg in calls), strict=True))


@pytest.mark.parametrize(("board_id", "model"), CASES)
def test_pio_lint_is_clean(board_id: str, model: str, projects: Projects) -> None:
    assert tflm.pio_lint(projects[board_id, model]) == []


@pytest.mark.parametrize(("board_id", "model"), CASES)
def test_resolver_has_exactly_the_model_ops_with_int8_kernels(
    board_id: str, model: str, projects: Projects, litert_ops: dict[str, set[str]]
) -> None:
    size, registered = resolver(projects[board_id, model])
    assert set(registered) == litert_ops[model]
    assert size == len(litert_ops[model])
    for op, argument in registered.items():
        assert argument == INT8_KERNELS.get(op, ""), op
    if model == "v3-small":
        assert {"HARD_SWISH", "MUL", "ADD", "MEAN"} <= set(registered)


@pytest.mark.parametrize(("board_id", "model"), CASES)
def test_arena_is_at_least_the_measured_one(
    board_id: str, model: str, projects: Projects, measured: dict[str, TflmRun]
) -> None:
    text = (projects[board_id, model] / "src" / "mnmcu_runtime_tflm.cpp").read_text()
    (arena,) = re.findall(r"#define MNMCU_TFLM_ARENA_BYTES (\d+)u", text)
    assert int(arena) >= measured[model].arena_total + 16
    assert int(arena) % 16 == 0


@pytest.mark.parametrize(("board_id", "model"), CASES)
def test_versions_are_pinned(board_id: str, model: str, projects: Projects) -> None:
    project, board = projects[board_id, model], get_board(board_id)
    ini = configparser.ConfigParser(inline_comment_prefixes=(";",), interpolation=None)
    ini.read(project / "platformio.ini")
    env = ini[f"env:{board_id}"]
    assert re.fullmatch(rf"[\w-]+/[\w-]+@{EXACT}", env["platform"])
    for key in ("platform_packages", "lib_deps"):
        for spec in filter(None, re.split(r"[,\n]\s*", env.get(key, "").strip())):
            assert re.fullmatch(rf"[\w-]+/[\w.-]+\s*@\s*{EXACT}|\S+#[0-9a-f]{{40}}", spec), spec
    versions = tflm.load_versions()
    if board.platformio is not None and board.platformio.framework == "espidf":
        manifest = (project / "src" / "idf_component.yml").read_text()
        found = dict(re.findall(r"^  ([\w/-]+):\n    version: \"([^\"]*)\"", manifest, re.M))
        assert found[versions.esp_component] == f"=={versions.esp_version}"
        assert all(re.fullmatch(f"=={EXACT}", v) for v in found.values()), found
    else:
        fetch = (project / "tools" / "tflm_fetch.py").read_text()
        assert f'COMMIT = "{versions.tflm_commit}"' in fetch
        assert "-DCMSIS_NN" in env["build_flags"].split()
        assert re.search(rf"toolchain-gccarmnoneeabi@{EXACT}", env["platform_packages"])


@pytest.mark.parametrize(("board_id", "model"), CASES)
def test_structural_check_passes(
    board_id: str,
    model: str,
    projects: Projects,
    measured: dict[str, TflmRun],
    int8_models: dict[str, Path],
) -> None:
    graph = load_graph(int8_models[model])
    project = projects[board_id, model]
    problems = tflm.check_tflm_project(
        project, graph, measured[model].arena_total, get_board(board_id)
    )
    assert problems == []


# --------------------------------------------------------------------------
# What compiles here
# --------------------------------------------------------------------------


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed: apt-get install gcc g++")
    return path


MODEL_CHECK = r"""
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "mnmcu_tflm_model.h"

static uint8_t file_bytes[MNMCU_TFLM_MODEL_BYTES + 1];

int main(int argc, char **argv) {
    if (argc != 2 || ((uintptr_t)g_model % 16) != 0) return 2;
    FILE *f = fopen(argv[1], "rb");
    if (f == NULL) return 3;
    size_t n = fread(file_bytes, 1, sizeof file_bytes, f);
    fclose(f);
    if (n != MNMCU_TFLM_MODEL_BYTES) return 4;
    return memcmp(file_bytes, g_model, n) == 0 ? 0 : 5;
}
"""


@pytest.mark.parametrize("model", MODELS)
def test_model_array_compiles_and_equals_the_tflite(
    model: str, projects: Projects, int8_models: dict[str, Path], tmp_path: Path
) -> None:
    gcc = need("gcc")
    src = projects["disco_f407vg", model] / "src"
    (tmp_path / "check.c").write_text(MODEL_CHECK)
    exe = tmp_path / "check"
    flags = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", f"-I{src}"]
    subprocess.run(
        [gcc, *flags, str(src / "mnmcu_tflm_model.c"), str(tmp_path / "check.c"), "-o", str(exe)],
        check=True,
        capture_output=True,
    )
    assert subprocess.run([str(exe), str(int8_models[model])]).returncode == 0


# The TFLM API the generated runtime uses, declared as in tflite-micro at the pinned
# commit: micro_interpreter.h, micro_mutable_op_resolver.h, micro_op_resolver.h,
# micro_common.h, c/common.h (TF_LITE_STATIC_MEMORY), schema_generated.h,
# schema_utils.h, cortex_m_generic/debug_log_callback.h, the kernels' Register_*.
STUB = """
#pragma once
#include <cstddef>
#include <cstdint>

typedef enum { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;
typedef enum {
  kTfLiteNoType = 0, kTfLiteFloat32 = 1, kTfLiteInt16 = 7, kTfLiteInt8 = 9
} TfLiteType;
typedef struct { int size; int data[8]; } TfLiteIntArray;
typedef struct { float scale; int32_t zero_point; } TfLiteQuantizationParams;
typedef union { int32_t *i32; float *f; int8_t *int8; uint8_t *uint8; void *data; } TfLitePtrUnion;
typedef struct {
  TfLiteType type; TfLitePtrUnion data; TfLiteIntArray *dims;
  TfLiteQuantizationParams params; size_t bytes;
} TfLiteTensor;
struct TFLMRegistration { int32_t builtin_code; const char *custom_name; };

namespace flatbuffers {
typedef uint32_t uoffset_t;
class String { public: const char *c_str() const; };
template <typename T> class Vector { public: uoffset_t size() const; T Get(uoffset_t i) const; };
}  // namespace flatbuffers

#define TFLITE_SCHEMA_VERSION (3)

namespace tflite {
enum BuiltinOperator : int32_t { BuiltinOperator_CONV_2D = 3, BuiltinOperator_CUSTOM = 32 };
inline const char *EnumNameBuiltinOperator(BuiltinOperator) { return ""; }
struct OperatorCode { const flatbuffers::String *custom_code() const; };
struct Operator { uint32_t opcode_index() const; };
struct SubGraph { const flatbuffers::Vector<const Operator *> *operators() const; };
struct Model {
  uint32_t version() const;
  const flatbuffers::Vector<const OperatorCode *> *operator_codes() const;
  const flatbuffers::Vector<const SubGraph *> *subgraphs() const;
};
const Model *GetModel(const void *buf);
BuiltinOperator GetBuiltinCode(const OperatorCode *op_code);

#define MNMCU_REGISTER(NAME) TFLMRegistration Register_##NAME();
%(registers)s
}  // namespace tflite

// micro_log.h (without TF_LITE_STRIP_ERROR_STRINGS)
#include <cstdarg>
void MicroPrintf(const char *format, ...);
void VMicroPrintf(const char *format, va_list args);

namespace tflite {
class MicroOpResolver {
 public:
  virtual const TFLMRegistration *FindOp(BuiltinOperator op) const = 0;
  virtual const TFLMRegistration *FindOp(const char *op) const = 0;
  virtual ~MicroOpResolver() {}
};

template <unsigned int tOpCount>
class MicroMutableOpResolver : public MicroOpResolver {
 public:
  const TFLMRegistration *FindOp(BuiltinOperator op) const override;
  const TFLMRegistration *FindOp(const char *op) const override;
%(adds)s
};

class MicroInterpreter {
 public:
  MicroInterpreter(const Model *model, const MicroOpResolver &op_resolver, uint8_t *tensor_arena,
                   size_t tensor_arena_size, void *resource_variables = nullptr,
                   void *profiler = nullptr, bool preserve_all_tensors = false);
  TfLiteStatus AllocateTensors();
  TfLiteStatus Invoke();
  TfLiteTensor *input(size_t index);
  size_t inputs_size() const;
  TfLiteTensor *output(size_t index);
  size_t outputs_size() const;
  size_t arena_used_bytes() const;
};
}  // namespace tflite

extern "C" {
typedef void (*DebugLogCallback)(const char *s);
void RegisterDebugLogCallback(DebugLogCallback callback);
}
"""

# Resolver methods (micro_mutable_op_resolver.h) with their default registrations.
ADDS = {
    "AddConv2D": "CONV_2D",
    "AddDepthwiseConv2D": "DEPTHWISE_CONV_2D",
    "AddFullyConnected": "FULLY_CONNECTED",
    "AddAdd": "ADD",
    "AddMul": "MUL",
    "AddSoftmax": "SOFTMAX",
    "AddAveragePool2D": "AVERAGE_POOL_2D",
    "AddMaxPool2D": "MAX_POOL_2D",
    "AddPad": "PAD",
    "AddMean": "MEAN",
    "AddHardSwish": "HARD_SWISH",
    "AddReshape": "RESHAPE",
}
STUB_PATHS = (
    "tensorflow/lite/micro/micro_interpreter.h",
    "tensorflow/lite/micro/micro_log.h",
    "tensorflow/lite/micro/micro_mutable_op_resolver.h",
    "tensorflow/lite/schema/schema_generated.h",
    "tensorflow/lite/schema/schema_utils.h",
    "tensorflow/lite/micro/cortex_m_generic/debug_log_callback.h",
)


# The kernel header declaring each int8 registration at the pinned commit; the real
# micro_mutable_op_resolver.h includes all of them but pad.h, so the stub of
# tflm_stub.h declares the others and pad.h's stub alone declares PAD_INT8.
KERNEL_HEADER_STUBS = {"tensorflow/lite/micro/kernels/pad.h": ("PAD_INT8",)}
OTHER_KERNEL_HEADERS = ("add", "conv", "depthwise_conv", "fully_connected", "mul", "pooling")


def write_stubs(root: Path) -> Path:
    own = {name for names in KERNEL_HEADER_STUBS.values() for name in names}
    registers = sorted(set(ADDS.values())) + [k.split("::")[1][9:-2] for k in INT8_KERNELS.values()]
    text = STUB % {
        "registers": "\n".join(f"MNMCU_REGISTER({name})" for name in sorted(set(registers) - own)),
        "adds": "\n".join(
            f"  TfLiteStatus {method}(const TFLMRegistration &r = Register_{op}());"
            for method, op in ADDS.items()
        ),
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / "tflm_stub.h").write_text(text)
    for rel in STUB_PATHS + tuple(
        f"tensorflow/lite/micro/kernels/{name}.h" for name in (*OTHER_KERNEL_HEADERS, "softmax")
    ):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text('#pragma once\n#include "tflm_stub.h"\n')
    for rel, names in KERNEL_HEADER_STUBS.items():
        declarations = "".join(f"TFLMRegistration Register_{n}();\n" for n in names)
        (root / rel).write_text(
            f'#pragma once\n#include "tflm_stub.h"\nnamespace tflite {{\n{declarations}}}\n'
        )
    return root


@pytest.mark.parametrize(("board_id", "model"), CASES)
def test_runtime_compiles_against_the_tflm_api(
    board_id: str, model: str, projects: Projects, tmp_path: Path
) -> None:
    gxx = need("g++")
    stubs = write_stubs(tmp_path / "stubs")
    src = projects[board_id, model] / "src"
    flags = ["-std=c++17", "-Wall", "-Wextra", "-Werror", "-DTF_LITE_STATIC_MEMORY"]
    result = subprocess.run(
        [gxx, *flags, f"-I{stubs}", f"-I{src}", "-c", str(src / "mnmcu_runtime_tflm.cpp")]
        + ["-o", str(tmp_path / "runtime.o")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------
# Running the generated runtime on the host, where TFLM sources are at hand
# --------------------------------------------------------------------------

# TFLM's library sources with the reference kernels (no CMSIS-NN / ESP-NN, which
# need their targets), as TFLM's Makefile lists them for the host.
LIBRARY_GLOBS = (
    "tensorflow/lite/micro/*.cc",
    "tensorflow/lite/micro/tflite_bridge/*.cc",
    "tensorflow/lite/micro/kernels/*.cc",
    "tensorflow/lite/micro/memory_planner/*.cc",
    "tensorflow/lite/micro/arena_allocator/*.cc",
    "tensorflow/lite/kernels/kernel_util.cc",
    "tensorflow/lite/core/c/common.cc",
    "tensorflow/lite/core/api/*.cc",
    "tensorflow/lite/kernels/internal/*.cc",
    "tensorflow/lite/kernels/internal/reference/*.cc",
    "tensorflow/compiler/mlir/lite/core/api/error_reporter.cc",
    "tensorflow/compiler/mlir/lite/schema/schema_utils.cc",
)
NOT_LIBRARY = re.compile(r"_test\.cc$|test_helper|fake_micro_context|mock_micro_graph|hexdump")
HOST_MAIN = r"""
#include <stdio.h>
#include <string.h>

#include "mnmcu_hal.h"
#include "mnmcu_runtime.h"

static int8_t inputs[1 << 20];

int main(int argc, char **argv) {
    mnmcu_hal_init();
    int status = mnmcu_runtime_init();
    if (status != 0 || argc != 2) return 1;
    const mnmcu_runtime_info_t *info = mnmcu_runtime_info();
    printf("arena %u %u\n", (unsigned)info->arena_bytes, (unsigned)info->arena_used_bytes);
    FILE *f = fopen(argv[1], "rb");
    size_t n = fread(inputs, 1, sizeof inputs, f);
    fclose(f);
    for (size_t k = 0; k + info->input_size <= n; k += info->input_size) {
        memcpy(mnmcu_runtime_input(), inputs + k, info->input_size);
        if (mnmcu_runtime_invoke() != 0) return 2;
        printf("out");
        for (uint32_t i = 0; i < info->output_size; ++i) printf(" %d", mnmcu_runtime_output()[i]);
        printf("\n");
    }
    return 0;
}
"""


@pytest.fixture(scope="session")
def host_tflm(framework_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> HostTflm:
    """A host library of TFLM with reference kernels, from $MNMCU_TFLM_SOURCES.

    Compiled as a release build is, with ``TF_LITE_STRIP_ERROR_STRINGS``: its
    ``micro_log.cc`` then defines no ``MicroPrintf``, which TFLM's headers
    still call from the generated runtime (compiled without that macro).
    Objects are kept in the framework-source cache.
    """
    root = TFLM.locate()
    gxx = need("g++")
    includes = tflm_include_dirs(root)
    out = tmp_path_factory.mktemp("host_tflm")
    sources = sorted(
        {p for pattern in LIBRARY_GLOBS for p in Path(root).glob(pattern)}
        - {p for p in Path(root).glob("**/*.cc") if NOT_LIBRARY.search(p.name)}
    )
    flags = ["-std=c++17", "-O1", "-fno-exceptions", "-fno-rtti", "-DTF_LITE_STATIC_MEMORY"]
    flags += ["-DTF_LITE_STRIP_ERROR_STRINGS", "-w", *(f"-I{d}" for d in includes)]
    compiler = Compiler(out, framework_cache / "objects", tree_fingerprint([root / "tensorflow"]))
    results = compiler.compile([(s, [gxx, *flags, "-c", str(s), "-o", OBJECT]) for s in sources])
    require_compiled(results, "TFLM host library sources")
    library = out / "libtflm.a"
    subprocess.run(["ar", "rcs", str(library), *(str(r.obj) for r in results)], check=True)
    return HostTflm(library, includes)


@dataclass(frozen=True)
class HostTflm:
    library: Path
    includes: list[Path]


def run_on_host(tflm_lib: HostTflm, src: Path, xs: np.ndarray, work: Path) -> np.ndarray:
    """Build the project's runtime in ``src`` with the host HAL, run it on ``xs``, its outputs."""
    hal = data_dir("firmware") / "hal" / "host" / "mnmcu_hal_host.c"
    (work / "main.c").write_text(HOST_MAIN)
    exe = work / "run"
    isystem = [f"-isystem{d}" for d in tflm_lib.includes]
    objects = []
    for source, tool, std in (
        (src / "mnmcu_runtime_tflm.cpp", "g++", "-std=c++17"),
        (src / "mnmcu_tflm_model.c", "gcc", "-std=c11"),
        (hal, "gcc", "-std=gnu11"),
        (work / "main.c", "gcc", "-std=c11"),
    ):
        obj = work / f"{source.stem}.o"
        flags = [std, "-O1", "-Wall", "-Wextra", "-Werror", "-DTF_LITE_STATIC_MEMORY", f"-I{src}"]
        if tool == "g++":
            flags += ["-fno-exceptions", "-fno-rtti", *isystem]
        subprocess.run([need(tool), *flags, "-c", str(source), "-o", str(obj)], check=True)
        objects.append(str(obj))
    link = subprocess.run(
        [need("g++"), "-o", str(exe), *objects, str(tflm_lib.library), "-lm"],
        capture_output=True,
        text=True,
    )
    assert link.returncode == 0, link.stderr[-3000:]
    (work / "inputs.bin").write_bytes(xs.tobytes())
    run = subprocess.run([str(exe), str(work / "inputs.bin")], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    (arena,) = re.findall(r"^arena (\d+) (\d+)$", run.stdout, re.M)
    assert 0 < int(arena[1]) <= int(arena[0])
    outputs = [line.split()[1:] for line in run.stdout.splitlines() if line.startswith("out")]
    return np.array(outputs, dtype=np.int64).astype(np.int8)


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_runtime_runs_on_the_host_bit_exact(
    model: str,
    host_tflm: HostTflm,
    projects: Projects,
    int8_models: dict[str, Path],
    tmp_path: Path,
) -> None:
    """The ESP-IDF route's runtime (no Arm-only debug-log hook), TFLM reference kernels."""
    graph = load_graph(int8_models[model])
    rng = np.random.default_rng(7)
    xs = rng.integers(-128, 128, size=(4, *graph.input.shape[1:]), dtype=np.int8)
    got = run_on_host(host_tflm, projects["esp32", model] / "src", xs, tmp_path)
    expected = expected_outputs(int8_models[model].read_bytes(), xs, "tflm")
    assert np.array_equal(got, expected.reshape(got.shape))


def with_unused_codes(model: bytes) -> bytes:
    """``model`` listing QUANTIZE and DEQUANTIZE as operator codes no operator uses.

    MLPerf Tiny's ResNet-8 (pretrainedResnet_quant.tflite) is such a model.
    """
    from ..tflite_fuzz import _schema, forge

    schema = _schema()

    def edit(m: Any) -> None:
        for name in ("QUANTIZE", "DEQUANTIZE"):
            code = schema.OperatorCodeT()
            builtin = getattr(schema.BuiltinOperator, name)
            code.builtinCode, code.deprecatedBuiltinCode, code.version = builtin, builtin, 1
            m.operatorCodes.append(code)

    return forge(model, edit)


@pytest.mark.slow
@pytest.mark.parametrize("unused_codes", [False, True], ids=["sample", "unused-op-codes"])
def test_trained_model_runs_on_the_host_bit_exact(
    unused_codes: bool, host_tflm: HostTflm, tmp_path: Path
) -> None:
    """The trained sample model: distinct outputs, so bit-exactness says something.

    With op codes no operator uses, the boot-time op check must not ask the
    resolver for them (TFLM never does).
    """
    from mnmcu.emit.project import emit_project

    model = tmp_path / "sample.tflite"
    data = (data_dir("firmware") / "sample" / "mnmcu_sample.tflite").read_bytes()
    model.write_bytes(with_unused_codes(data) if unused_codes else data)
    graph = load_graph(model)
    if unused_codes:
        assert (
            graph.opcodes
            == load_graph(data_dir("firmware") / "sample" / "mnmcu_sample.tflite").opcodes
        )
    info = emit_project(model, get_board("esp32"), tmp_path / "project", runtime="tflm")
    rng = np.random.default_rng(11)
    xs = rng.integers(-128, 128, size=(8, *graph.input.shape[1:]), dtype=np.int8)
    (tmp_path / "work").mkdir()
    got = run_on_host(host_tflm, info.project_dir / "src", xs, tmp_path / "work")
    expected = expected_outputs(model.read_bytes(), xs, "tflm").reshape(got.shape)
    assert np.array_equal(got, expected)
    assert len({row.tobytes() for row in got}) >= 4, got


@pytest.mark.slow
def test_brought_ops_run_on_the_host_bit_exact(host_tflm: HostTflm, tmp_path: Path) -> None:
    """MAX_POOL_2D, CONCATENATION, LOGISTIC, TANH, SQUEEZE and EXPAND_DIMS: the resolver
    names TFLM's registrations, and the runtime gives the reference's bytes."""
    from mnmcu.emit.project import emit_project

    from .test_aot import brought_zoo

    model = tmp_path / "brought.tflite"
    model.write_bytes(brought_zoo())
    graph = load_graph(model)
    info = emit_project(model, get_board("esp32"), tmp_path / "project", runtime="tflm")
    runtime = (info.project_dir / "src" / tflm.RUNTIME_SOURCE).read_text()
    for method in ("AddMaxPool2D", "AddConcatenation", "AddLogistic", "AddTanh", "AddSqueeze",
                   "AddExpandDims"):  # fmt: skip
        assert f"resolver.{method}(" in runtime
    rng = np.random.default_rng(12)
    xs = rng.integers(-128, 128, size=(8, *graph.input.shape[1:]), dtype=np.int8)
    (tmp_path / "work").mkdir()
    got = run_on_host(host_tflm, info.project_dir / "src", xs, tmp_path / "work")
    expected = expected_outputs(model.read_bytes(), xs, "tflm").reshape(got.shape)
    assert np.array_equal(got, expected)
    assert len({row.tobytes() for row in got}) >= 4, got


@pytest.mark.parametrize(
    ("board_id", "kernels"), [("disco_f407vg", "cmsis-nn"), ("esp32s3", "esp-nn")]
)
def test_project_manifest_names_tflm_kernels(board_id: str, kernels: str, tmp_path: Path) -> None:
    from mnmcu.emit.project import PROJECT_FILE, emit_project, load_project

    model = data_dir("firmware") / "sample" / "mnmcu_sample.tflite"
    emit_project(model, get_board(board_id), tmp_path / "p", runtime="tflm")
    manifest = json.loads((tmp_path / "p" / PROJECT_FILE).read_text())
    assert manifest["runtime"] == "tflm" and manifest["kernels"] == kernels
    assert load_project(tmp_path / "p").kernels == kernels
    assert not any("could not be compiled" in note for note in manifest["notes"])


def test_tflm_headers_are_system_headers_for_the_project(
    int8_models: dict[str, Path], tmp_path: Path
) -> None:
    """The pre-build step names every include folder of the library with -isystem.

    The QEMU boards' platform compiles src/ with -Werror, and TFLM's headers
    have unused parameters: as PlatformIO passes them with -I, a qemu-m4 TFLM
    project did not compile. GCC treats a folder given by -I and -isystem as
    a system folder.
    """
    from mnmcu.emit.project import emit_project

    info = emit_project(int8_models["v1"], get_board("qemu-m4"), tmp_path, runtime="tflm")
    assert info.kernels == "cmsis-nn"
    manifest = json.loads((tmp_path / tflm.TREE_DIR / "library.json").read_text())
    library = {f.split(None, 1)[1] for f in manifest["build"]["flags"] if f.startswith("-I ")}
    script = (tmp_path / tflm.PRE_SCRIPT).read_text()
    (block,) = re.findall(r"^INCLUDES = \((.*?)^\)", script, re.MULTILINE | re.DOTALL)
    pre = set(re.findall(r'"([^"]*)"', block))
    assert pre == library | {""}
    assert 'tree = Path("lib/tflite-micro")' in script
    assert 'env.Append(CCFLAGS=["-isystem", str(tree / include)])' in script
