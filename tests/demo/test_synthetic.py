"""The synthetic dataset: real file format, valid codes, planted truth, missingness, determinism.

Everything runs on 3,000 population + 1,000 customer rows, generated once per module, except the
recoverability check, which runs the analysis on the session's 30,000-row dataset.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.demo import synthetic
from analysis.prepare.cleaning import fit_cleaning
from analysis.prepare.reduce import fit_reducer
from analysis.settings import AnalysisSettings
from analysis.segment.kselect import fit_final, select_k
from analysis.inputs.loading import load_table
from analysis.inputs.schema import load_features
from analysis.inputs.schema import load_schema, normalise_code
from analysis.inputs.summary import read_summary
from analysis.demo.synthetic import (CUSTOMERS_FILE, LABELS_FILE, POPULATION_FILE, SUMMARY_FILE,
                                TRUTH_FILE, generate)

POP, CUST, SEED = 3_000, 1_000, 7
SCHEMA = load_schema()
FILES = (POPULATION_FILE, CUSTOMERS_FILE, SUMMARY_FILE, TRUTH_FILE, LABELS_FILE)
HEAVY = {"TITEL_KZ": 0.998, "AGER_TYP": 0.77, "KK_KUNDENTYP": 0.66, "KBA05_BAUMAX": 0.53,
         "GEBURTSJAHR": 0.44, "ALTER_HH": 0.35}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> synthetic.DemoPaths:
    return generate(tmp_path_factory.mktemp("demo") / "data", population=POP, customers=CUST, seed=SEED)


def _read(path: Path) -> pd.DataFrame:
    """Every field as the exact text in the file ('' for an empty field)."""
    return pd.read_csv(path, sep=";", dtype=str, keep_default_na=False, na_filter=False)


@pytest.fixture(scope="module")
def tables(demo) -> dict[str, pd.DataFrame]:
    return {"population": _read(demo.population), "customers": _read(demo.customers)}


@pytest.fixture(scope="module")
def labels(demo) -> pd.DataFrame:
    return pd.read_parquet(demo.labels)


@pytest.fixture(scope="module")
def truth(demo) -> dict:
    return json.loads(demo.truth.read_text(encoding="utf-8"))


def _missing_share(frame: pd.DataFrame, name: str) -> float:
    values = frame[name].map(normalise_code)
    return float(((values == "") | values.isin(SCHEMA[name].missing)).mean())


def _numbers(frame: pd.DataFrame, name: str) -> pd.Series:
    """Valid codes of a numeric-coded column as floats, NaN where empty or coded missing."""
    values = frame[name].map(normalise_code)
    values = values.where(~values.isin(SCHEMA[name].missing) & (values != ""))
    return pd.to_numeric(values)


# --- format -------------------------------------------------------------------------------


def test_files_have_the_exact_names(demo):
    assert sorted(p.name for p in demo.directory.iterdir()) == sorted(FILES)
    assert demo.population.name == "Udacity_AZDIAS_Subset.csv"
    assert demo.customers.name == "Udacity_CUSTOMERS_Subset.csv"
    assert demo.feature_summary.name == "AZDIAS_Feature_Summary.csv"


@pytest.mark.parametrize("which,rows", [("population", POP), ("customers", CUST)])
def test_header_separator_and_no_index(demo, which, rows):
    lines = getattr(demo, which).read_text(encoding="ascii").splitlines()
    assert lines[0] == ";".join(SCHEMA), "header = the 85 schema names in order, nothing before them"
    assert len(lines) == rows + 1
    assert {line.count(";") for line in lines} == {len(SCHEMA) - 1}
    assert "," not in "".join(lines[:50]) and '"' not in "".join(lines[:50])


@pytest.mark.parametrize("which", ["population", "customers"])
def test_every_value_is_a_valid_or_missing_code(tables, which):
    frame = tables[which]
    for name, feature in SCHEMA.items():
        values = frame[name][frame[name] != ""].map(normalise_code)
        missing = values.isin(feature.missing)
        if feature.min is not None:  # numeric: a whole number within the range
            numbers = pd.to_numeric(values[~missing])
            assert (numbers == numbers.round()).all(), name
            assert numbers.between(feature.min, feature.max).all(), name
        else:
            bad = set(values[~missing]) - set(feature.codes)
            assert not bad, f"{name}: {sorted(bad)[:5]}"


@pytest.mark.parametrize("which", ["population", "customers"])
def test_floats_exactly_in_columns_with_empty_fields(tables, which):
    """pandas wrote a column with any NaN as floats (2.0) and other columns as ints (2)."""
    frame = tables[which]
    for name, feature in SCHEMA.items():
        present = frame[name][frame[name] != ""]
        if feature.is_text:
            assert not present.str.contains(".", regex=False).any(), name
            continue
        has_empty = bool((frame[name] == "").any())
        pattern = r"-?\d+\.0" if has_empty else r"-?\d+"
        assert present.str.fullmatch(pattern).all(), f"{name} (empty fields: {has_empty})"
    assert any((frame[n] == "").any() for n in SCHEMA) and not all((frame[n] == "").any() for n in SCHEMA)


def test_text_columns_hold_strings(tables):
    patterns = {"CAMEO_DEUG_2015": r"[1-9]|X", "CAMEO_DEU_2015": r"[1-9][A-F]|XX",
                "CAMEO_INTL_2015": r"[1-5][1-5]|XX", "OST_WEST_KZ": r"O|W"}
    for frame in tables.values():
        for name, pattern in patterns.items():
            present = frame[name][frame[name] != ""]
            assert present.str.fullmatch(pattern).all(), name
    population = tables["population"]
    assert {"O", "W"} <= set(population["OST_WEST_KZ"])


def test_both_missing_codes_and_empty_fields_occur(tables):
    population = tables["population"]
    coded = [n for n, f in SCHEMA.items() if population[n].map(normalise_code).isin(f.missing).any()]
    empty = [n for n in SCHEMA if (population[n] == "").any()]
    assert len(coded) >= 15 and len(empty) >= 40
    assert (population["GEBURTSJAHR"] == "0").any() and (population["AGER_TYP"] == "-1").any()


def test_summary_parses_and_matches_the_schema(demo):
    specs = read_summary(demo.feature_summary)
    assert specs == [feature.spec for feature in SCHEMA.values()]
    text = demo.feature_summary.read_text(encoding="utf-8")
    assert text.splitlines()[0] == "attribute;information_level;type;missing_or_unknown"
    assert "CAMEO_DEU_2015;microcell_rr4;categorical;[XX]" in text
    assert "GFK_URLAUBERTYP;person;categorical;[]" in text


# --- determinism and writing ----------------------------------------------------------------


def test_same_seed_same_bytes_and_other_seed_differs(tmp_path, demo):
    again = generate(tmp_path / "again", population=POP, customers=CUST, seed=SEED)
    for name in FILES:
        assert (again.directory / name).read_bytes() == (demo.directory / name).read_bytes(), name
    other = generate(tmp_path / "other", population=POP, customers=CUST, seed=SEED + 1)
    assert other.population.read_bytes() != demo.population.read_bytes()
    assert other.customers.read_bytes() != demo.customers.read_bytes()


def test_interrupted_run_leaves_nothing(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(synthetic, "_write_labels", fail)
    with pytest.raises(KeyboardInterrupt):
        generate(tmp_path / "data", population=200, customers=100)
    assert list(tmp_path.iterdir()) == []


def test_existing_folder_gets_new_files_and_keeps_others(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    (folder / POPULATION_FILE).write_text("stale")
    paths = generate(folder, population=200, customers=100)
    assert (folder / "notes.txt").read_text() == "mine"
    assert paths.population.read_text().startswith("AGER_TYP;")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_paths_in_folder_match_generate(demo):
    assert synthetic.DemoPaths.in_folder(demo.directory) == demo


# --- planted truth --------------------------------------------------------------------------


def test_planted_files_agree_with_the_tables(tables, labels, truth):
    assert truth["seed"] == SEED
    assert (truth["population_rows"], truth["customer_rows"]) == (POP, CUST)
    assert list(labels.columns) == ["table", "row", "segment", "sparse"]
    ids = [s["id"] for s in truth["segments"]]
    assert 6 <= len(ids) <= 8
    for table, frame in tables.items():
        rows = labels[labels["table"] == table]
        assert rows["row"].tolist() == list(range(len(frame)))
        assert set(rows["segment"]) <= set(ids)
        assert truth["sparse_share"][table] == pytest.approx(rows["sparse"].mean(), abs=1e-6)
        counts = rows["segment"].value_counts()
        key = "population_rows" if table == "population" else "customer_rows"
        assert {s["id"]: s[key] for s in truth["segments"]} == {i: int(counts.get(i, 0)) for i in ids}


def test_customer_mix_is_over_and_under_as_planted(labels, truth):
    pop = labels[labels["table"] == "population"]["segment"].value_counts(normalize=True)
    cust = labels[labels["table"] == "customers"]["segment"].value_counts(normalize=True)
    kinds = []
    for s in truth["segments"]:
        assert s["expected_index"] == pytest.approx(100 * s["customer_share"] / s["population_share"], abs=0.1)
        assert 0.08 <= s["population_share"] <= 0.22 or (s["niche"] and 0.03 <= s["population_share"] <= 0.05)
        index = 100 * cust.get(s["id"], 0.0) / pop[s["id"]]
        assert index == pytest.approx(s["expected_index"], rel=0.05)  # exact allocation, rounding only
        kinds.append(s["representation"])
        if s["representation"] == "over-represented":
            assert index >= 150
        elif s["representation"] == "under-represented":
            assert index <= 67
        else:
            assert 67 < index < 150
    assert kinds.count("over-represented") >= 2 and kinds.count("under-represented") >= 2


def test_sparse_shares_near_plan(labels):
    # binomial sd: sqrt(.1*.9/3000) = 0.0055 and sqrt(.26*.74/1000) = 0.014; allow ~4.5 sd
    share = labels.groupby("table")["sparse"].mean()
    assert share["population"] == pytest.approx(0.10, abs=0.025)
    assert share["customers"] == pytest.approx(0.26, abs=0.06)


def test_sparse_rows_miss_the_area_blocks(tables, labels):
    for table, frame in tables.items():
        sparse = labels[labels["table"] == table]["sparse"].to_numpy()
        empty = (frame == "").to_numpy()
        share = empty.mean(axis=1)
        assert share[sparse].min() > 0.35 and np.quantile(share[~sparse], 0.99) < 0.2
        area = [n for n in SCHEMA if n.startswith(("KBA05_", "PLZ8_"))] + \
               ["GEBAEUDETYP", "EWDICHTE", "ORTSGR_KLS9", "KKK", "CAMEO_DEUG_2015"]
        assert (frame.loc[sparse, area] == "").all().all()


def test_sparse_rows_have_a_different_person_profile(tables, labels):
    population = tables["population"]
    sparse = labels[labels["table"] == "population"]["sparse"].to_numpy()
    online = _numbers(population, "ONLINE_AFFINITAET")
    assert online[sparse].mean() > online[~sparse].mean() + 0.3


@pytest.mark.slow
def test_the_analysis_finds_the_planted_segments(small_data):
    """The showcase promise: at the test size (30,000 + 8,000 rows, seed 0) the tool's own k
    selection, with the pipeline's settings, picks the planted number of segments, and k-means
    with that k finds each of them: matched one to one, every planted segment has most of its
    people in its own fitted segment and makes up most of that segment. The planted segments
    overlap, as real ones do, so some people land in a neighbour."""
    from scipy.optimize import linear_sum_assignment
    from sklearn.metrics.cluster import contingency_matrix

    features = load_features(small_data.feature_summary)
    population = load_table(small_data.population, features)
    settings = AnalysisSettings()
    _, table = fit_cleaning(population.data, features, settings)
    _, scores = fit_reducer(table.matrix, table.kept, settings.variance_target, settings.seed)
    # The planted niche is weakly separated on purpose: the elbow finds the seven main segments.
    planted = sum(not s["niche"] for s in json.loads(small_data.truth.read_text(encoding="utf-8"))["segments"])
    selection = select_k(scores, range(settings.k_min, settings.k_max + 1), seed=settings.seed)
    assert selection.k == planted, selection.reason
    labels = pd.read_parquet(small_data.labels)
    truth = labels[labels["table"] == "population"].sort_values("row")["segment"].to_numpy()
    counts = contingency_matrix(truth[table.kept], fit_final(scores, planted).labels_)
    rows, cols = linear_sum_assignment(-counts)  # the one-to-one matching that agrees most
    matched = counts[rows, cols]
    assert (matched > counts.sum(axis=1)[rows] / 2).all(), counts  # most of each planted segment
    assert (matched > counts.sum(axis=0)[cols] / 2).all(), counts  # most of each fitted segment
    assert matched.sum() < counts.sum(), "planted segments should overlap, not be trivially apart"


# --- realism ----------------------------------------------------------------------------------


def test_heavy_missing_columns_near_target(tables):
    population = tables["population"]
    # 3,000 rows: binomial sd <= 0.009, so 0.05 is > 5 sd
    for name, target in HEAVY.items():
        assert _missing_share(population, name) == pytest.approx(target, abs=0.05), name
    others = {n: _missing_share(population, n) for n in SCHEMA if n not in HEAVY}
    assert max(others.values()) < 0.25, "only the six heavy columns exceed the usual 30% cut"
    assert sum(0.01 < v for v in others.values()) > 40, "moderate missingness elsewhere"


def test_gebaeudetyp_trap(tables):
    assert (tables["population"]["GEBAEUDETYP"].map(normalise_code) == "5").any()
    assert not (tables["customers"]["GEBAEUDETYP"].map(normalise_code) == "5").any()
    for frame in tables.values():
        assert not (frame["GEBAEUDETYP"].map(normalise_code) == "7").any()


def test_nested_codes_agree(tables):
    wealth = {1: 1, 2: 1, 3: 2, 4: 2, 5: 3, 6: 4, 7: 4, 8: 5, 9: 5}
    avantgarde = {2, 4, 6, 7, 9, 11, 13, 15}
    for frame in tables.values():
        group, kind, intl = frame["CAMEO_DEUG_2015"], frame["CAMEO_DEU_2015"], frame["CAMEO_INTL_2015"]
        known = ~group.isin(["", "X"])
        assert (kind[known].str[0] == group[known]).all()
        assert (kind[~known].isin(["", "XX"])).all() and (intl[~known].isin(["", "XX"])).all()
        assert (intl[known].str[0].astype(int) == group[known].astype(int).map(wealth)).all()
        assert not intl.isin(["11", "21", "42", "53"]).any()
        youth = _numbers(frame, "PRAEGENDE_JUGENDJAHRE")
        flag = frame["GREEN_AVANTGARDE"].astype(int)
        known = youth.notna()
        assert (youth[known].isin(avantgarde) == (flag[known] == 1)).all()
        for fine, coarse in (("LP_FAMILIE_FEIN", "LP_FAMILIE_GROB"), ("LP_STATUS_FEIN", "LP_STATUS_GROB")):
            both = _numbers(frame, fine).notna() & _numbers(frame, coarse).notna()
            pairs = frame.loc[both, [fine, coarse]].drop_duplicates()
            assert pairs[fine].is_unique, f"{fine} maps to one {coarse}"


def test_scale_directions_follow_the_segments(tables, labels):
    """Low codes are the strong end: the affluent savers have LOW income score, CAMEO wealth
    and FINANZ_SPARER; the students have HIGH ones."""
    population = tables["population"]
    segment = labels[labels["table"] == "population"]["segment"].to_numpy()
    keys = {s.key: i for i, s in enumerate(synthetic.SEGMENTS)}
    rich, students = segment == keys["affluent_suburban_savers"], segment == keys["students_young_singles"]
    for name in ("HH_EINKOMMEN_SCORE", "CAMEO_DEUG_2015", "KKK", "FINANZ_SPARER", "FINANZ_ANLEGER"):
        values = _numbers(population, name)
        assert values[rich].mean() + 1 < values[students].mean(), name
    for name in ("LP_STATUS_GROB", "ALTERSKATEGORIE_GROB"):
        values = _numbers(population, name)
        assert values[rich].mean() > values[students].mean() + 1, name


def test_customers_look_older_and_wealthier(tables):
    pop, cust = tables["population"], tables["customers"]
    # +0.2 rather than +0.3 since version 3: the planted niche (young families) is 14% of customers
    assert _numbers(cust, "ALTERSKATEGORIE_GROB").mean() > _numbers(pop, "ALTERSKATEGORIE_GROB").mean() + 0.2
    assert _numbers(cust, "FINANZ_SPARER").mean() < _numbers(pop, "FINANZ_SPARER").mean() - 0.3
    assert _numbers(cust, "ONLINE_AFFINITAET").mean() < _numbers(pop, "ONLINE_AFFINITAET").mean() - 0.15  # niche: online


def test_code_frequencies_are_plausible(tables):
    population = tables["population"]
    for name in ("ALTERSKATEGORIE_GROB", "SEMIO_KAEM", "PLZ8_ANTG1", "CAMEO_DEUG_2015", "ANREDE_KZ"):
        shares = population[name].map(normalise_code)
        shares = shares[(shares != "") & ~shares.isin(SCHEMA[name].missing)].value_counts(normalize=True)
        assert shares.max() < 0.6 and len(shares) == len(SCHEMA[name].codes), name
    assert re.fullmatch(r"\d{4}", str(int(_numbers(population, "GEBURTSJAHR").median())))
