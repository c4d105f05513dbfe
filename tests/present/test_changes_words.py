"""The words of "What changed", from a results folder holding a changes section."""
from __future__ import annotations

import json

import pandas as pd

from analysis.compare.changes import segment_shifts
from analysis.present import changes as changed
from analysis.results import Results


def comparison(pop: list[int], cust: list[int]) -> pd.DataFrame:
    p, c = pd.Series(pop, dtype=float), pd.Series(cust, dtype=float)
    return pd.DataFrame({"segment": range(-1, len(pop) - 1), "population_count": p, "customer_count": c,
                         "population_share": p / p.sum(), "customer_share": c / c.sum(),
                         "index": 100 * (c / c.sum()) / (p / p.sum())})


def folder(tmp_path, refit: bool) -> Results:
    shifts = segment_shifts(comparison([1000, 5000, 5000], [300, 500, 500]),
                            comparison([1000, 5000, 5000], [300, 500, 1200]), {-1: -1, 0: 0, 1: None})
    (tmp_path / "tables").mkdir()
    shifts.to_parquet(tmp_path / "tables" / "changes_segments.parquet", index=False)
    summary = {
        "segments": [{"id": -1, "name": "Set aside"}, {"id": 0, "name": "Savers"}, {"id": 1, "name": "Students"}],
        "changes": {
            "first_report": False, "mode": "refit", "fingerprint": "bbbb",
            "previous": {"created": "2026-08-01T09:30:00+00:00", "fingerprint": "aaaa",
                         "names": {"-1": "Set aside", "0": "Savers", "1": "Pensioners"}},
            "segments_up": [1], "segments_down": [], "segments_new": [1], "segments_vanished": [1],
            "psi": {"thresholds": {"moderate": 0.1, "major": 0.25}, "segments": 0.31, "segments_band": "major",
                    "customers": 0.05, "customers_band": "stable", "features_moderate": ["FINANZTYP"],
                    "features_major": []},
            "quality": {"missing_changed": [{"feature": "SEMIO_KULT", "missing_before": 0.0, "missing_after": 0.1}],
                        "out_of_range_changed": [], "new_categories": []},
            "refit_recommended": refit, "reasons": ["segments_psi_major"] if refit else [],
        },
    }
    (tmp_path / "results.json").write_text(json.dumps(summary))
    return Results(tmp_path)


def test_what_changed_in_words(tmp_path):
    res = folder(tmp_path, refit=True)
    assert "01 August 2026" in changed.summary_line(res) and "refit is recommended" in changed.summary_line(res)
    overview = changed.overview(res)
    assert "`aaaa`" in overview and "**Recommendation: refit.** The mix of segments" in overview
    table = changed.segments_table(res)
    assert "1 · Students (new)" in table and "Pensioners (vanished)" in table
    assert "new" in table and "vanished" in table
    drift = changed.drift_text(res)
    assert "PSI 0.310, a major shift" in drift and "moderate shift in FINANZTYP" in drift
    assert "Missing values in SEMIO\\_KULT:** 0.0% before, 10.0% now" in drift


def test_no_refit_and_first_report(tmp_path):
    (tmp_path / "a").mkdir()
    assert "**Recommendation: no refit needed.**" in changed.overview(folder(tmp_path / "a", refit=False))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "results.json").write_text(json.dumps({"changes": {"first_report": True}}))
    first = Results(tmp_path / "b")
    assert "first report" in changed.overview(first) and "first report" in changed.summary_line(first)
