"""A run after a data refresh: the previous run, the refresh mode, segment identity and what changed.

Two modes (``Settings.keep_model``):

- keep the model: the previous fitted model (cleaning plan, scaling/PCA, centres) scores the new
  population and customers; nothing is refitted, so unchanged data gets exactly the same labels.
- refit (the default): fit anew, then label the new population with both models and match the
  segments by the people they share (:mod:`analysis.segment.matching`); a matched segment keeps
  its previous id and name, the others are flagged new or vanished.

Either way results.json gets a ``changes`` section (facts only, from
:mod:`analysis.compare.changes`) and the tables ``changes_*``. The pipeline calls the functions
here at a few points; everything about "the previous run" lives in this module.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import joblib
import numpy as np
import pandas as pd

from analysis.compare.changes import (FEATURE_COLUMNS, new_categories, psi_band, quality_drift, refit_reasons,
                                      segment_psi, segment_shifts)
from analysis.constants import MODEL_FILE, PSI_MAJOR, PSI_MODERATE, RESULTS_FILE, SET_ASIDE, TABLES_FOLDER
from analysis.errors import InputError
from analysis.prepare.cleaning import CleaningPlan, CleanedTable, apply_cleaning
from analysis.segment.kselect import KSelection
from analysis.segment.matching import Matching, carry_codes, cross_table, match_counts

if TYPE_CHECKING:
    from analysis.segment.levels import Levels
    from analysis.segment.model import Model
    from analysis.shell.sources import Inputs


@dataclass(frozen=True)
class Previous:
    """The results folder as it was before this run (the run being refreshed)."""

    folder: Path
    summary: dict

    def table(self, name: str) -> pd.DataFrame | None:
        path = self.folder / TABLES_FOLDER / f"{name}.parquet"
        return pd.read_parquet(path) if path.is_file() else None

    def model(self) -> Model | None:
        """The previous fitted model, or None when it is missing or cannot be read."""
        path = self.folder / MODEL_FILE
        try:
            return joblib.load(path) if path.is_file() else None
        except Exception:  # noqa: BLE001 - an unreadable old model means "no model", said in the changes
            return None

    @property
    def fingerprint(self) -> str:
        return self.summary["data"].get("fingerprint") or data_fingerprint(self.summary["data"]["files"])


def load_previous(results: Path) -> Previous | None:
    """The previous run in ``results``, or None when there is none (first report)."""
    try:
        summary = json.loads((Path(results) / RESULTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return Previous(Path(results), summary) if "segments" in summary else None


def data_fingerprint(files: dict) -> str:
    """Ten hex digits naming a delivery: the content hashes of its population and customer files."""
    text = "|".join(files[role]["blake2b"] for role in ("population", "customers") if role in files)
    return hashlib.blake2b(text.encode(), digest_size=5).hexdigest()


def kept_model(keep_model: bool, previous: Previous | None) -> Model | None:
    """The previous model when the run should keep it; a clear error when there is none."""
    if not keep_model:
        return None
    model = previous.model() if previous is not None else None
    if model is None:
        raise InputError("--keep-model needs the model of a previous run, and there is none",
                         path=previous.folder / MODEL_FILE if previous else None,
                         hint="Run once without --keep-model to fit a model")
    return model


def kept_selection(previous: Previous) -> KSelection:
    """The previous run's choice of k, carried over unchanged when the model is kept."""
    info = previous.summary["k_selection"]
    curves = previous.table("k_curves")
    return KSelection(k=int(info["k"]), reason=info["reason"], curves=curves.set_index("k"),
                      elbow_k=int(info["elbow_k"]), seconds=0.0, n_boot=int(info["rule"]["n_boot"]))


def same_schema(a: CleaningPlan, b: CleaningPlan) -> bool:
    """Whether two cleaning plans make the same columns (then a model applies to either's output)."""
    return ([c.name for c in a.columns] == [c.name for c in b.columns] and a.levels == b.levels
            and a.row_missing_threshold == b.row_missing_threshold)


def previous_labels(model: Model, plan: CleaningPlan, pop: CleanedTable, inputs: Inputs) -> np.ndarray | None:
    """The new population labelled by the previous model; None when its columns are not there."""
    if same_schema(model.plan, plan):
        return model.assign(pop)
    from analysis.inputs.loading import load_table
    try:
        raw = load_table(inputs.population, model.plan.features)
    except InputError:
        return None
    return model.assign(apply_cleaning(model.plan, raw.data))


@dataclass(frozen=True)
class LevelMatch:
    """How this run's types and groups match the previous run's (new id -> previous id or None)."""

    types: Matching
    groups: Matching


def previous_types(previous_model: Model | None, plan: CleaningPlan, pop: CleanedTable,
                   inputs: Inputs) -> np.ndarray | None:
    """The previous run's types on the new population (-1: set aside by either run); None when
    there is no previous model with levels or it cannot label the new rows (its columns are gone)."""
    if previous_model is None or getattr(previous_model, "levels", None) is None:
        return None
    before = previous_labels(previous_model, plan, pop, inputs)
    if before is None:
        return None
    before = before.copy()
    before[pop.set_aside] = SET_ASIDE
    return before


def start_centres(before: np.ndarray | None, scores: np.ndarray, kept: np.ndarray) -> np.ndarray | None:
    """Where the previous types sit in this run's component space: the mean score of their members
    (types with no member left are dropped). The refit starts from these (see ``fit_levels``)."""
    if before is None:
        return None
    labels = before[kept]
    present = [t for t in np.unique(labels) if t != SET_ASIDE]
    if len(present) < 3:
        return None
    return np.stack([scores[labels == t].mean(axis=0) for t in present])


def match_levels(previous_model: Model, levels: Levels, before: np.ndarray, new_types: np.ndarray) -> LevelMatch:
    """Match a refit's types and groups to the previous run's by the people they share, and carry the
    previous codes over to the matched ones (in ``levels``).

    Ids stay internal; the codes (A, A1, ...) carry the identity a reader sees.
    """
    return match_crossed(previous_model, levels, type_cross(previous_model, levels, before, new_types))


def type_cross(previous_model: Model, levels: Levels, before: np.ndarray, new_types: np.ndarray) -> np.ndarray:
    """People per (new type, previous type): what matching needs; it adds up over row blocks."""
    return cross_table(before, new_types, list(range(previous_model.levels.n_types)),
                       list(range(levels.n_types))).to_numpy()


def match_crossed(previous_model: Model, levels: Levels, types: np.ndarray) -> LevelMatch:
    """``match_levels`` from ``type_cross`` (summed over the whole population)."""
    before_levels = previous_model.levels
    groups = np.zeros((levels.n_groups, before_levels.n_groups), dtype=np.int64)
    np.add.at(groups, (levels.type_group[:, None], before_levels.type_group[None, :]), types)
    type_match = match_counts(types, list(range(before_levels.n_types)), list(range(levels.n_types)))
    group_match = match_counts(groups, list(range(before_levels.n_groups)), list(range(levels.n_groups)))
    levels.codes.update(carry_codes(type_match, before_levels.codes, levels.codes))
    levels.group_codes.update(carry_codes(group_match, before_levels.group_codes, levels.group_codes))
    return LevelMatch(type_match, group_match)


def carry_names(names: dict[int, str], previous_names: dict, previous_of: dict) -> dict[int, str]:
    """A segment that kept its identity keeps its name; a new one keeps its fresh name."""
    out = dict(names)
    for segment, before in previous_of.items():
        if before is not None and before in previous_names:
            out[segment] = previous_names[before]
    taken = [n for s, n in out.items() if previous_of.get(s) is not None]
    for segment, before in previous_of.items():
        if before is None and out[segment] in taken:
            out[segment] = f"{out[segment]} (new)"
    return out


def changes(previous: Previous | None, mode: str, previous_of: dict | None, matching: Matching | None,
            schema_changed: bool, comparison: pd.DataFrame, quality: pd.DataFrame,
            rows: int, plan: CleaningPlan, fingerprint: str,
            features: pd.DataFrame | None) -> tuple[dict, dict[str, pd.DataFrame]]:
    """The ``changes`` section of results.json and its tables, comparing this run with ``previous``.

    ``rows`` is the new population's size and ``features`` the PSI per column against the previous
    run's bins (``compare.changes.feature_psi``; None when the previous run stored no bins).
    """
    if previous is None:
        return {"first_report": True, "mode": "first", "fingerprint": fingerprint, "previous": None}, {}
    prev_summary = previous.summary
    prev_comparison = previous.table("comparison")
    if previous_of is None:  # no matching possible (schema changed and old columns gone): all new
        previous_of = {int(s): None for s in comparison["segment"] if s != SET_ASIDE}
    previous_of = {**previous_of, SET_ASIDE: SET_ASIDE}
    shifts = segment_shifts(prev_comparison, comparison, previous_of)
    seg_psi = segment_psi(shifts)
    cust_psi = segment_psi(shifts, "customer_share")
    if features is None:
        features = pd.DataFrame(columns=FEATURE_COLUMNS)
    prev_quality = previous.table("quality_population")
    rows_before = int(prev_summary["data"]["rows"]["population"])
    drift = quality_drift(prev_quality, quality, rows_before, rows)
    prev_levels = previous.table("category_levels")
    categories = new_categories(prev_levels, category_levels(plan)) if prev_levels is not None else []
    reasons = refit_reasons(seg_psi, features, schema_changed, categories, shifts)
    section = {
        "first_report": False, "mode": mode, "fingerprint": fingerprint,
        "previous": {"created": prev_summary["created"], "fingerprint": previous.fingerprint,
                     "cache_key": prev_summary["cache_key"], "segments": sum(s["id"] != SET_ASIDE for s in prev_summary["segments"]),
                     "names": {str(s["id"]): f"{s.get('code', s['id'])} · {s['name']}"
                               for s in prev_summary["segments"]}},
        "schema_changed": schema_changed,
        "matching": matching.to_dict() if matching is not None else None,
        "segments": _records(shifts),
        "psi": {"thresholds": {"moderate": PSI_MODERATE, "major": PSI_MAJOR},
                "segments": seg_psi, "segments_band": psi_band(seg_psi),
                "customers": cust_psi, "customers_band": psi_band(cust_psi),
                "features_moderate": _unique(features.loc[features["band"] == "moderate", "feature"]),
                "features_major": _unique(features.loc[features["band"] == "major", "feature"]),
                "features_max": float(features["psi"].max()) if len(features) else None},
        "quality": {
            "missing_changed": _records(drift.loc[drift["missing_flag"], ["feature", "missing_before", "missing_after"]]),
            "out_of_range_changed": _records(drift.loc[drift["out_of_range_flag"],
                                                       ["feature", "out_of_range_before", "out_of_range_after"]]),
            "new_categories": categories},
        "segments_up": [_plain(s) for s in shifts.loc[shifts["direction"] == "up", "segment"]],
        "segments_down": [_plain(s) for s in shifts.loc[shifts["direction"] == "down", "segment"]],
        "segments_new": [_plain(s) for s in shifts.loc[shifts["status"] == "new", "segment"]],
        "segments_vanished": [_plain(s) for s in shifts.loc[shifts["status"] == "vanished", "previous_segment"]],
        "refit_recommended": bool(reasons), "reasons": reasons,
    }
    tables = {"changes_segments": shifts,
              "changes_features": features, "changes_quality": drift}
    return section, tables


def category_levels(plan: CleaningPlan) -> pd.DataFrame:
    """The one-hot levels of every category column, stored so the next run can spot new ones."""
    rows = [(column, str(level)) for column, levels in plan.levels.items() for level in levels]
    return pd.DataFrame(rows, columns=["column", "level"])


def _unique(values: pd.Series) -> list[str]:
    return list(dict.fromkeys(values.tolist()))


def _records(table: pd.DataFrame) -> list[dict]:
    return [{k: _plain(v) for k, v in row.items()} for row in table.to_dict(orient="records")]


def _plain(value: Any) -> Any:
    """Strict JSON: numpy scalars to Python, NaN and missing to None."""
    if value is None or value is pd.NA:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
