"""The dask engine's scratch folder: the two passes over a span, run directly (no cluster), give
exactly what cleaning the span in memory gives, and the stored partitions read back unchanged."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.inputs.loading import load_span
from analysis.inputs.schema import load_features
from analysis.prepare.cleaning import CleanedTable, apply_cleaning, count_cleaning, decode, plan_cleaning
from analysis.settings import AnalysisSettings

pytest.importorskip("distributed")
import analysis.engine.dask as engine  # noqa: E402  (the dask extra)

SPAN = 1 << 19  # ~2,000 rows per span


@pytest.fixture(scope="module")
def spans(small_data, tmp_path_factory):
    """The small population cut into spans (as ``layout`` cuts it), with its features and header."""
    features = load_features(small_data.feature_summary)
    path = small_data.population
    head = path.read_bytes()[:1 << 16]
    header = head.split(b"\n", 1)[0].decode("utf-8").split(";")
    cuts = engine._cuts(path, len(head.split(b"\n", 1)[0]) + 1, path.stat().st_size, SPAN)
    starts = [2]  # physical line of each span's first row (the header is line 1)
    with path.open("rb") as fh:
        for a, b in zip(cuts[:-2], cuts[1:-1]):
            fh.seek(a)
            starts.append(starts[-1] + fh.read(b - a).count(b"\n"))
    spans = [engine.Span(a, b, line) for (a, b), line in zip(zip(cuts[:-1], cuts[1:]), starts)]
    file = engine.Layout(path, tuple(spans), "utf-8", header, [])
    return file, features


def test_the_two_passes_give_the_in_memory_cleaning_and_free_the_raw_rows(spans, tmp_path):
    file, features = spans
    assert len(file.spans) > 3
    span = file.spans[2]
    raw = tmp_path / "part-00002.raw.pkl"
    survey = engine._survey(file, span, raw, features, groups=4, count=True)
    rows = load_span(file.path, file.header, features, file.encoding, span)[0]
    decoded, quality = decode(rows, features)
    expected_counts = count_cleaning(decoded, quality, features)
    assert survey["counts"].rows == expected_counts.rows == len(rows)
    pd.testing.assert_frame_equal(survey["counts"].quality, expected_counts.quality)
    hashes = np.sort(np.concatenate(survey["hashes"]))
    assert np.array_equal(hashes, np.sort(pd.util.hash_pandas_object(rows, index=False).to_numpy()))

    plan = plan_cleaning(expected_counts, features, AnalysisSettings())
    out = engine._clean(raw, plan, moments=True)
    assert not raw.exists()  # the raw rows are gone once cleaned
    expected = apply_cleaning(plan, rows)
    stored = out["stored"]
    assert stored.matrix.parent == tmp_path and stored.matrix.name == "part-00002.npy"
    table = stored.load()
    pd.testing.assert_frame_equal(table.matrix, expected.matrix)
    assert np.array_equal(table.set_aside, expected.set_aside)
    assert np.array_equal(table.row_missing_share, expected.row_missing_share)
    assert np.array_equal(stored.set_aside(), expected.set_aside)
    assert out["rows"] == len(rows) and out["set_aside"] == int(expected.set_aside.sum())
    for moment in ("count", "mean", "m2"):  # the same rows, the same sums
        assert np.array_equal(getattr(out["moments"], moment), getattr(engine._moments(expected), moment)), moment
    for name, sums in expected.group_sums.items():
        assert np.array_equal(out["group_sums"][name], sums), name


def test_a_stored_partition_reads_back_exactly_with_nan_and_its_column_order(tmp_path):
    rng = np.random.default_rng(0)
    block = np.asfortranarray(rng.normal(size=(50, 4)).astype(np.float32))
    block[rng.random(block.shape) < 0.2] = np.nan
    matrix = pd.DataFrame(block, columns=["b", "a", "d", "c"], copy=False)
    set_aside = rng.random(50) < 0.3
    table = CleanedTable(matrix, set_aside, rng.random(50).astype(np.float32), pd.DataFrame(), pd.DataFrame())
    stored = engine._store(table, tmp_path, "part-00000")
    back = stored.load()
    pd.testing.assert_frame_equal(back.matrix, matrix)
    assert back.matrix.to_numpy().flags.f_contiguous  # no copy on the way out
    assert np.array_equal(back.set_aside, set_aside) and np.array_equal(back.row_missing_share,
                                                                        table.row_missing_share)


def test_scores_labels_and_centre_sums_read_the_stored_scores(tmp_path):
    rng = np.random.default_rng(1)
    matrix = pd.DataFrame(rng.normal(size=(40, 3)).astype(np.float32), columns=["x", "y", "z"])
    set_aside = np.zeros(40, dtype=bool)
    set_aside[::5] = True
    stored = engine._store(CleanedTable(matrix, set_aside, np.zeros(40, np.float32), pd.DataFrame(),
                                        pd.DataFrame()), tmp_path, "part-00000")
    scores = matrix.to_numpy()[~set_aside]
    np.save(stored.scores, scores)
    centres = scores[:3].astype(np.float64)
    labels = engine._labels(stored, stored.scores, centres)
    assert (labels[set_aside] == -1).all()
    assert np.array_equal(labels[~set_aside], engine._nearest(scores, centres)[0])
    sums, counts, _ = engine._centre_sums(stored.scores, centres)
    assert counts.sum() == len(scores)
    for c in range(3):
        assert np.allclose(sums[c], scores[labels[~set_aside] == c].astype(np.float64).sum(axis=0))
    picked = engine._pick(stored.scores, np.array([0, 7, 31]))
    assert np.array_equal(picked, scores[[0, 7, 31]])
