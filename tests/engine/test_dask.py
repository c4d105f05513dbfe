"""The dask engine gives the local engine's answer, errors and outputs, on a LocalCluster of 2 processes.

One cluster serves the whole session (starting one takes several seconds). Partitions are made
small (``SPAN_BYTES``) so the generated files are read as several partitions, and the search
sample smaller than the kept rows so that the sample path and the distributed Lloyd iterations
run as they would on a large file.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from analysis.constants import RESULTS_FILE
from analysis.errors import InputError
from analysis.inputs.loading import load_table
from analysis.inputs.schema import load_features
from analysis.pipeline import run
from analysis.shell.assign import assign_file
from analysis.settings import Settings
from analysis.shell.progress import Stages
from damage import set_field

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.slow  # every test here starts or uses a cluster of worker processes
import analysis.engine.dask as engine  # noqa: E402  (needs distributed)

SPAN = 1 << 20  # ~4,000 rows per partition of the generated files


@pytest.fixture(scope="session")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as local:
        yield local


@pytest.fixture
def small_spans(monkeypatch):
    monkeypatch.setattr(engine, "SPAN_BYTES", SPAN)


@pytest.fixture(scope="session")
def dask_results(small_settings, small_results, cluster, tmp_path_factory) -> Path:
    """The session's analysis again on the cluster: 8 population partitions, k chosen on a sample."""
    patch = pytest.MonkeyPatch()
    patch.setattr(engine, "SPAN_BYTES", SPAN)
    patch.setattr(engine, "SEARCH_SAMPLE", 15_000)  # below the ~27,000 kept rows
    try:
        settings = dataclasses.replace(small_settings, engine="dask", scheduler=cluster.scheduler_address,
                                       results=tmp_path_factory.mktemp("dask") / "_results")
        return run(settings, Stages(stream=None))
    finally:
        patch.undo()


def read(results: Path) -> dict:
    return json.loads((results / RESULTS_FILE).read_text(encoding="utf-8"))


def test_same_plan_k_labels_and_indexes(small_results, dask_results):
    local, dask = read(small_results), read(dask_results)
    assert dask["engine"]["partitions"]["population"] > 2 and dask["engine"]["search_sample"] == 15_000
    assert dask["cleaning"] == local["cleaning"]  # same plan, log, set-aside counts, quality totals
    assert dask["data"]["checks"] == local["data"]["checks"]
    assert dask["k_selection"]["k"] == local["k_selection"]["k"]
    assert dask["pca"]["n_components"] == local["pca"]["n_components"]
    for table in ("labels_population", "labels_customers"):
        a = pd.read_parquet(small_results / "tables" / f"{table}.parquet")["segment"]
        b = pd.read_parquet(dask_results / "tables" / f"{table}.parquet")["segment"]
        assert len(a) == len(b) and adjusted_rand_score(a, b) >= 0.99
        assert ((a == -1) == (b == -1)).all()  # the same rows set aside, in the same order
    by_id = {s["id"]: s for s in local["segments"]}
    for segment in dask["segments"]:
        assert segment["index"] == pytest.approx(by_id[segment["id"]]["index"], rel=0.01)
    tables = sorted(p.name for p in (small_results / "tables").iterdir())
    assert sorted(p.name for p in (dask_results / "tables").iterdir()) == tables
    assert (dask_results / "model.joblib").is_file()


def test_assign_with_the_model_the_dask_engine_fitted(dask_results, small_data, tmp_path):
    """The dask engine's model scores new rows as the labels it wrote (float32 throughout, as local)."""
    rows = assign_file(dask_results, small_data.customers, tmp_path / "scored.csv")
    scored = pd.read_csv(tmp_path / "scored.csv", sep=";")["segment"]
    written = pd.read_parquet(dask_results / "tables" / "labels_customers.parquet")["segment"]
    assert rows == len(written) and np.array_equal(scored.to_numpy(), written.to_numpy())


def damaged(source: Path, folder: Path, line: int, value: bytes, column: str = "FINANZTYP") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / source.name
    path.write_bytes(set_field(source.read_bytes(), line, column, value))
    return path


def error(call) -> InputError:
    with pytest.raises(InputError) as caught:
        call()
    return caught.value


@pytest.mark.parametrize("value", [b"abc", b"1;2"], ids=["text in a code column", "extra field"])
def test_a_damaged_partition_in_the_middle_gives_the_local_error(small_data, cluster, small_spans, tmp_path, value):
    features = load_features(small_data.feature_summary)
    path = damaged(small_data.population, tmp_path, 15_001, value)
    local = error(lambda: load_table(path, features))
    client = distributed.Client(cluster)
    try:
        file = engine.layout(client, path, features)
        middle = [i for i, s in enumerate(file.spans) if s.first_line <= 15_001][-1]
        assert 0 < middle < len(file.spans) - 1
        dask = error(lambda: client.gather(client.map(engine._load, [file] * len(file.spans), file.spans,
                                                      features=features)))
    finally:
        client.close()
    assert local.line == 15_001 and str(dask) == str(local)


def test_blank_lines_before_a_partition_keep_line_numbers_right(small_data, cluster, small_spans, tmp_path):
    features = load_features(small_data.feature_summary)
    lines = small_data.population.read_bytes().split(b"\n")
    lines[100:100] = [b"", b"\r", b""]  # three blank lines early in the file
    path = tmp_path / "population.csv"
    path.write_bytes(b"\n".join(lines))
    path.write_bytes(set_field(path.read_bytes(), 20_004, "ALTERSKATEGORIE_GROB", b"x"))
    local = error(lambda: load_table(path, features))
    with distributed.Client(cluster) as client:
        file = engine.layout(client, path, features)
        dask = error(lambda: client.gather(client.map(engine._load, [file] * len(file.spans), file.spans,
                                                      features=features)))
    assert local.line == 20_004 and str(dask) == str(local)


def test_the_local_cluster_is_shut_down_when_a_run_fails(small_settings, small_data, small_spans, tmp_path,
                                                        monkeypatch):
    started = []

    class Recording(distributed.LocalCluster):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(distributed, "LocalCluster", Recording)
    path = damaged(small_data.population, tmp_path / "data", 9_000, b"abc")
    settings = dataclasses.replace(small_settings, population=path, results=tmp_path / "out",
                                   engine="dask", scheduler=None, workers=1)
    failure = error(lambda: run(settings, Stages(stream=None)))
    assert failure.line == 9_000 and failure.column == "FINANZTYP"
    assert len(started) == 1 and started[0].status == distributed.core.Status.closed
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_an_unreachable_scheduler_is_an_input_error(small_settings, tmp_path):
    settings = dataclasses.replace(small_settings, results=tmp_path / "out", engine="dask",
                                   scheduler="tcp://127.0.0.1:1")
    assert error(lambda: run(settings, Stages(stream=None))).column == "scheduler"


def test_assign_writes_parts_in_input_order(small_results, small_data, cluster, small_spans, tmp_path):
    local = tmp_path / "local.csv"
    assign_file(small_results, small_data.customers, local)
    settings = Settings(engine="dask", scheduler=cluster.scheduler_address)
    rows = engine.assign_parts(small_results, small_data.customers, tmp_path / "parts", settings,
                               Stages(stream=None))
    parts = sorted((tmp_path / "parts").iterdir())
    assert len(parts) > 1 and [p.name for p in parts] == [engine.PART.format(i) for i in range(len(parts))]
    scored = pd.read_parquet(tmp_path / "parts")
    expected = pd.read_csv(local, sep=";")
    assert rows == len(scored) == len(expected)
    assert np.array_equal(scored["segment"].to_numpy(), expected["segment"].to_numpy())
    assert scored["segment_name"].tolist() == expected["segment_name"].tolist()
