"""The results folder's history: one record per run, newest N kept, one previous model."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from analysis.constants import MODEL_FILE, RESULTS_FILE
from analysis.shell.history import carry_history, records_of


def fake_run(folder: Path, minute: int, fingerprint: str = "abc") -> None:
    """A results folder as a run leaves it: results.json, tables (one per-row), a model."""
    (folder / "tables").mkdir(parents=True)
    summary = {"created": f"2026-01-01T10:{minute:02d}:00+00:00", "cache_key": "k" * 32,
               "data": {"fingerprint": fingerprint}}
    (folder / RESULTS_FILE).write_text(json.dumps(summary))
    (folder / "tables" / "comparison.parquet").write_bytes(b"small")
    (folder / "tables" / "labels_population.parquet").write_bytes(b"per row")
    (folder / MODEL_FILE).write_bytes(f"model {minute}".encode())


def test_history_keeps_the_newest_records_and_the_previous_model(tmp_path):
    out = tmp_path / "_results"
    for minute in range(5):
        work = tmp_path / f"work{minute}"
        fake_run(work, minute)
        carry_history(out, work, keep=3)
        if out.exists():
            shutil.rmtree(out)
        work.rename(out)  # what atomic_folder's swap does
    records = records_of(out / "history")
    assert records == ["2026-01-01T100200Z-abc", "2026-01-01T100300Z-abc", "2026-01-01T100400Z-abc"]
    newest = out / "history" / records[-1]
    assert (newest / "tables" / "comparison.parquet").is_file()
    assert not (newest / "tables" / "labels_population.parquet").exists()  # no per-row labels
    models = sorted(p.parent.name for p in (out / "history").glob(f"*/{MODEL_FILE}"))
    assert models == [records[-2]]  # only the latest previous run's model
    assert (out / "history" / records[-2] / MODEL_FILE).read_bytes() == b"model 3"


def test_first_run_gets_a_record_too(tmp_path):
    work = tmp_path / "work"
    fake_run(work, 0, "f00")
    record = carry_history(tmp_path / "_results", work, keep=12)
    assert record.name == "2026-01-01T100000Z-f00" and (record / RESULTS_FILE).is_file()
    assert not (record / MODEL_FILE).exists()
