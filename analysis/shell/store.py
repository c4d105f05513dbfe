"""Fingerprints, cache keys and all-or-nothing writes of a results folder.

A results folder is built in a temporary sibling folder and swapped in with renames, so a
failed or interrupted run leaves the previous results untouched and never half-written.
"""
from __future__ import annotations

import datetime as dt
import errno
import hashlib
import json
import os
import shutil
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from analysis.errors import InputError, WriteError
from analysis.threads import cores, each

CHUNK = 8 << 20
# The files whose code decides the results: the analysis parts of docs/architecture.md and the
# modules they import. ``results.py``, ``present/`` (with its templates), ``report/``, the shell and
# the demo generator (its output is fingerprinted as data) are left out, so rewording a page or
# changing a chart never forces a re-analysis.
ANALYSIS_CODE = ("__init__.py", "constants.py", "errors.py", "settings.py", "pipeline.py", "refresh.py",
                 "assemble.py",
                 "inputs/*.py", "prepare/*.py", "segment/*.py", "compare/*.py", "profile/*.py", "target/*.py",
                 "engine/*.py", "data/*")
PACKAGE = Path(__file__).parents[1]


def file_fingerprint(path: Path) -> dict[str, Any]:
    """Content hash (BLAKE2b, fast on large files) and size of one input file.

    Read into one reused buffer: a fresh 8 MiB block per read cost the population file (236 MB)
    about 8,000 page faults each time it was hashed.
    """
    digest = hashlib.blake2b(digest_size=16)
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as fh:
        while size := fh.readinto(buffer):
            digest.update(view[:size])
    return {"path": str(path), "bytes": path.stat().st_size, "blake2b": digest.hexdigest()}


def file_fingerprints(paths: dict[str, Path], workers: int | None = None) -> dict[str, dict[str, Any]]:
    """:func:`file_fingerprint` of each file (by role), the files hashed side by side.

    One BLAKE2b stream cannot be split without changing the hash (and with it every stored
    history and cache key), but hashlib releases the GIL while it hashes a block, so the
    customers file is hashed on a second core while the population file is (``workers``
    threads, default one per core). Both full-size files (236 + 47 MB, in the page cache):
    0.67-0.69 s one after the other, 0.48-0.53 s side by side (load 3.0). Where a run shows more
    wall time than CPU time for this stage, the process was waiting for a core (involuntary
    context switches), not for the disk (no major page faults); the code hash takes 9 ms.
    """
    return dict(zip(paths, each(file_fingerprint, paths.values(), min(workers or cores(), len(paths)))))


def code_fingerprint(package: Path = PACKAGE) -> str:
    """Hash of the package's analysis code and data files (:data:`ANALYSIS_CODE`).

    The version number alone would serve stale results to anyone running from a source
    checkout whose code changed without a version bump.
    """
    digest = hashlib.blake2b(digest_size=16)
    for path in sorted(path for pattern in ANALYSIS_CODE for path in package.glob(pattern)):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def cache_key(*parts: Any) -> str:
    """A stable hash of JSON-serialisable parts (fingerprints, settings, version)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def file_stats(paths: dict[str, Path]) -> dict[str, tuple[int, int]]:
    """Size and modification time (ns) of each file: a cheap check that it has not changed since."""
    return {role: (path.stat().st_size, path.stat().st_mtime_ns) for role, path in paths.items()}


def check_unchanged(paths: dict[str, Path], stats: dict[str, tuple[int, int]], fingerprints: dict[str, dict]) -> None:
    """Stop if an input changed while the run read it: its results would match neither version.

    Size and modification time are compared first; a file whose stat changed is hashed again,
    so touching a file without changing it does not stop the run.
    """
    for role, path in paths.items():
        try:
            if file_stats({role: path})[role] == stats[role]:
                continue
            changed = file_fingerprint(path)["blake2b"] != fingerprints[role]["blake2b"]
        except OSError:
            changed = True  # removed or replaced while the run read it
        if changed:
            raise InputError("the file changed while the analysis was reading it (a new export being "
                             "written, or someone editing it)", path=path,
                             hint="Run again once the file is complete; results from a mix of two versions "
                                  "of the file were not kept")


# Marker inside this tool's temporary folders: only folders carrying it are ever removed as leftovers.
MARKER = ".segments-temporary"


def mark_temporary(folder: Path) -> None:
    """Record which process made ``folder`` (pid, host, start) so a later run can tell it is abandoned."""
    info = {"pid": os.getpid(), "host": socket.gethostname(),
            "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    (folder / MARKER).write_text(json.dumps(info), encoding="utf-8")


@contextmanager
def atomic_folder(target: Path) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces ``target`` in one step, on failure it vanishes.

    A full disk, a read-only file system or a denied permission becomes a :class:`WriteError`
    naming the folder, the space needed and the space free.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent))
        mark_temporary(work)
    except OSError as err:
        if "work" in locals():
            shutil.rmtree(work, ignore_errors=True)
        raise write_failure(err, target, 0) or err
    try:
        yield work
        (work / MARKER).unlink(missing_ok=True)
        _swap(work, target)
    except OSError as err:
        written = folder_bytes(work)
        shutil.rmtree(work, ignore_errors=True)
        failure = write_failure(err, target, written)
        if failure is None:
            raise
        raise failure from err
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


# Errors that mean "this folder cannot take the files", with the words the message uses.
WRITE_ERRNOS = {errno.ENOSPC: "no space is left on the device", errno.EDQUOT: "the disk quota is exceeded",
                errno.EROFS: "the file system is read-only", errno.EACCES: "permission to write is denied",
                errno.EPERM: "the operation is not permitted"}


def write_failure(err: OSError, target: Path, written: int) -> WriteError | None:
    """A clear error for a write that failed for lack of space or permission, or None for other errors.

    Permission errors count only when they concern the output's folder (not an input file).
    Libraries that do not set ``errno`` (pyarrow) are recognised by the system's message.
    """
    code = err.errno if err.errno in WRITE_ERRNOS else next(
        (c for c in WRITE_ERRNOS if os.strerror(c) in str(err)), None)
    if code is None:
        return None
    if code in (errno.EACCES, errno.EPERM):
        names = [n for n in (err.filename, getattr(err, "filename2", None)) if n is not None]
        parent = str(Path(target).parent.resolve())
        if names and not any(str(Path(str(n)).resolve()).startswith(parent) for n in names):
            return None
    folder = Path(target).parent
    previous = folder_bytes(Path(target)) if Path(target).exists() else 0
    try:
        free = f"{_size(shutil.disk_usage(_existing(folder)).free)} are free there"
    except OSError:
        free = "the free space could not be read"
    needed = max(written, previous)
    space = (f"It needs at least {_size(needed)} (" +
             (f"the previous version takes {_size(previous)}; " if previous else "") +
             f"{_size(written)} had been written when it failed); {free}")
    return WriteError(f"cannot write {target}: {WRITE_ERRNOS[code]} ({errno.errorcode[code]}) in {folder}. "
                      f"{space}. Nothing was half-written and the temporary files were removed",
                      hint="Free some space or make the folder writable, or choose another folder")


def folder_bytes(folder: Path) -> int:
    """Bytes of the files in ``folder`` (0 if it is gone)."""
    if Path(folder).is_file():
        return Path(folder).stat().st_size
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def _existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _size(count: int) -> str:
    return f"{count / 1e6:,.1f} MB" if count >= 100_000 else f"{count / 1e3:,.1f} kB"


def _swap(work: Path, target: Path) -> None:
    if not target.exists():
        os.replace(work, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    mark_temporary(old)
    os.replace(target, old / target.name)
    try:
        os.replace(work, target)
    except BaseException:
        os.replace(old / target.name, target)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


def write_json(path: Path, data: Any) -> None:
    """Strict JSON: NaN and infinities are refused (write null with a reason instead)."""
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False, default=_plain),
                    encoding="utf-8")


def _plain(value: Any) -> Any:
    """numpy scalars and paths in JSON."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)


@contextmanager
def atomic_file(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; it becomes ``target`` only if the block succeeds."""
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as err:
        raise write_failure(err, target, 0) or err
    os.close(handle)
    work = Path(name)
    try:
        yield work
        os.replace(work, target)
    except OSError as err:
        written = work.stat().st_size if work.exists() else 0
        work.unlink(missing_ok=True)
        failure = write_failure(err, target, written)
        if failure is None:
            raise
        raise failure from err
    except BaseException:
        work.unlink(missing_ok=True)
        raise
