"""One run at a time per output folder, and the clean-up after runs that were killed.

Two analysts, or a scheduled job and a person, may run ``segments`` on the same results
folder or site at once. :func:`claim_folder` takes a lock file beside the folder
(``.NAME.lock``, holding the process id, host, start time and command) for as long as the
run writes it. A second run waits up to ``SEGMENTS_LOCK_WAIT`` seconds (default 30), saying
whom it waits for, then stops with a message naming the other run. A lock whose process is
gone (same host) is stale: it is taken over with a message.

Once the folder is ours, temporary folders left by a killed run (``.NAME.new-*``,
``.NAME.old-*``, and the same inside the folder, e.g. a history sub-folder) are removed, but
only those carrying this tool's marker file; previous results caught in the middle of a swap
are put back first.

A lock file is used rather than ``fcntl``/``filelock`` because the message must name the
other run and its host, which an OS lock does not record.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from analysis.errors import BusyError
from analysis.shell.store import MARKER, write_failure

WAIT_ENV = "SEGMENTS_LOCK_WAIT"
DEFAULT_WAIT = 30.0
POLL = 0.2


def lock_path(target: Path) -> Path:
    return Path(target).parent / f".{Path(target).name}.lock"


def _warn(message: str) -> None:
    """Shown even with --quiet: the user should know another run's files were touched."""
    print(f"segments: note: {message}", file=sys.stderr, flush=True)


@contextmanager
def claim_folder(target: Path, say: Callable[[str], None] = _warn, wait: float | None = None) -> Iterator[None]:
    """Hold the lock on ``target`` for the block, after removing leftovers of killed runs."""
    target = Path(target)
    wait = _wait_seconds() if wait is None else wait
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        mine = _acquire(target, wait, say)
    except OSError as err:  # a read-only or full folder: say so before any work is done
        raise write_failure(err, target, 0) or err
    try:
        remove_leftovers(target)
        yield
    finally:
        _release(lock_path(target), mine)


def _wait_seconds() -> float:
    text = os.environ.get(WAIT_ENV)
    try:
        return max(0.0, float(text)) if text else DEFAULT_WAIT
    except ValueError:
        return DEFAULT_WAIT


def _process_start(pid: int) -> str | None:
    """When process ``pid`` started (Linux: clock ticks since boot), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _me() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(), "process_start": _process_start(os.getpid()),
            "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(["segments", *sys.argv[1:]]), "token": secrets.token_hex(8)}


def _acquire(target: Path, wait: float, say: Callable[[str], None]) -> dict:
    path, mine = lock_path(target), _me()
    deadline, announced = time.monotonic() + wait, False
    while True:
        if _create(path, mine):
            return mine
        holder = _read(path)
        if holder is None:  # vanished, or being written this instant: look again
            time.sleep(POLL / 4)
            holder = _read(path)
            if holder is None:
                continue
        if is_stale(holder):
            if _read(path) == holder:
                path.unlink(missing_ok=True)
                say(f"took over the lock on {target} left by {describe(holder)}, which is no longer "
                    "running (it was probably killed)")
            continue
        if time.monotonic() >= deadline:
            raise BusyError(
                f"another segments run is writing {target}: {describe(holder)}. This run stopped "
                f"without touching it", hint=f"Wait for that run to finish and start this one again "
                f"(or set {WAIT_ENV} to wait longer than {wait:g} s); if that run is gone and its host "
                f"is down, delete the lock file {path}")
        if not announced:
            say(f"waiting up to {wait:g} s for {describe(holder)}, which is writing {target}")
            announced = True
        time.sleep(min(POLL, max(0.0, deadline - time.monotonic())))


def describe(holder: dict) -> str:
    """The other run as a person reads it: process, host, start time and command."""
    return (f"process {holder.get('pid', '?')} on host {holder.get('host', '?')}, started "
            f"{holder.get('started', '?')} ({holder.get('command', 'segments')})")


def _create(path: Path, info: dict) -> bool:
    """Create the lock file with its content in one step (write a private file, then hard-link it)."""
    private = path.with_name(f"{path.name}.{info['token']}")
    private.write_text(json.dumps(info), encoding="utf-8")
    try:
        os.link(private, path)
        return True
    except FileExistsError:
        return False
    finally:
        private.unlink(missing_ok=True)


def _read(path: Path) -> dict | None:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def is_stale(holder: dict) -> bool:
    """True when the holder ran on this host and its process is gone (or its pid now names another process).

    A lock from another host cannot be checked from here; it is never taken over.
    """
    if holder.get("host") != socket.gethostname():
        return False
    try:
        pid = int(holder["pid"])
        os.kill(pid, 0)
    except (KeyError, TypeError, ValueError):
        return False
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, another user's
    started = holder.get("process_start")
    return started is not None and _process_start(pid) not in (None, started)


def _release(path: Path, mine: dict) -> None:
    if (_read(path) or {}).get("token") == mine["token"]:
        path.unlink(missing_ok=True)


def remove_leftovers(target: Path) -> None:
    """Remove this tool's temporary folders left by a killed run, beside ``target`` and inside it."""
    target = Path(target)
    _restore_interrupted_swap(target)
    places = [(target.parent, f".{target.name}.")]
    if target.is_dir():
        places.append((target, "."))
    for folder, prefix in places:
        for kind in ("new", "old"):
            for leftover in sorted(folder.glob(f"{prefix}*{kind}-*" if prefix == "." else f"{prefix}{kind}-*")):
                if _abandoned(leftover):
                    shutil.rmtree(leftover, ignore_errors=True)
                    _warn(f"removed {leftover}, a temporary folder left by an interrupted run")


def _abandoned(folder: Path) -> bool:
    """Only folders with this tool's marker, whose writer is gone (or is on no host we can check)."""
    marker = folder / MARKER
    if not folder.is_dir() or not marker.is_file():
        return False
    info = _read(marker) or {}
    return info.get("pid") != os.getpid() and (info.get("host") != socket.gethostname() or is_stale(info))


def _restore_interrupted_swap(target: Path) -> None:
    """A run killed between the two renames of a swap left the previous version in ``.NAME.old-*``."""
    if target.exists():
        return
    for old in sorted(target.parent.glob(f".{target.name}.old-*")):
        kept = old / target.name
        if _abandoned(old) and kept.is_dir():
            os.replace(kept, target)
            _warn(f"put back the previous {target} from {old}, left by a run interrupted while replacing it")
            return
