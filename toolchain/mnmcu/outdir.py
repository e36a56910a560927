"""Folders mnmcu writes into: one command at a time, atomic files, a careful ``--force``.

Every command that writes into a folder (``model``, ``train``, ``quantize``,
``build``, ``emit``, ``verify --keep``, ``hil``, ``sim --simulator renode``)
opens it with :func:`output_folder`:

* **Lock.** The folder is locked for the command's duration with
  ``fcntl.flock`` on ``.mnmcu.lock`` inside it, which holds the pid, the
  command and its start time. A second command fails at once naming them
  (:class:`~mnmcu.errors.OutputBusy`). The kernel releases a lock when its
  process dies, so the lock of a crashed or killed command is taken over by
  the next one. Within one process the lock is re-entrant (``build`` runs
  ``model``, ``quantize`` and ``emit`` on folders it holds).
* **Atomic files.** Every file goes to a temporary file in the same folder
  and is renamed over its target (:func:`write_file`), so a reader or an
  interrupted command never leaves half a file.
* **Records.** The folder's manifest (``mnmcu_files.json``; a project's
  ``mnmcu_project.json``) records each file mnmcu wrote with its SHA-256.
  A manifest that is not mnmcu's, or names a path outside the folder, is
  refused before anything changes.
* **``--force``** writes over or deletes only files the manifest records
  and whose content is unchanged. Before anything changes, every file the
  command would write is checked: one that exists but is not an unchanged
  mnmcu file (the user's, or a generated file the user edited) makes the
  command refuse, listing them all. A recorded file the user changed that
  the command would otherwise delete is kept and named in a warning.
* **Failures.** Folders the failed command created are removed again when
  they are empty; nothing else is.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from mnmcu import __version__
from mnmcu.errors import MnmcuError, OutputBusy, OutputExists
from mnmcu.escape import describe, visible
from mnmcu.log import logger

LOCK_FILE = ".mnmcu.lock"
FILES_MANIFEST = "mnmcu_files.json"
STAGING_PREFIX = ".mnmcu-staging-"
_TEMP_PREFIX = ".mnmcu-tmp-"
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


# --- atomic writes ----------------------------------------------------------------------


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def replacing(path: Path, suffix: str = "") -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer; renamed over ``path`` when the block ends.

    ``suffix`` ends the temporary name (Keras wants ``.keras``). If the block
    fails, the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(
            prefix=f"{_TEMP_PREFIX}{path.name}.", suffix=suffix, dir=path.parent
        )
    except OSError as exc:
        raise MnmcuError(
            f"cannot write {path} ({exc.strerror or exc})", "check the folder and its permissions"
        ) from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, _FILE_MODE)
        try:
            os.replace(tmp, path)
        except IsADirectoryError:
            raise OutputExists(f"cannot write {path}: it is a folder") from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_file(path: Path, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` atomically: a temporary file, then a rename."""
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    with replacing(Path(path)) as tmp:
        tmp.write_bytes(raw)
    return Path(path)


def json_text(data: Any) -> str:
    """The JSON mnmcu writes: indented, keys sorted, one trailing newline."""
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


# --- the lock ---------------------------------------------------------------------------

_HELD: dict[Path, list[int]] = {}  # folder -> [lock file descriptor, depth]


def _holder(lock: Path) -> str:
    try:
        info = json.loads(lock.read_text(encoding="utf-8"))
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(info["started"])))
        return f"{visible(str(info['command']))} (pid {int(info['pid'])}, started {started})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another mnmcu command"


def _acquire(folder: Path, command: str, option: str) -> None:
    held = _HELD.get(folder)
    if held is not None:
        held[1] += 1
        return
    lock = folder / LOCK_FILE
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, _FILE_MODE)
        except OSError as exc:
            raise OutputExists(
                f"cannot lock output folder {folder}: {lock.name} cannot be opened "
                f"({exc.strerror or exc})",
                f"check the folder's permissions, or choose another {option}",
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise OutputBusy(
                f"output folder {folder} is in use by {_holder(lock)}",
                f"wait for it to finish, or choose another {option}",
            ) from None
        # The holder before us may have removed the file as it released it:
        # then our lock is on a file nobody else sees, so start again.
        mine = os.fstat(fd)
        try:
            there = os.stat(lock, follow_symlinks=False)
        except FileNotFoundError:
            there = None
        if there is not None and (there.st_ino, there.st_dev) == (mine.st_ino, mine.st_dev):
            break
        os.close(fd)
    record = {"pid": os.getpid(), "command": command, "started": time.time()}
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps(record).encode())
    _HELD[folder] = [fd, 1]


def _release(folder: Path) -> None:
    held = _HELD[folder]
    held[1] -= 1
    if held[1]:
        return
    del _HELD[folder]
    with contextlib.suppress(FileNotFoundError):
        (folder / LOCK_FILE).unlink()  # still locked here, so nobody else uses it
    os.close(held[0])


def is_locked_here(folder: Path) -> bool:
    """True when this process holds the lock of ``folder``."""
    return Path(folder).resolve() in _HELD


# --- manifests --------------------------------------------------------------------------


@dataclass
class Manifest:
    """What a folder's manifest says mnmcu wrote: relative path -> acceptable SHA-256s.

    A file without a recorded hash (a manifest of an older mnmcu) is never
    taken for unchanged.
    """

    path: Path
    data: dict[str, Any]
    hashes: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def unchanged(self, folder: Path, rel: str) -> bool:
        """True when ``rel`` exists, is a regular file and has a hash this manifest records."""
        target = folder / rel
        if target.is_symlink() or not target.is_file():
            return False
        known = self.hashes.get(rel, ())
        return bool(known) and sha256_of(target) in known


def _refuse_manifest(path: Path, reason: str, option: str) -> OutputExists:
    return OutputExists(
        f"{path} is not a manifest mnmcu wrote ({reason}); nothing was changed",
        f"move the folder's files away yourself, or choose another {option}",
    )


def check_relative(folder: Path, rel: str) -> str:
    """``rel`` if it is a plain relative path inside ``folder`` (no ``..``, no symlink out)."""
    pure = PurePosixPath(rel)
    if (
        not rel
        or not rel.isprintable()
        or "\\" in rel
        or pure.is_absolute()
        or pure.as_posix() != rel
        or any(part in ("", ".", "..") for part in pure.parts)
    ):
        raise ValueError(f"path {describe(rel)} is not a plain path inside the folder")
    resolved = (folder / rel).resolve()
    if not resolved.is_relative_to(folder.resolve()):
        raise ValueError(f"path {describe(rel)} leads outside the folder")
    return rel


def read_manifest(folder: Path, name: str, option: str = "--out") -> Manifest | None:
    """The manifest ``name`` of ``folder``, checked; ``None`` if there is none.

    Raises :class:`OutputExists` when it is not mnmcu's (not JSON, no
    ``generator: mnmcu ...``) or names a path outside the folder.
    """
    path = folder / name
    if not path.exists() and not path.is_symlink():
        return None
    if path.is_symlink() or not path.is_file():
        raise _refuse_manifest(path, "not a regular file", option)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _refuse_manifest(path, f"unreadable: {visible(str(exc))}", option) from None
    if not isinstance(data, dict) or not str(data.get("generator", "")).startswith("mnmcu "):
        raise _refuse_manifest(path, "no 'generator: mnmcu ...' entry", option)
    files = data.get("files", [])
    current = data.get("sha256", {})
    previous = data.get("previous_sha256", {})
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise _refuse_manifest(path, "'files' is not a list of paths", option)
    hashes: dict[str, tuple[str, ...]] = {rel: () for rel in files}
    for table in (current, previous):
        if not isinstance(table, dict) or not all(
            isinstance(v, str) and _SHA256.fullmatch(v) for v in table.values()
        ):
            raise _refuse_manifest(path, "its SHA-256 table is malformed", option)
        for rel, digest in table.items():
            hashes[rel] = (*hashes.get(rel, ()), digest)
    try:
        for rel in hashes:
            check_relative(folder, str(rel))
    except ValueError as exc:
        raise _refuse_manifest(path, str(exc), option) from None
    return Manifest(path=path, data=data, hashes=hashes)


def manifest_data(
    name: str, files: dict[str, str], extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON of manifest ``name``: the generator, the files (itself too) and their SHA-256."""
    data = {"generator": f"mnmcu {__version__}", **(extra or {})}
    data["files"] = sorted({*files, name})
    data["sha256"] = {rel: files[rel] for rel in sorted(files)}
    return data


# --- the folder ---------------------------------------------------------------------------


def _visible_entries(folder: Path) -> list[str]:
    return sorted(
        p.name
        for p in folder.iterdir()
        if p.name != LOCK_FILE and not p.name.startswith((STAGING_PREFIX, _TEMP_PREFIX))
    )


@dataclass
class OutputFolder:
    """An output folder a command holds: see the module docstring.

    Obtain one with :func:`output_folder`. The manifest is read again for
    every check (the folder is locked, and commands nested in one process,
    such as ``build`` running ``quantize``, update it in turn).
    """

    path: Path
    force: bool
    manifest_name: str
    option: str
    own_outputs: bool = False
    written: dict[str, str] = field(default_factory=dict)

    def manifest(self) -> Manifest | None:
        """The folder's manifest as it is now (checked, see :func:`read_manifest`)."""
        return read_manifest(self.path, self.manifest_name, self.option)

    # -- checks before anything changes

    def problems(self, rels: Iterable[str]) -> list[str]:
        """Those of ``rels`` that exist but are not unchanged files mnmcu recorded here."""
        manifest = self.manifest()
        bad = []
        for rel in rels:
            target = self.path / rel
            if rel == self.manifest_name or rel in self.written:
                continue
            if self._blocked_parent(rel) or target.is_symlink():
                bad.append(rel)
            elif not target.exists():
                continue
            elif not target.is_file():
                bad.append(rel)
            elif self.own_outputs:
                continue
            elif manifest is None or not manifest.unchanged(self.path, rel):
                bad.append(rel)
        return bad

    def _blocked_parent(self, rel: str) -> bool:
        parent = self.path
        for part in PurePosixPath(rel).parts[:-1]:
            parent = parent / part
            if parent.is_symlink() or (parent.exists() and not parent.is_dir()):
                return True
        return False

    def check_writable(self, rels: Iterable[str]) -> None:
        """Refuse, listing them, when any of ``rels`` would overwrite a file that is not mnmcu's.

        Existing files count as mnmcu's when this folder's manifest records
        them with their current SHA-256 (or this command wrote them).
        """
        bad = self.problems(rels)
        if bad:
            shown = ", ".join(describe(b, 60) for b in bad[:6]) + (", ..." if len(bad) > 6 else "")
            unrecorded = self.manifest() is None
            raise OutputExists(
                f"{self.path} holds files mnmcu did not write or that changed since it "
                f"wrote them: {shown}; nothing was changed",
                "move them away (or delete them) and run again, or choose another "
                + self.option
                + (
                    f" (the folder has no {self.manifest_name}: it was not written by mnmcu, "
                    "or by a version that kept no record of its files)"
                    if unrecorded
                    else ""
                ),
            )

    # -- writing

    def write(self, rel: str, data: str | bytes) -> Path:
        """Write ``rel`` atomically (after :meth:`check_writable`) and record its SHA-256."""
        self.check_writable([rel])
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        target = write_file(self.path / rel, raw)
        self.written[rel] = sha256_bytes(raw)
        return target

    def write_json(self, rel: str, data: Any) -> Path:
        """:meth:`write` of ``data`` as mnmcu's JSON."""
        return self.write(rel, json_text(data))

    def write_with(self, rel: str, writer: Callable[[Path], object], suffix: str = "") -> Path:
        """Let ``writer`` write a temporary path, then rename it over ``rel`` and record it."""
        self.check_writable([rel])
        target = self.path / rel
        with replacing(target, suffix) as tmp:
            writer(tmp)
        self.written[rel] = sha256_of(target)
        return target

    def remove_stale(self, rels: Iterable[str], manifest: Manifest | None = None) -> list[str]:
        """Delete those of ``rels`` that are unchanged files mnmcu recorded; warn about the rest.

        ``manifest`` is the record to judge by (default: the folder's, read
        now). Returns the paths deleted.
        """
        if manifest is None:
            manifest = self.manifest()
        removed = []
        for rel in rels:
            target = self.path / rel
            if rel in self.written or not (target.exists() or target.is_symlink()):
                continue
            if manifest is not None and manifest.unchanged(self.path, rel):
                target.unlink()
                removed.append(rel)
            else:
                logger.warning(
                    "kept %s: mnmcu did not write it, or it changed since mnmcu wrote it",
                    target,
                )
        return removed

    def save_manifest(self, extra: dict[str, Any] | None = None) -> None:
        """Record the files written, and those recorded earlier that are still unchanged."""
        manifest = self.manifest()
        files = {}
        if manifest is not None:
            for rel, hashes in manifest.hashes.items():
                target = self.path / rel
                if hashes and not target.is_symlink() and target.is_file():
                    digest = sha256_of(target)
                    if digest in hashes:
                        files[rel] = digest
        files.update(self.written)
        files.pop(self.manifest_name, None)
        write_file(
            self.path / self.manifest_name,
            json_text(manifest_data(self.manifest_name, files, extra)),
        )

    # -- a whole tree at once (projects)

    @contextlib.contextmanager
    def staging(self) -> Iterator[Path]:
        """A private folder inside this one to generate a tree into before :meth:`commit`."""
        stage = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=self.path))
        try:
            yield stage
        finally:
            shutil.rmtree(stage, ignore_errors=True)

    def commit(self, stage: Path, manifest_extra: dict[str, Any]) -> dict[str, str]:
        """Move the tree in ``stage`` into the folder; return its files and their SHA-256.

        Before anything changes, every file of the tree must be absent or an
        unchanged file of the old manifest (else :meth:`check_writable`
        refuses, naming them). Then the old manifest's unchanged files the
        new tree lacks are deleted (changed ones are kept, with a warning),
        the manifest is written recording the old and the new hashes while
        the files move, the files move in (one rename each), and the
        manifest is written again with the new hashes only.
        """
        new = {
            p.relative_to(stage).as_posix(): sha256_of(p)
            for p in sorted(stage.rglob("*"))
            if p.is_file() and not p.is_symlink()
        }
        new.pop(self.manifest_name, None)
        self.check_writable(new)
        manifest = self.manifest()
        old = manifest.hashes if manifest is not None else {}
        stale = [rel for rel in old if rel not in new and rel != self.manifest_name]
        moving = manifest_data(self.manifest_name, new, manifest_extra)
        moving["previous_sha256"] = {rel: h[-1] for rel, h in sorted(old.items()) if h}
        write_file(self.path / self.manifest_name, json_text(moving))
        removed = self.remove_stale(stale, manifest)
        for rel in new:
            target = self.path / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(stage / rel, target)
        write_file(
            self.path / self.manifest_name,
            json_text(manifest_data(self.manifest_name, new, manifest_extra)),
        )
        self.written.update(new)
        self._remove_empty_dirs(removed)
        return new

    def _remove_empty_dirs(self, rels: Iterable[str]) -> None:
        for rel in sorted(rels, key=lambda r: -r.count("/")):
            parent = (self.path / rel).parent
            while parent != self.path and parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent


def _created_dirs(path: Path) -> list[Path]:
    """The folders ``mkdir(parents=True)`` of ``path`` creates, outermost first."""
    missing = []
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            break
        missing.append(candidate)
    return list(reversed(missing))


@contextlib.contextmanager
def output_folder(
    path: Path,
    force: bool,
    command: str,
    manifest: str = FILES_MANIFEST,
    option: str = "--out",
    exists_ok: bool = False,
) -> Iterator[OutputFolder]:
    """Hold ``path`` as the output folder of ``command`` (e.g. ``"mnmcu emit"``).

    Creates it, locks it (:class:`~mnmcu.errors.OutputBusy` if another
    command holds it) and reads its manifest (refusing one that is not
    mnmcu's). A folder that holds files is refused unless ``force`` or
    ``exists_ok`` (a command that rewrites its own outputs in its own
    folder, e.g. ``quantize``); ``force`` never allows writing over a file
    that is not an unchanged one mnmcu recorded (see
    :meth:`OutputFolder.check_writable`).
    ``option`` is the command-line option that names the folder, for
    messages. If the block fails, the folders created here are removed
    again when they are empty.
    """
    path = Path(path)
    if path.is_symlink() and not path.is_dir():
        raise OutputExists(
            f"output {path} is a broken symbolic link", f"choose a folder with {option}"
        )
    if path.exists() and not path.is_dir():
        raise OutputExists(f"output {path} is a file", f"choose a folder with {option}")
    created = _created_dirs(path.absolute())
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputExists(
            f"cannot create output folder {path} ({exc.strerror or exc})",
            f"choose another {option}",
        ) from None
    folder = path.resolve()
    ok = False
    try:
        _acquire(folder, command, option)
        try:
            yield _open(folder, force, manifest, option, exists_ok)
            ok = True
        finally:
            _release(folder)
    finally:
        if not ok:
            for directory in reversed(created):
                with contextlib.suppress(OSError):
                    directory.rmdir()  # only when empty


def _open(folder: Path, force: bool, manifest: str, option: str, exists_ok: bool) -> OutputFolder:
    nested = _HELD[folder][1] > 1
    if not nested:
        for leftover in folder.iterdir():  # of a command that was killed; we hold the lock
            if leftover.name.startswith(STAGING_PREFIX) and leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            elif leftover.name.startswith(_TEMP_PREFIX) and leftover.is_file():
                leftover.unlink()
    entries = _visible_entries(folder)
    if entries and not (force or exists_ok):
        shown = ", ".join(describe(n, 40) for n in entries[:4]) + (
            ", ..." if len(entries) > 4 else ""
        )
        hint = f"choose another {option}" + (
            ", or pass --force to write over mnmcu's files there" if option == "--out" else ""
        )
        raise OutputExists(f"output folder {folder} already holds files ({shown})", hint)
    output = OutputFolder(
        path=folder, force=force, manifest_name=manifest, option=option, own_outputs=exists_ok
    )
    output.manifest()  # refuse a manifest that is not mnmcu's before anything changes
    return output
