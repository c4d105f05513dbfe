"""select_k and fit_final on small, clearly clustered make_blobs data.

Blobs: centres drawn in a box of side 20, spread 1, in 30 dimensions, so every blob lies far from
every other and the right k is not in doubt. The data sets are small (a few hundred rows), so
every row is both the k-means sample and the evaluation set.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score, silhouette_score

from analysis.segment import kselect
from analysis.segment.kselect import (BETTER_SEPARATED, ELBOW_KEPT, ELBOW_UNREPRODUCIBLE, ELBOW_UNSTABLE, FORCED, WINDOW,
                                      KSelection, _apply_rule, _elbow_gaps, _next_to_measure, _silhouettes, fit_final,
                                      select_k)

CURVE_COLUMNS = ["inertia", "silhouette", "stability_mean", "stability_min", "elbow_gap",
                 "reproducible", "smallest_share"]


def blobs(centres: int | None, n: int | list[int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    X, y = make_blobs(n_samples=n, centers=centres, n_features=30, cluster_std=1.0,
                      center_box=(-10, 10), random_state=seed)
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def six() -> np.ndarray:
    return blobs(6, 900)[0]


@pytest.fixture(scope="module")
def six_selection(six: np.ndarray) -> KSelection:
    return select_k(six, seed=0)


def test_picks_six_on_six_blobs(six_selection: KSelection) -> None:
    assert six_selection.k == 6
    assert six_selection.elbow_k == 6
    assert six_selection.reason == ELBOW_KEPT


def test_picks_four_on_four_blobs() -> None:
    selection = select_k(blobs(4, 600, seed=1)[0], seed=0)
    assert selection.k == 4
    assert selection.elbow_k == 4


def test_curves_one_row_per_k_and_inertia_falls(six_selection: KSelection) -> None:
    curves = six_selection.curves
    assert curves.index.name == "k"
    assert curves.index.tolist() == list(range(2, 16))
    assert curves.columns.tolist() == CURVE_COLUMNS
    numbers = curves[["inertia", "silhouette", "elbow_gap", "smallest_share"]].to_numpy(dtype=float)
    assert np.isfinite(numbers).all()
    assert (np.diff(curves["inertia"].to_numpy()) < 0).all()
    measured = curves["stability_mean"].notna()
    assert (curves["stability_min"][measured] <= curves["stability_mean"][measured]).all()
    assert curves["silhouette"].between(-1, 1).all()
    assert curves["elbow_gap"].idxmax() == 6
    assert curves.loc[2, "elbow_gap"] == 0.0 and curves.loc[15, "elbow_gap"] == 0.0


def test_stability_and_silhouette_peak_at_true_k(six_selection: KSelection) -> None:
    curves = six_selection.curves
    assert curves.loc[6, "stability_mean"] == 1.0
    assert curves.loc[6, "stability_min"] == 1.0
    assert bool(curves.loc[6, "reproducible"])
    assert curves["silhouette"].idxmax() == 6
    assert curves.loc[6, "smallest_share"] == pytest.approx(1 / 6)


def test_stability_measured_only_where_the_rule_reads_it(six_selection: KSelection) -> None:
    """The elbow (6) reproduces and no k near it separates better: no other k's stability can
    change the pick, so only the elbow's is measured; elsewhere it reads as not reproducible."""
    curves = six_selection.curves
    assert curves.loc[6, ["stability_mean", "stability_min"]].notna().all()
    others = curves.drop(index=6)
    assert others[["stability_mean", "stability_min"]].isna().all().all()
    assert not others["reproducible"].any()
    assert all(record["stability_mean"] is None for record in six_selection.to_dict()["curves"]
               if record["k"] != 6)


def test_only_the_elbow_and_the_forced_k_are_refitted(six: np.ndarray, monkeypatch) -> None:
    """One refit per k, n_boot - 1 more for the elbow and the forced k."""
    fitted = []
    real = kselect._fit_one
    monkeypatch.setattr(kselect, "_fit_one", lambda job: fitted.append(job[1]) or real(job))
    select_k(six, seed=0, n_boot=3, forced_k=12)
    counts = pd.Series(fitted).value_counts().sort_index()
    expected = {k: 3 if k in (6, 12) else 1 for k in range(2, 16)}
    assert counts.to_dict() == expected


def test_neighbours_are_measured_in_the_rules_order_until_one_reproduces(six: np.ndarray, monkeypatch) -> None:
    """An elbow that does not reproduce: the k's near it are measured by falling silhouette
    (then nearness, then smaller k) until one reproduces, and that one is picked."""
    measured: list[int] = []
    stability = {6: 0.5, 5: 0.8, 7: 0.95, 8: 0.99, 4: 0.99}  # made up: the elbow does not reproduce

    def fake(evaluation, centres, first):
        k = len(centres[0])
        measured.append(k)
        return {"stability_mean": stability[k], "stability_min": stability[k]}

    monkeypatch.setattr(kselect, "_stability", fake)
    selection = select_k(six, seed=0, n_boot=2)
    sil = selection.curves["silhouette"]
    order = sorted([4, 5, 7, 8], key=lambda k: (-sil[k], abs(k - 6), k))
    first_reproducible = next(k for k in order if stability[k] >= 0.9)
    assert measured == [6, *order[: order.index(first_reproducible) + 1]]
    assert (selection.k, selection.reason) == (first_reproducible, ELBOW_UNREPRODUCIBLE)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=8, max_size=8),
       st.lists(st.one_of(st.floats(-0.2, 0.6), st.just(float("nan"))), min_size=8, max_size=8),
       st.integers(2, 9))
def test_measuring_only_what_the_rule_needs_gives_the_rules_answer(stability: list[float],
                                                                   silhouette: list[float], elbow: int) -> None:
    """The rule on the partly measured curves (the rest not reproducible) = the rule on all of them."""
    ks = list(range(2, 10))
    full = curves_for_rule(stability, silhouette)
    known: dict[int, float] = {}
    while (k := _next_to_measure(ks, dict(zip(ks, silhouette)), known, elbow)) is not None:
        assert k not in known and abs(k - elbow) <= WINDOW
        known[k] = full.loc[k, "stability_mean"]
    partial = curves_for_rule([known.get(k, float("nan")) for k in ks], silhouette)
    assert _apply_rule(partial, elbow) == _apply_rule(full, elbow)


def test_forced_k_keeps_the_curves(six: np.ndarray, six_selection: KSelection) -> None:
    forced = select_k(six, seed=0, forced_k=9)
    assert forced.k == 9
    assert forced.reason == FORCED
    assert forced.elbow_k == 6
    # Only the forced run measures k = 9's stability.
    assert forced.curves.loc[9, "stability_mean"] > 0 and np.isnan(six_selection.curves.loc[9, "stability_mean"])
    pd.testing.assert_frame_equal(forced.curves.drop(index=9), six_selection.curves.drop(index=9))


def test_forced_k_outside_the_range_gets_a_row(six: np.ndarray) -> None:
    forced = select_k(six, k_range=range(2, 9), seed=0, forced_k=12)
    assert forced.k == 12
    assert forced.reason == FORCED
    assert forced.curves.index.tolist() == [2, 3, 4, 5, 6, 7, 8, 12]
    assert math.isnan(forced.curves.loc[12, "elbow_gap"])
    assert forced.elbow_k == 6


@pytest.mark.slow
def test_same_seed_same_result(six: np.ndarray, six_selection: KSelection) -> None:
    again = select_k(six, seed=0)
    assert (again.k, again.reason, again.elbow_k, again.rule) == (
        six_selection.k, six_selection.reason, six_selection.elbow_k, six_selection.rule)
    pd.testing.assert_frame_equal(again.curves, six_selection.curves, check_exact=True)


@pytest.mark.slow
def test_other_seed_other_draws_same_answer(six: np.ndarray, six_selection: KSelection) -> None:
    other = select_k(six, seed=1)
    assert other.k == 6
    assert not other.curves["inertia"].equals(six_selection.curves["inertia"])


@pytest.mark.parametrize("k_range", [range(2, 4), range(7, 12), range(3, 16, 4), range(5, 6)])
def test_k_never_outside_the_range(six: np.ndarray, k_range: range) -> None:
    selection = select_k(six, k_range=k_range, seed=0, n_boot=2)
    assert selection.k in k_range
    assert selection.elbow_k in k_range
    assert selection.curves.index.tolist() == list(k_range)


def test_k_in_range_on_structureless_noise() -> None:
    noise = np.random.default_rng(3).normal(size=(400, 10)).astype(np.float32)
    selection = select_k(noise, k_range=range(2, 9), seed=0, n_boot=3)
    assert selection.k in range(2, 9)
    assert len(selection.curves) == 7


def test_progress_once_per_k_plus_stages(six: np.ndarray) -> None:
    messages: list[str] = []
    select_k(six, k_range=range(2, 9), seed=0, n_boot=2, progress=messages.append)
    # the elbow is 6, reproducible and not displaced: only its stability is measured
    assert len(messages) == 1 + 7 + 1 + 1 + 1
    assert messages[0].startswith("choose k: 7 values of k, one fit each")
    # the largest k first: it takes longest to fit
    assert [m.split(":")[0] for m in messages[1:8]] == [f"k = {k}" for k in range(8, 1, -1)]
    assert messages[8].startswith("silhouette on 900 rows")
    assert messages[9].startswith("k = 6: stability")
    assert messages[10].startswith("chose k = ")


def test_rule_and_to_dict_are_plain_json(six: np.ndarray, six_selection: KSelection) -> None:
    assert six_selection.rule == {"window": 2, "stable_ari": 0.9, "silhouette_margin": 0.02, "n_boot": 5}
    assert select_k(six, k_range=range(2, 6), seed=0, n_boot=2).rule["n_boot"] == 2
    data = json.loads(json.dumps(six_selection.to_dict()))
    assert data["k"] == 6 and data["elbow_k"] == 6
    assert data["reason"] == ELBOW_KEPT and data["rule"] == six_selection.rule
    assert [row["k"] for row in data["curves"]] == list(range(2, 16))
    assert data["curves"][4]["reproducible"] is True
    assert data["curves"][4]["stability_mean"] == 1.0
    assert six_selection.seconds > 0


def test_k_range_beyond_the_sample_is_a_clear_error() -> None:
    X = blobs(3, 100)[0]
    with pytest.raises(ValueError, match=r"k up to 15 needs at least 150 rows .* only 100"):
        select_k(X, k_range=range(2, 16))
    with pytest.raises(ValueError, match=r"sample_size=60"):
        select_k(blobs(3, 300)[0], k_range=range(2, 8), sample_size=60)


@pytest.mark.parametrize("bad", [dict(k_range=range(1, 5)), dict(k_range=range(5, 5)),
                                 dict(n_boot=1), dict(forced_k=1)])
def test_bad_settings(six: np.ndarray, bad: dict) -> None:
    with pytest.raises(ValueError):
        select_k(six, **bad)


def test_bad_scores() -> None:
    with pytest.raises(ValueError, match="2-D"):
        select_k(np.zeros(50))
    X = blobs(3, 300)[0]
    X[5, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        select_k(X, k_range=range(2, 5))


def test_silhouette_matches_sklearn() -> None:
    rng = np.random.default_rng(1)
    E = rng.normal(size=(700, 5))
    labellings = [rng.integers(0, k, 700) for k in (2, 5, 9)]
    labellings.append(np.r_[np.zeros(699, dtype=int), 1])  # a one-member cluster
    ours = _silhouettes(E, labellings)
    assert ours == pytest.approx([silhouette_score(E, lab) for lab in labellings], abs=1e-7)


def curves_for_rule(stability: list[float], silhouette: list[float]) -> pd.DataFrame:
    """Hand-made curves for k = 2..9 (only the columns the rule reads)."""
    curves = pd.DataFrame({"silhouette": silhouette, "stability_mean": stability},
                          index=pd.Index(range(2, 10), name="k"))
    curves["reproducible"] = curves["stability_mean"] >= 0.9
    return curves


def test_rule_keeps_a_reproducible_elbow_against_small_silhouette_gains() -> None:
    curves = curves_for_rule([1.0, 1.0, 0.95, 0.99, 0.97, 0.6, 0.5, 0.5],
                             [0.30, 0.305, 0.30, 0.29, 0.305, 0.2, 0.1, 0.1])
    assert _apply_rule(curves, elbow=5) == (5, ELBOW_KEPT)


def test_rule_moves_to_a_reproducible_neighbour_with_clearly_better_silhouette() -> None:
    curves = curves_for_rule([1.0, 0.5, 0.95, 0.99, 0.97, 0.92, 0.5, 0.5],
                             [0.9, 0.30, 0.33, 0.29, 0.28, 0.33, 0.1, 0.1])
    # 2 is best overall but outside ±2 of the elbow; 4 and 7 tie on silhouette, 4 is nearer.
    assert _apply_rule(curves, elbow=5) == (4, BETTER_SEPARATED)


def test_rule_leaves_an_elbow_that_does_not_reproduce() -> None:
    curves = curves_for_rule([1.0, 0.5, 0.7, 0.8, 0.91, 0.95, 0.5, 0.5],
                             [0.9, 0.30, 0.33, 0.29, 0.20, 0.21, 0.1, 0.1])
    assert _apply_rule(curves, elbow=5) == (7, ELBOW_UNREPRODUCIBLE)


def test_rule_keeps_the_elbow_when_nothing_reproduces() -> None:
    curves = curves_for_rule([1.0, 0.5, 0.7, 0.8, 0.85, 0.6, 0.5, 0.5],
                             [0.9, 0.30, 0.33, 0.29, 0.20, 0.21, 0.1, 0.1])
    assert _apply_rule(curves, elbow=5) == (5, ELBOW_UNSTABLE)


def test_elbow_gaps() -> None:
    # Normalised: x = 0, .25, .5, .75, 1; y = 1, .2, .1, .05, 0; chord 1 - x.
    gaps = _elbow_gaps(np.array([2, 3, 4, 5, 6]), np.array([100.0, 20.0, 10.0, 5.0, 0.0]))
    np.testing.assert_allclose(gaps, [0.0, 0.55, 0.4, 0.2, 0.0])
    assert _elbow_gaps(np.array([2, 3]), np.array([5.0, 1.0])).tolist() == [0.0, 0.0]
    assert _elbow_gaps(np.array([2, 3, 4]), np.array([1.0, 1.0, 1.0])).tolist() == [0.0, 0.0, 0.0]


# Unequal blob sizes, so "largest first" has one right answer.
SIZES = [100, 300, 50, 250, 150, 200]


@pytest.fixture(scope="module")
def unequal() -> tuple[np.ndarray, np.ndarray]:
    return blobs(None, SIZES, seed=2)


def test_fit_final_numbers_segments_by_size(unequal: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = unequal
    model = fit_final(X, 6, seed=0)
    assert np.bincount(model.labels_).tolist() == [300, 250, 200, 150, 100, 50]
    assert adjusted_rand_score(y, model.labels_) == 1.0
    assert (model.predict(X) == model.labels_).all()
    # Segment 0's centre is the mean of the 300-row blob.
    np.testing.assert_allclose(model.cluster_centers_[0], X[y == 1].mean(axis=0), atol=1e-4)


def test_fit_final_is_deterministic(unequal: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = unequal
    a, b = fit_final(X, 4, seed=3), fit_final(X, 4, seed=3)
    assert (a.labels_ == b.labels_).all()
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    sizes = np.bincount(a.labels_)
    assert (np.diff(sizes) <= 0).all()
    assert (a.predict(X) == a.labels_).all()


def test_fit_final_rejects_bad_k(unequal: tuple[np.ndarray, np.ndarray]) -> None:
    with pytest.raises(ValueError, match="k must be"):
        fit_final(unequal[0], 0)
    with pytest.raises(ValueError, match="k must be"):
        fit_final(unequal[0][:5], 6)
