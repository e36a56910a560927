"""Output folders: the lock, atomic files, manifests and what --force may touch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mnmcu.errors import OutputBusy, OutputExists
from mnmcu.outdir import (
    FILES_MANIFEST,
    LOCK_FILE,
    output_folder,
    read_manifest,
    sha256_bytes,
    write_file,
)

TOOLCHAIN = Path(__file__).resolve().parents[2] / "toolchain"


def _holder(folder: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process that holds ``folder`` for ``seconds``; returns once it holds it."""
    code = textwrap.dedent(
        f"""
        import sys, time
        from mnmcu.outdir import output_folder
        with output_folder({str(folder)!r}, True, "mnmcu holder"):
            print("held", flush=True)
            time.sleep({seconds})
        """
    )
    env = {**os.environ, "PYTHONPATH": str(TOOLCHAIN)}
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


# --------------------------------------------------------------------------
# the lock
# --------------------------------------------------------------------------


def test_a_second_command_fails_at_once_naming_the_first(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    holder = _holder(folder, 30)
    try:
        start = time.monotonic()
        with pytest.raises(OutputBusy) as caught, output_folder(folder, True, "mnmcu emit"):
            pass
        assert time.monotonic() - start < 2
        text = str(caught.value)
        assert f"pid {holder.pid}" in text and "mnmcu holder" in text and "started" in text
        assert "\n" not in text and "--out" in text
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    holder = _holder(folder, 60)
    holder.kill()  # no clean release: the lock file stays
    holder.wait()
    assert (folder / LOCK_FILE).exists()
    with output_folder(folder, True, "mnmcu emit") as out:
        record = json.loads((folder / LOCK_FILE).read_text())
        assert record["pid"] == os.getpid() and record["command"] == "mnmcu emit"
        out.write("a.txt", "a")
    assert not (folder / LOCK_FILE).exists()


def test_the_lock_is_reentrant_in_one_process(tmp_path: Path) -> None:
    with output_folder(tmp_path / "o", False, "mnmcu build") as outer:
        with output_folder(tmp_path / "o", True, "mnmcu model") as inner:
            inner.write("model.json", "{}")
        inner.save_manifest()
        outer.write("report.json", "{}")
        outer.save_manifest()
        assert (tmp_path / "o" / LOCK_FILE).exists()
    manifest = read_manifest(tmp_path / "o", FILES_MANIFEST)
    assert manifest is not None and {"model.json", "report.json"} <= set(manifest.hashes)


# --------------------------------------------------------------------------
# atomic files, folders of failed runs
# --------------------------------------------------------------------------


def test_a_failed_write_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "model_int8.tflite"
    write_file(target, b"old")

    class Boom(Exception):
        pass

    from mnmcu.outdir import replacing

    with pytest.raises(Boom), replacing(target) as tmp:
        tmp.write_bytes(b"half a ne")
        raise Boom
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model_int8.tflite"]


def test_a_failed_run_removes_only_the_folders_it_created(tmp_path: Path) -> None:
    existing = tmp_path / "mine"
    existing.mkdir()
    with pytest.raises(RuntimeError), output_folder(existing / "a" / "b", False, "mnmcu emit"):
        raise RuntimeError("generation failed")
    assert existing.is_dir() and not (existing / "a").exists()
    with pytest.raises(RuntimeError), output_folder(existing, False, "mnmcu emit"):
        raise RuntimeError("generation failed")
    assert existing.is_dir()


def test_without_force_a_folder_with_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(OutputExists, match=r"notes\.txt.*--force"):
        with output_folder(tmp_path, False, "mnmcu model"):
            pass
    with pytest.raises(OutputExists, match=r"choose another --keep$") as caught:
        with output_folder(tmp_path, False, "mnmcu verify", option="--keep"):
            pass
    assert "--force" not in str(caught.value) and "--out" not in str(caught.value)


# --------------------------------------------------------------------------
# manifests and --force
# --------------------------------------------------------------------------


def _manifest(folder: Path, **data: object) -> None:
    (folder / FILES_MANIFEST).write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"files": ["notes.txt"]}, "no 'generator: mnmcu"),
        ({"generator": "mnmcu 1", "files": ["../outside.txt"]}, "not a plain path"),
        ({"generator": "mnmcu 1", "files": ["/etc/passwd"]}, "not a plain path"),
        ({"generator": "mnmcu 1", "files": ["a/./b"]}, "not a plain path"),
        ({"generator": "mnmcu 1", "files": "notes.txt"}, "not a list"),
        ({"generator": "mnmcu 1", "files": [], "sha256": {"a": "xyz"}}, "malformed"),
    ],
)
def test_a_foreign_or_escaping_manifest_is_refused_before_anything_changes(
    tmp_path: Path, data: dict[str, object], reason: str
) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    _manifest(tmp_path, **data)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(OutputExists, match=reason), output_folder(tmp_path, True, "mnmcu x"):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_manifest_through_a_symlinked_folder_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("precious")
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "sub").symlink_to(outside)
    h = sha256_bytes(b"precious")
    _manifest(folder, generator="mnmcu 1", files=["sub/keep.txt"], sha256={"sub/keep.txt": h})
    with pytest.raises(OutputExists, match="leads outside"), output_folder(folder, True, "x"):
        pass
    assert (outside / "keep.txt").read_text() == "precious"


def test_force_replaces_unchanged_files_and_keeps_the_rest(tmp_path: Path) -> None:
    with output_folder(tmp_path, False, "mnmcu model") as out:
        out.write("model.json", "v1")
        out.write("train.json", "old training")
        out.write("edited.json", "as written")
        out.save_manifest()
    (tmp_path / "edited.json").write_text("the user's edit")
    (tmp_path / "notes.txt").write_text("the user's notes")

    with output_folder(tmp_path, True, "mnmcu model") as out:
        out.check_writable(["model.json"])
        with pytest.raises(OutputExists) as caught:
            out.check_writable(["model.json", "edited.json", "notes.txt"])
        assert "'edited.json'" in str(caught.value) and "'notes.txt'" in str(caught.value)
        assert "model.json" not in str(caught.value).split(":")[1]
        out.remove_stale(["train.json", "edited.json", "notes.txt"])
        out.write("model.json", "v2")
        out.save_manifest()
    assert not (tmp_path / "train.json").exists()
    assert (tmp_path / "edited.json").read_text() == "the user's edit"
    assert (tmp_path / "notes.txt").read_text() == "the user's notes"
    manifest = read_manifest(tmp_path, FILES_MANIFEST)
    assert manifest is not None
    assert manifest.hashes["model.json"] == (sha256_bytes(b"v2"),)
    assert "edited.json" not in manifest.hashes and "train.json" not in manifest.hashes


def test_commit_checks_everything_before_it_changes_anything(tmp_path: Path) -> None:
    manifest = "mnmcu_project.json"
    with output_folder(tmp_path, False, "mnmcu emit", manifest=manifest) as out:
        with out.staging() as stage:
            for rel in ("a.c", "src/b.c", "old.c"):
                write_file(stage / rel, rel)
            out.commit(stage, {})
    (tmp_path / "src" / "b.c").write_text("edited")
    with output_folder(tmp_path, True, "mnmcu emit", manifest=manifest) as out:
        with out.staging() as stage:
            for rel in ("a.c", "src/b.c", "new.c"):
                write_file(stage / rel, rel + " v2")
            with pytest.raises(OutputExists, match="'src/b.c'"):
                out.commit(stage, {})
    assert (tmp_path / "a.c").read_text() == "a.c"  # nothing moved
    assert (tmp_path / "old.c").exists() and not (tmp_path / "new.c").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".mnmcu")]

    (tmp_path / "src" / "b.c").write_text("src/b.c")  # the edit undone
    with output_folder(tmp_path, True, "mnmcu emit", manifest=manifest) as out:
        with out.staging() as stage:
            for rel in ("a.c", "src/b.c", "new.c"):
                write_file(stage / rel, rel + " v2")
            out.commit(stage, {"board": "x"})
    assert (tmp_path / "a.c").read_text() == "a.c v2"
    assert not (tmp_path / "old.c").exists()
    data = json.loads((tmp_path / manifest).read_text())
    assert data["files"] == ["a.c", manifest, "new.c", "src/b.c"]
    assert data["board"] == "x" and "previous_sha256" not in data


def test_a_symlinked_lock_file_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.txt"
    target.write_text("precious")
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / LOCK_FILE).symlink_to(target)
    with pytest.raises(OutputExists, match="cannot lock"), output_folder(folder, True, "x"):
        pass
    assert target.read_text() == "precious"
