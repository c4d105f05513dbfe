"""The results folder's history: a compact record of every completed run, newest ``keep`` kept.

``<results>/history/<date>-<fingerprint>/`` holds the run's results.json and its small tables
(not the per-row labels). The model of the latest *previous* run is kept in its record too, so
a later ``--keep-model`` run or a comparison can still use it after a refit replaced the current one.

The history is written into the new results folder before it is swapped in
(:func:`analysis.shell.store.atomic_folder`), so an interrupted run leaves the previous results
and history exactly as they were.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from analysis.constants import HISTORY_FOLDER, MODEL_FILE, RESULTS_FILE, TABLES_FOLDER

PER_ROW_TABLES = ("labels_population", "labels_customers")


def record_name(summary: dict) -> str:
    """``2026-11-29T031512Z-1a2b3c4d5e``: sorts by time; the data fingerprint tells deliveries apart."""
    created = summary["created"].replace("+00:00", "Z").replace(":", "")
    return f"{created}-{summary['data'].get('fingerprint', summary['cache_key'][:10])}"


def carry_history(previous: Path, work: Path, keep: int) -> Path:
    """Build ``work/history``: the previous folder's history, this run's record, pruned to ``keep``.

    Returns the new run's record folder. The previous run's model is copied into its record and
    dropped from older ones: the history holds one model, the latest previous one.
    """
    history = work / HISTORY_FOLDER
    if (previous / HISTORY_FOLDER).is_dir():
        shutil.copytree(previous / HISTORY_FOLDER, history)
    history.mkdir(exist_ok=True)
    for model in history.glob(f"*/{MODEL_FILE}"):
        model.unlink()
    prior = _summary(previous)
    if prior is not None and (previous / MODEL_FILE).is_file():
        record = history / record_name(prior)
        if not record.is_dir():  # a results folder written before histories existed
            _write_record(previous, record)
        shutil.copy2(previous / MODEL_FILE, record / MODEL_FILE)
    current = history / record_name(_summary(work))
    if current.exists():
        shutil.rmtree(current)
    _write_record(work, current)
    prune(history, keep)
    return current


def _write_record(folder: Path, record: Path) -> None:
    (record / TABLES_FOLDER).mkdir(parents=True)
    shutil.copy2(folder / RESULTS_FILE, record / RESULTS_FILE)
    for table in sorted((folder / TABLES_FOLDER).glob("*.parquet")):
        if table.stem not in PER_ROW_TABLES:
            shutil.copy2(table, record / TABLES_FOLDER / table.name)


def prune(history: Path, keep: int) -> list[str]:
    """Delete all but the newest ``keep`` records; returns the names deleted."""
    records = records_of(history)
    gone = records[: max(len(records) - keep, 0)]
    for name in gone:
        shutil.rmtree(history / name)
    return gone


def records_of(history: Path) -> list[str]:
    """Record names, oldest first."""
    if not history.is_dir():
        return []
    return sorted(p.name for p in history.iterdir() if p.is_dir() and (p / RESULTS_FILE).is_file())


def _summary(folder: Path) -> dict | None:
    try:
        return json.loads((folder / RESULTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
