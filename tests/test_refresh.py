"""After a data refresh: kept models reproduce labels, refits keep segment ids, planted changes are found.

Runs the analysis several times on 30k-row generated deliveries (each run starts from a copy of
the session's results folder), so these tests are slow.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.constants import RESULTS_FILE
from analysis.demo.refresh import DOUBLED_SEGMENT, MORE_MISSING, NEW_CODE, generate_refresh
from analysis.demo.synthetic import SEGMENTS, DemoPaths
from analysis.pipeline import run
from analysis.shell.history import records_of
from analysis.shell.progress import Stages

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def unchanged(small_data, tmp_path_factory) -> DemoPaths:
    """A later delivery of the same population, nothing planted."""
    return generate_refresh(small_data.directory, tmp_path_factory.mktemp("unchanged") / "demo", planted=False)


@pytest.fixture(scope="module")
def planted(small_data, tmp_path_factory) -> DemoPaths:
    return generate_refresh(small_data.directory, tmp_path_factory.mktemp("planted") / "demo")


def refresh_run(small_settings, small_results, tmp_path: Path, data: DemoPaths | None, **changes) -> dict:
    """Copy the session's results, run on ``data`` (None: the same data) and return results.json."""
    out = tmp_path / "_results"
    shutil.copytree(small_results, out)
    files = {} if data is None else {"population": data.population, "customers": data.customers}
    settings = dataclasses.replace(small_settings, results=out, **files, **changes)
    run(settings, Stages(stream=None), force=True)
    return json.loads((out / RESULTS_FILE).read_text())


def labels(folder: Path, table: str) -> pd.Series:
    return pd.read_parquet(folder / "tables" / f"labels_{table}.parquet")["segment"]


def flagged(changes: dict) -> dict:
    """Everything the changes section flags, by kind."""
    quality = changes["quality"]
    return {"segments_up": changes["segments_up"], "segments_down": changes["segments_down"],
            "segments_new": changes["segments_new"], "segments_vanished": changes["segments_vanished"],
            "features": sorted(changes["psi"]["features_moderate"] + changes["psi"]["features_major"]),
            "missing": [r["feature"] for r in quality["missing_changed"]],
            "out_of_range": [r["feature"] for r in quality["out_of_range_changed"]],
            "new_categories": quality["new_categories"], "reasons": changes["reasons"]}


NOTHING = {"segments_up": [], "segments_down": [], "segments_new": [], "segments_vanished": [], "features": [],
           "missing": [], "out_of_range": [], "new_categories": [], "reasons": []}


def test_first_run_says_first_report(small_results):
    changes = json.loads((small_results / RESULTS_FILE).read_text())["changes"]
    assert changes["first_report"] is True and changes["previous"] is None
    assert len(records_of(small_results / "history")) == 1


def test_keep_model_reproduces_the_labels_on_unchanged_data(small_settings, small_results, tmp_path):
    summary = refresh_run(small_settings, small_results, tmp_path, None, keep_model=True)
    for table in ("population", "customers"):
        assert labels(tmp_path / "_results", table).equals(labels(small_results, table))
    before = json.loads((small_results / RESULTS_FILE).read_text())
    assert [(s["id"], s["name"]) for s in summary["segments"]] == [(s["id"], s["name"]) for s in before["segments"]]
    assert summary["changes"]["mode"] == "keep-model" and flagged(summary["changes"]) == NOTHING
    assert len(records_of(tmp_path / "_results" / "history")) == 2


def test_a_refit_is_not_served_from_results_of_a_kept_model(small_settings, small_results, tmp_path):
    refresh_run(small_settings, small_results, tmp_path, None, keep_model=True)
    out = tmp_path / "_results"
    run(dataclasses.replace(small_settings, results=out), Stages(stream=None))  # not forced: may use the cache
    assert json.loads((out / RESULTS_FILE).read_text())["changes"]["mode"] == "refit"


def test_unchanged_redelivery_flags_nothing(small_settings, small_results, tmp_path, unchanged):
    changes = refresh_run(small_settings, small_results, tmp_path, unchanged, keep_model=True)["changes"]
    assert changes["previous"]["fingerprint"] != changes["fingerprint"]  # a different delivery
    assert flagged(changes) == NOTHING and changes["refit_recommended"] is False
    assert changes["psi"]["segments_band"] == "stable"


def test_refit_on_a_fresh_sample_keeps_the_segment_ids(small_settings, small_results, tmp_path, unchanged):
    summary = refresh_run(small_settings, small_results, tmp_path, unchanged)
    matching = summary["changes"]["matching"]
    assert summary["changes"]["mode"] == "refit"
    assert matching["kept_share"] >= 0.9
    kept = [p for p in matching["pairs"] if p["previous"] is not None]
    assert all(p["overlap"] >= 0.5 for p in kept)
    # ids are internal; what a reader sees, the code and the name, is carried over
    before = {s["id"]: (s["code"], s["name"]) for s in json.loads((small_results / RESULTS_FILE).read_text())["types"]}
    now = {s["id"]: (s["code"], s["name"]) for s in summary["types"]}
    assert all(now[p["new"]] == before[p["previous"]] for p in kept)
    # the data did not change: no quality or feature flags
    found = flagged(summary["changes"])
    assert (found["missing"], found["out_of_range"], found["features"]) == ([], [], [])


def test_planted_changes_are_all_reported(small_settings, small_results, tmp_path, planted):
    changes = refresh_run(small_settings, small_results, tmp_path, planted, keep_model=True)["changes"]
    found = flagged(changes)
    assert found["missing"] == [MORE_MISSING[0]]
    assert found["out_of_range"] == [NEW_CODE[0]]
    assert set(found["features"]) == {MORE_MISSING[0], NEW_CODE[0]}
    # the doubled planted segment: the found segment holding most of its population rows went up
    truth = pd.read_parquet(planted.labels)
    pop_truth = truth[truth["table"] == "population"].sort_values("row")["segment"].to_numpy()
    found_labels = labels(tmp_path / "_results", "population").to_numpy()
    target = [s.key for s in SEGMENTS].index(DOUBLED_SEGMENT)
    home = pd.Series(found_labels[pop_truth == target]).value_counts().index[0]
    # types are finer than the planted segments: every type that went up must be mostly made of
    # the doubled segment's people, and the one holding most of them is among them
    assert int(home) in found["segments_up"]
    for segment in found["segments_up"]:
        assert np.mean(pop_truth[found_labels == segment] == target) > 0.5, segment
    assert changes["refit_recommended"] and "features_psi_major" in changes["reasons"]
    recorded = json.loads(planted.truth.read_text())["refresh"]["planted_changes"]
    assert [c["kind"] for c in recorded] == ["customer_share", "missing_share", "new_code"]
