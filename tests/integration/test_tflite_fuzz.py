"""Mutated .tflite models through mnmcu: processed consistently or refused with one line.

Seeds: the repository's sample model (MobileNet V1), the session's V2 and
V3-Small models, and test_aot's small model with a SHAPE/STRIDED_SLICE/PACK
chain. ``tests/tflite_fuzz.py`` makes the mutants (schema-aware
field writes, object-API rebuilds, random bytes) and runs them in-process;
here it runs as a subprocess under RLIMIT_AS = 2 GB (its compilers and
runtimes inherit the limit), split over two processes:

* :data:`MUTANTS` mutants through parse, validation and analysis;
* :data:`EMIT_MUTANTS` mutants through analysis, ``emit_project`` and ``verify``
  (without sanitizers, which cannot run under an address-space limit);
* a sample of both through the CLI (``analyze``, ``emit``, ``verify``): exit 0
  or 1, one ``error:`` line on 1, no traceback, the same verdict as in-process.

``MNMCU_FUZZ_MUTANTS=N`` and ``MNMCU_FUZZ_EMIT_MUTANTS=N`` run more (or fewer).
A failure names the mutant; ``python -m tests.tflite_fuzz --seed S --replay N
MODELS...`` runs it again.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from ..conftest import REPO
from ..tflite_fuzz import Mutator, load_seeds
from .test_aot import shape_chain_model

MUTANTS = int(os.environ.get("MNMCU_FUZZ_MUTANTS", "10000"))
EMIT_MUTANTS = int(os.environ.get("MNMCU_FUZZ_EMIT_MUTANTS", "500"))
MEMORY_LIMIT = 2 << 30
SEED = 12
WEIGHTS = "4,1,1,1"  # the sample model is the cheapest MobileNet to parse and to compile
WORKERS = 2
SAMPLE = REPO / "firmware" / "sample" / "mnmcu_sample.tflite"


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _env() -> dict[str, str]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "toolchain"), str(REPO)])
    return env


def run_fuzzer(models: list[Path], path: str, count: int, work: Path) -> list[dict[str, Any]]:
    """Mutants 0 to count - 1 through ``path``, in WORKERS subprocesses under the memory limit."""
    procs = []
    share = -(-count // WORKERS)
    for w in range(WORKERS):
        start, n = w * share, min(share, count - w * share)
        progress = work / f"{path}-{w}.progress"
        cmd = [sys.executable, "-m", "tests.tflite_fuzz", "--path", path, "--seed", str(SEED)]
        cmd += ["--weights", WEIGHTS, "--start", str(start), "--count", str(n)]
        cmd += ["--progress", str(progress), *map(str, models)]
        out = open(work / f"{path}-{w}.json", "w")  # noqa: SIM115
        procs.append((subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE, env=_env(),
                                       preexec_fn=_limit_memory), out, progress))  # fmt: skip
    reports = []
    for proc, out, progress in procs:
        _, stderr = proc.communicate(timeout=3600)
        out.close()
        if proc.returncode != 0:
            at = progress.read_text() if progress.exists() else "?"
            pytest.fail(
                f"the fuzzer died (exit {proc.returncode}) at mutant {at}: "
                f"{stderr.decode()[-2000:]}\nreplay: python -m tests.tflite_fuzz --path {path} "
                f"--seed {SEED} --weights {WEIGHTS} --replay {at} {' '.join(map(str, models))}"
            )
        reports.append(json.loads(Path(out.name).read_text()))
    return reports


def _summary(reports: list[dict[str, Any]]) -> dict[str, Any]:
    total: dict[str, Any] = {"mutants": 0, "outcomes": {}, "refusals": {}, "failures": []}
    for r in reports:
        total["mutants"] += r["mutants"]
        for key in ("outcomes", "refusals"):
            for k, v in r[key].items():
                total[key][k] = total[key].get(k, 0) + v
        total["failures"] += r["failures"]
    return total


@pytest.fixture(scope="module")
def seeds(int8_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The three MobileNets, and a small model with the SHAPE/STRIDED_SLICE/PACK chain."""
    chain = tmp_path_factory.mktemp("fuzz-seeds") / "shape_chain.tflite"
    chain.write_bytes(shape_chain_model())
    return [SAMPLE, int8_models["v2"], int8_models["v3-small"], chain]


@pytest.fixture(scope="module")
def emit_reports(seeds: list[Path], tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    return run_fuzzer(seeds, "emit", EMIT_MUTANTS, tmp_path_factory.mktemp("fuzz-emit"))


def _check(reports: list[dict[str, Any]], count: int) -> dict[str, Any]:
    total = _summary(reports)
    kinds = len(total["refusals"])
    print(f"\n{total['mutants']} mutants: {total['outcomes']}; {kinds} kinds of refusal")
    for message, n in sorted(total["refusals"].items(), key=lambda kv: -kv[1])[:40]:
        print(f"  {n:6d}  {message}")
    assert total["mutants"] == count
    assert not total["failures"], json.dumps(total["failures"][:5], indent=1)
    assert total["outcomes"].get("accepted", 0) > 0 and total["outcomes"].get("refused", 0) > 0
    return total


@pytest.mark.slow
def test_mutants_through_parse_validate_analyze(seeds: list[Path], tmp_path: Path) -> None:
    total = _check(run_fuzzer(seeds, "analyze", MUTANTS, tmp_path), MUTANTS)
    assert len(total["refusals"]) >= 50, "the mutations reach too few rules"


@pytest.mark.slow
def test_mutants_through_emit_and_verify(emit_reports: list[dict[str, Any]]) -> None:
    total = _check(emit_reports, EMIT_MUTANTS)
    assert total["outcomes"]["accepted"] >= EMIT_MUTANTS // 20, "too few reach the C compiler"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mnmcu", *args],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=_limit_memory,
    )


def _one_line_or_success(result: subprocess.CompletedProcess[str], what: str) -> str | None:
    """None on success, else the error line; anything but exit 0 or 1 with one line fails."""
    assert "Traceback" not in result.stderr, f"{what}: {result.stderr}"
    assert result.returncode in (0, 1), f"{what}: exit {result.returncode}: {result.stderr}"
    if result.returncode == 0:
        return None
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), f"{what}: {result.stderr}"
    return lines[0]


@pytest.mark.slow
def test_cli_on_a_sample_of_the_mutants(
    seeds: list[Path], emit_reports: list[dict[str, Any]], tmp_path: Path
) -> None:
    """Accepted mutants exit 0 everywhere; refused ones exit 1 with the in-process message."""
    mutator = Mutator(load_seeds(seeds), SEED, weights=[float(w) for w in WEIGHTS.split(",")])
    accepted = [i for r in emit_reports for i in r["accepted_mutants"]][:4]
    refused = [e for r in emit_reports for e in r["refused_mutants"].values()][:12]
    assert accepted and refused
    for i in accepted:
        path = tmp_path / f"accepted-{i}.tflite"
        path.write_bytes(mutator.mutant(i)[1])
        for args in (
            ["analyze", str(path), "--board", "qemu-m4"],
            ["emit", str(path), "--board", "qemu-m4", "--out", str(tmp_path / f"p{i}")],
            ["verify", str(path), "--count", "3", "--no-sanitize"],
        ):
            result = _cli(*args)
            assert _one_line_or_success(result, f"mutant {i} {args[0]}") is None, result.stderr
            assert "Traceback" not in result.stdout
    for entry in refused:
        i = entry["mutant"]
        path = tmp_path / f"refused-{i}.tflite"
        path.write_bytes(mutator.mutant(i)[1])
        analyze = _cli("analyze", str(path), "--board", "qemu-m4")  # the board of the run
        line = _one_line_or_success(analyze, f"mutant {i} analyze")
        if entry["stage"] == "analyze":
            assert line is not None and line.endswith(entry["message"].split(": ", 1)[-1]), line
        else:  # refused by emit or verify: the CLI's emit refuses it too
            assert line is None
            out = tempfile.mkdtemp(dir=tmp_path)
            line = _one_line_or_success(
                _cli("emit", str(path), "--board", "qemu-m4", "--out", out, "--force"),
                f"mutant {i} emit",
            )
            verify = _one_line_or_success(
                _cli("verify", str(path), "--count", "3", "--no-sanitize"), f"mutant {i} verify"
            )
            assert line is not None or verify is not None, entry
