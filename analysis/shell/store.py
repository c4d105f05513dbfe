"""Fingerprints, cache keys and all-or-nothing writes of a results folder.

A results folder is built in a temporary sibling folder and swapped in with renames, so a
failed or interrupted run leaves the previous results untouched and never half-written.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

CHUNK = 8 << 20
# The parts whose code decides the results. The presentation layer, the shell and the demo
# generator (its output is fingerprinted as data) are left out by where they live, so rewording
# a page or changing a chart never forces a re-analysis.
ANALYSIS_CODE = ("*.py", "inputs/*.py", "prepare/*.py", "segment/*.py", "compare/*.py", "profile/*.py",
                 "target/*.py", "data/*")


def file_fingerprint(path: Path) -> dict[str, Any]:
    """Content hash (BLAKE2b, fast on large files) and size of one input file."""
    digest = hashlib.blake2b(digest_size=16)
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return {"path": str(path), "bytes": path.stat().st_size, "blake2b": digest.hexdigest()}


def code_fingerprint() -> str:
    """Hash of the package's own source and data files.

    The version number alone would serve stale results to anyone running from a source
    checkout whose code changed without a version bump.
    """
    package = Path(__file__).parents[1]
    digest = hashlib.blake2b(digest_size=16)
    for path in sorted(path for pattern in ANALYSIS_CODE for path in package.glob(pattern)):
        if path.name == "results.py":  # reading results, not making them
            continue
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def cache_key(*parts: Any) -> str:
    """A stable hash of JSON-serialisable parts (fingerprints, settings, version)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


@contextmanager
def atomic_folder(target: Path) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces ``target`` in one step, on failure it vanishes."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent))
    try:
        yield work
        _swap(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _swap(work: Path, target: Path) -> None:
    if not target.exists():
        os.replace(work, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.replace(target, old / target.name)
    try:
        os.replace(work, target)
    except BaseException:
        os.replace(old / target.name, target)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=_plain), encoding="utf-8")


def _plain(value: Any) -> Any:
    """numpy scalars and paths in JSON."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)


@contextmanager
def atomic_file(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; it becomes ``target`` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    work = Path(name)
    try:
        yield work
        os.replace(work, target)
    except BaseException:
        work.unlink(missing_ok=True)
        raise
