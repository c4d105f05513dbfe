"""Read a results folder: the API the report documents (and notebooks) use.

Pages never recompute anything: they open the folder written by ``segments run`` and read the
summary and tables from it (see :func:`results_folder` for which folder). The words and
markdown the pages print are in :mod:`analysis.present.words`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd

from analysis.settings import load_settings, project_root
from analysis.errors import InputError
from analysis.constants import RESULTS_FILE, SET_ASIDE


def results_folder(path: Path | str | None = None) -> Path:
    """``path``, else the folder ``segments run`` in the project root writes to (``segments.toml``
    and ``SEGMENTS_*`` settings included, relative paths resolved from the project root), so the
    pre-render step and the pages always agree wherever Quarto runs them from."""
    if path is not None:
        return Path(path)
    return load_settings(cwd=project_root()).results


@dataclass(frozen=True)
class Results:
    """One analysis run: ``summary`` is results.json; ``table(name)`` reads tables/<name>.parquet."""

    folder: Path

    @cached_property
    def summary(self) -> dict:
        return json.loads((self.folder / RESULTS_FILE).read_text(encoding="utf-8"))

    def table(self, name: str) -> pd.DataFrame:
        return pd.read_parquet(self.folder / "tables" / f"{name}.parquet")

    @property
    def is_demo(self) -> bool:
        return self.summary["data"]["source"] == "demo"

    @property
    def segments(self) -> list[dict]:
        """Every segment, the set-aside group (id -1) included, in id order."""
        return sorted(self.summary["segments"], key=lambda s: s["id"])

    @property
    def clusters(self) -> list[dict]:
        """The segments found by clustering, without the set-aside group."""
        return [s for s in self.segments if s["id"] != SET_ASIDE]

    def segment(self, segment_id: int) -> dict:
        return next(s for s in self.segments if s["id"] == segment_id)

    @property
    def targets(self) -> list[dict]:
        """The segments the headline recommends mailing, in mailing order."""
        by_id = {s["id"]: s for s in self.segments}
        return [by_id[i] for i in self.summary["targeting"]["segments"]]


def load_results(path: Path | str | None = None) -> Results:
    """Open a results folder, with a clear message when there is none yet."""
    folder = results_folder(path)
    if not (folder / RESULTS_FILE).is_file():
        raise InputError("no analysis results found", path=folder,
                         hint="Run 'segments run' (or 'segments report') first")
    return Results(folder)
