"""Tests for analysis.inputs.schema and the package's own schema data in analysis/data.

features.csv carries the feature summary's four columns plus words for people (description, which
end of the scale is strong, what a low and a high value mean, a numeric range); levels.csv carries
one label per valid code. The report and the component and cluster descriptions read these words,
so a reversed scale or a label on a missing code shows up as a wrong sentence about customers.
"""
from __future__ import annotations

import csv
from collections import Counter
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest

from analysis.inputs.schema import SCALES, load_schema, normalise_code
from analysis.inputs.summary import read_summary

SHARED = Path(__file__).resolve().parents[3] / "shared" / "azdias"
DATA = files("analysis") / "data"

NUMERIC = {"GEBURTSJAHR", "ANZ_PERSONEN", "ANZ_TITEL", "ANZ_HAUSHALTE_AKTIV", "ANZ_HH_TITEL",
           "MIN_GEBAEUDEJAHR", "KBA13_ANZAHL_PKW"}
TEXT_CODED = {"CAMEO_DEUG_2015", "CAMEO_DEU_2015", "CAMEO_INTL_2015", "OST_WEST_KZ"}
FINANZ = ["FINANZ_MINIMALIST", "FINANZ_SPARER", "FINANZ_VORSORGER", "FINANZ_ANLEGER",
          "FINANZ_UNAUFFAELLIGER", "FINANZ_HAUSBAUER"]
SEMIO = ["SEMIO_SOZ", "SEMIO_FAM", "SEMIO_REL", "SEMIO_MAT", "SEMIO_VERT", "SEMIO_LUST",
         "SEMIO_ERL", "SEMIO_KULT", "SEMIO_RAT", "SEMIO_KRIT", "SEMIO_DOM", "SEMIO_KAEM",
         "SEMIO_PFLICHT", "SEMIO_TRADV"]
ANTG = [f"{block}_ANTG{i}" for block in ("KBA05", "PLZ8") for i in (1, 2, 3, 4)]

MAX_DESCRIPTION = 45
MAX_LABEL = 40


@pytest.fixture(scope="module")
def schema():
    return load_schema()


def _rows(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter=";"))


def _span(first: int, last: int) -> set[str]:
    return {str(code) for code in range(first, last + 1)}


# --- the shipped files themselves ----------------------------------------------------------------


def test_data_files_have_the_expected_headers():
    with (DATA / "features.csv").open(encoding="utf-8") as fh:
        assert fh.readline().rstrip("\n") == (
            "attribute;information_level;type;missing_or_unknown;"
            "description;scale;low_end;high_end;min;max")
    with (DATA / "levels.csv").open(encoding="utf-8") as fh:
        assert fh.readline().rstrip("\n") == "attribute;code;label"


def test_no_cell_in_the_data_files_has_stray_spaces():
    # The published summary has " ordinal" on its RELAT_AB row; the shipped copy must not.
    stray = [(name, row) for name in ("features.csv", "levels.csv") for row in _rows(name)
             if any(value != value.strip() for value in row.values())]
    assert stray == []


def test_every_row_has_all_columns():
    short = [row for name in ("features.csv", "levels.csv") for row in _rows(name)
             if None in row.values() or None in row]
    assert short == []


def test_levels_file_has_no_duplicate_codes_and_only_known_attributes(schema):
    # load_schema builds a dict, so a duplicate row would silently replace a label.
    pairs = Counter((row["attribute"], row["code"]) for row in _rows("levels.csv"))
    assert [pair for pair, n in pairs.items() if n > 1] == []
    assert {attribute for attribute, _ in pairs} - set(schema) == set()


def test_levels_file_follows_the_feature_order(schema):
    order = list(dict.fromkeys(row["attribute"] for row in _rows("levels.csv")))
    assert order == [name for name in schema if name not in NUMERIC]


# --- features ------------------------------------------------------------------------------------


def test_85_features_in_summary_order(schema):
    names = list(schema)
    assert len(names) == 85
    assert names[:3] == ["AGER_TYP", "ALTERSKATEGORIE_GROB", "ANREDE_KZ"]
    assert names[-3:] == ["ARBEIT", "ORTSGR_KLS9", "RELAT_AB"]
    assert Counter(feature.kind for feature in schema.values()) == {
        "ordinal": 49, "categorical": 21, "mixed": 7, "numeric": 7, "interval": 1}


def test_spec_round_trips_the_summary_columns(schema):
    relat = schema["RELAT_AB"]
    assert (relat.spec.name, relat.spec.level, relat.spec.kind, relat.spec.missing) == (
        "RELAT_AB", "community", "ordinal", ("-1", "9"))
    assert schema["CAMEO_INTL_2015"].missing == ("-1", "XX")
    assert schema["KONSUMNAEHE"].missing == ()


def test_every_feature_has_a_short_unique_description(schema):
    bad = [(name, f.description) for name, f in schema.items()
           if not f.description or len(f.description) > MAX_DESCRIPTION
           or f.description == name or "TODO" in f.description]
    assert bad == []
    repeated = [d for d, n in Counter(f.description for f in schema.values()).items() if n > 1]
    assert repeated == []


def test_every_scale_is_known(schema):
    assert {name: f.scale for name, f in schema.items() if f.scale not in SCALES} == {}


def test_scale_ends_are_present_exactly_for_directed_scales(schema):
    for name, f in schema.items():
        if f.scale == "nominal":
            assert (f.low_end, f.high_end) == ("", ""), name
        else:
            assert f.low_end and f.high_end and f.low_end != f.high_end, name


def test_features_used_as_numbers_have_a_direction(schema):
    # Ordinal, interval and numeric columns enter the model as numbers, so a loading's sign on
    # them must translate into words.
    undirected = [name for name, f in schema.items()
                  if f.kind in ("ordinal", "interval", "numeric") and f.scale == "nominal"]
    assert undirected == []
    counts = {name for name, f in schema.items() if f.scale == "count"}
    assert counts == NUMERIC | {"ALTER_HH"}


@pytest.mark.parametrize(("name", "scale"), [
    *((name, "low-strong") for name in FINANZ + SEMIO),
    ("HH_EINKOMMEN_SCORE", "low-strong"),
    ("KKK", "low-strong"),
    ("CAMEO_DEUG_2015", "low-strong"),
    ("MOBI_REGIO", "low-strong"),
    ("W_KEIT_KIND_HH", "low-strong"),
    ("ARBEIT", "low-strong"),
    ("RELAT_AB", "low-strong"),
    ("BALLRAUM", "low-strong"),
    ("INNENSTADT", "low-strong"),
    ("KONSUMNAEHE", "low-strong"),
    ("ALTERSKATEGORIE_GROB", "high-strong"),
    ("ONLINE_AFFINITAET", "high-strong"),
    ("EWDICHTE", "high-strong"),
    ("ORTSGR_KLS9", "high-strong"),
    ("WOHNDAUER_2008", "high-strong"),
    ("LP_STATUS_GROB", "high-strong"),
    ("LP_STATUS_FEIN", "high-strong"),
    ("PLZ8_HHZ", "high-strong"),
    ("PLZ8_GBZ", "high-strong"),
    ("KBA05_GBZ", "high-strong"),
    *((name, "high-strong") for name in ANTG),
    ("GEBURTSJAHR", "count"),
    ("ALTER_HH", "count"),
    ("KBA13_ANZAHL_PKW", "count"),
    ("LP_LEBENSPHASE_FEIN", "nominal"),
    ("LP_LEBENSPHASE_GROB", "nominal"),
    ("PRAEGENDE_JUGENDJAHRE", "nominal"),
    ("CAMEO_INTL_2015", "nominal"),
    ("CAMEO_DEU_2015", "nominal"),
    ("WOHNLAGE", "nominal"),
    ("KBA05_BAUMAX", "nominal"),
    ("PLZ8_BAUMAX", "nominal"),
    ("OST_WEST_KZ", "nominal"),
])
def test_scale_direction(schema, name, scale):
    assert schema[name].scale == scale


@pytest.mark.parametrize(("name", "low_end", "high_end"), [
    ("FINANZ_SPARER", "keen savers", "not savers"),
    ("ALTERSKATEGORIE_GROB", "younger", "older"),
    ("HH_EINKOMMEN_SCORE", "higher household income", "lower household income"),
    ("EWDICHTE", "in thinly populated areas", "in densely populated areas"),
    # ALTER_HH code 1 is a head of household born 1895-99, code 21 one born 1995-99.
    ("ALTER_HH", "in households with an older head", "in households with a younger head"),
    ("GEBURTSJAHR", "born earlier (older)", "born later (younger)"),
])
def test_scale_ends_read_the_right_way_round(schema, name, low_end, high_end):
    feature = schema[name]
    assert (feature.low_end, feature.high_end) == (low_end, high_end)
    assert feature.end(+0.4) == high_end
    assert feature.end(-0.4) == low_end


def test_alter_hh_codes_run_from_oldest_to_youngest(schema):
    labels = schema["ALTER_HH"].codes
    assert "1895" in labels["1"] and "1995" in labels["21"]


@pytest.mark.parametrize("name", FINANZ)
def test_finanz_labels_put_the_strong_end_at_code_1(schema, name):
    codes = schema[name].codes
    assert codes["1"].endswith(": very typical") and codes["5"].endswith(": very untypical")


@pytest.mark.parametrize("name", SEMIO)
def test_semio_labels_put_the_strong_end_at_code_1(schema, name):
    codes = schema[name].codes
    assert codes["1"].startswith("extremely ") and codes["7"].startswith("not at all ")


@pytest.mark.parametrize(("name", "code", "label"), [
    ("HH_EINKOMMEN_SCORE", "1", "income: highest"),
    ("HH_EINKOMMEN_SCORE", "6", "income: very low"),
    ("KKK", "1", "very strong buying power"),
    ("KKK", "4", "weak buying power"),
    ("CAMEO_DEUG_2015", "1", "upper class (most affluent)"),
    ("CAMEO_DEUG_2015", "9", "urban working class (least affluent)"),
    ("W_KEIT_KIND_HH", "1", "children at home: almost certain"),
    ("ALTERSKATEGORIE_GROB", "1", "younger than 30"),
    ("ALTERSKATEGORIE_GROB", "4", "older than 60"),
    ("ONLINE_AFFINITAET", "0", "not online-minded"),
    ("ONLINE_AFFINITAET", "5", "extremely online-minded"),
    ("LP_STATUS_GROB", "1", "low earner"),
    ("LP_STATUS_GROB", "5", "top earner"),
])
def test_labels_at_the_ends_of_directed_scales(schema, name, code, label):
    assert schema[name].codes[code] == label


def test_numeric_range_only_for_numeric_features(schema):
    ranged = {name for name, f in schema.items() if f.min is not None or f.max is not None}
    assert ranged == NUMERIC
    for name in NUMERIC:
        assert schema[name].min < schema[name].max, name


@pytest.mark.parametrize(("name", "low", "high"), [
    ("GEBURTSJAHR", 1900, 2017),
    ("ANZ_PERSONEN", 0, 45),
    ("ANZ_TITEL", 0, 6),
    ("ANZ_HAUSHALTE_AKTIV", 1, 595),  # 0 is the missing code
    ("ANZ_HH_TITEL", 0, 23),
    ("MIN_GEBAEUDEJAHR", 1985, 2016),
    ("KBA13_ANZAHL_PKW", 0, 2300),
])
def test_numeric_ranges(schema, name, low, high):
    feature = schema[name]
    assert (feature.min, feature.max) == (low, high)
    assert not [code for code in feature.missing if low <= float(code) <= high]


# --- labels --------------------------------------------------------------------------------------


def test_numeric_features_have_no_labels_and_all_others_do(schema):
    assert {name for name, f in schema.items() if not f.codes} == NUMERIC


def test_no_label_for_a_missing_code(schema):
    assert {name: set(f.codes) & set(f.missing) for name, f in schema.items()
            if set(f.codes) & set(f.missing)} == {}


def test_codes_are_written_as_in_the_data(schema):
    # '2', not '2.0' or ' 2' or '02', so normalised data values find their label.
    odd = [(name, code) for name, f in schema.items() for code in f.codes
           if normalise_code(code) != code or (code.isdigit() and code != str(int(code)))]
    assert odd == []


def test_labels_are_short_plain_and_distinct(schema):
    bad = [(name, code, label) for name, f in schema.items() for code, label in f.codes.items()
           if not label or len(label) > MAX_LABEL or label.lower() == "unknown"]
    assert bad == []
    clashes = [name for name, f in schema.items() if len(set(f.codes.values())) != len(f.codes)]
    assert clashes == []


CAMEO_DEU = {f"{group}{letter}" for group, letters in {
    1: "ABCDE", 2: "ABCD", 3: "ABCD", 4: "ABCDE", 5: "ABCDEF", 6: "ABCDEF", 7: "ABCDE",
    8: "ABCD", 9: "ABCDE"}.items() for letter in letters}


@pytest.mark.parametrize(("name", "codes"), [
    ("AGER_TYP", _span(1, 3)),
    ("ALTERSKATEGORIE_GROB", _span(1, 4)),
    ("ANREDE_KZ", {"1", "2"}),
    ("CJT_GESAMTTYP", _span(1, 6)),
    *((name, _span(1, 5)) for name in FINANZ),
    ("FINANZTYP", _span(1, 6)),
    ("GFK_URLAUBERTYP", _span(1, 12)),
    ("GREEN_AVANTGARDE", {"0", "1"}),
    ("HEALTH_TYP", _span(1, 3)),
    ("LP_LEBENSPHASE_FEIN", _span(1, 40)),
    ("LP_LEBENSPHASE_GROB", _span(1, 12)),
    ("LP_FAMILIE_FEIN", _span(1, 11)),
    ("LP_FAMILIE_GROB", _span(1, 5)),
    ("LP_STATUS_FEIN", _span(1, 10)),
    ("LP_STATUS_GROB", _span(1, 5)),
    ("PRAEGENDE_JUGENDJAHRE", _span(1, 15)),
    ("RETOURTYP_BK_S", _span(1, 5)),
    *((name, _span(1, 7)) for name in SEMIO),
    ("SHOPPER_TYP", _span(0, 3)),
    ("SOHO_KZ", {"0", "1"}),
    ("TITEL_KZ", _span(1, 5)),
    ("ZABEOTYP", _span(1, 6)),
    ("ALTER_HH", _span(1, 21)),
    ("HH_EINKOMMEN_SCORE", _span(1, 6)),
    ("W_KEIT_KIND_HH", _span(1, 6)),
    ("WOHNDAUER_2008", _span(1, 9)),
    ("GEBAEUDETYP", _span(1, 8)),
    ("KONSUMNAEHE", _span(1, 7)),
    ("OST_WEST_KZ", {"O", "W"}),
    ("WOHNLAGE", {"0", "1", "2", "3", "4", "5", "7", "8"}),
    ("CAMEO_DEUG_2015", _span(1, 9)),
    ("CAMEO_DEU_2015", CAMEO_DEU),
    ("CAMEO_INTL_2015", {f"{wealth}{stage}" for wealth in range(1, 6) for stage in range(1, 6)}),
    ("KBA05_ANTG1", _span(0, 4)),
    ("KBA05_ANTG3", _span(0, 3)),
    ("KBA05_ANTG4", _span(0, 2)),
    ("PLZ8_ANTG2", _span(0, 4)),
    ("PLZ8_ANTG4", _span(0, 2)),
    ("KBA05_BAUMAX", _span(1, 5)),
    ("PLZ8_BAUMAX", _span(1, 5)),
    ("KBA05_GBZ", _span(1, 5)),
    ("BALLRAUM", _span(1, 7)),
    ("EWDICHTE", _span(1, 6)),
    ("INNENSTADT", _span(1, 8)),
    ("GEBAEUDETYP_RASTER", _span(1, 5)),
    ("KKK", _span(1, 4)),
    ("MOBI_REGIO", _span(1, 6)),
    ("ONLINE_AFFINITAET", _span(0, 5)),
    ("REGIOTYP", _span(1, 7)),
    ("PLZ8_HHZ", _span(1, 5)),
    ("ARBEIT", _span(1, 5)),
    ("ORTSGR_KLS9", _span(1, 9)),
    ("RELAT_AB", _span(1, 5)),
])
def test_valid_codes(schema, name, codes):
    assert set(schema[name].codes) == codes


def test_cameo_deu_has_44_types_nested_in_the_9_groups(schema):
    deu, deug = schema["CAMEO_DEU_2015"].codes, schema["CAMEO_DEUG_2015"].codes
    assert len(deu) == 44
    assert {code[0] for code in deu} == set(deug)
    # Types of one group share the group's name before the colon.
    prefixes = {group: {deu[code].split(":")[0] for code in deu if code[0] == group}
                for group in deug}
    assert all(len(names) == 1 for names in prefixes.values())
    assert len({next(iter(names)) for names in prefixes.values()}) == 9


PRAEGENDE = {  # code: (decade, movement, region or None for East and West)
    1: ("1940s", "mainstream", None), 2: ("1940s", "avant-garde", None),
    3: ("1950s", "mainstream", None), 4: ("1950s", "avant-garde", None),
    5: ("1960s", "mainstream", None), 6: ("1960s", "avant-garde", "West"),
    7: ("1960s", "avant-garde", "East"), 8: ("1970s", "mainstream", None),
    9: ("1970s", "avant-garde", None), 10: ("1980s", "mainstream", "West"),
    11: ("1980s", "avant-garde", "West"), 12: ("1980s", "mainstream", "East"),
    13: ("1980s", "avant-garde", "East"), 14: ("1990s", "mainstream", None),
    15: ("1990s", "avant-garde", None),
}


@pytest.mark.parametrize(("code", "decade", "movement", "region"),
                         [(code, *parts) for code, parts in PRAEGENDE.items()])
def test_praegende_labels_name_decade_movement_and_region(schema, code, decade, movement, region):
    label = schema["PRAEGENDE_JUGENDJAHRE"].label(code)
    assert label.startswith(f"{decade} {movement}")
    assert ("(West)" in label, "(East)" in label) == (region == "West", region == "East")


CAMEO_WEALTH = {1: "wealthy", 2: "prosperous", 3: "comfortable", 4: "less affluent", 5: "poorer"}


def test_cameo_intl_labels_read_wealth_from_tens_and_life_stage_from_ones(schema):
    codes = schema["CAMEO_INTL_2015"].codes
    stages: dict[int, set[str]] = {}
    for code, label in codes.items():
        wealth, stage = int(code[0]), int(code[1])
        assert label.startswith(CAMEO_WEALTH[wealth] + " "), (code, label)
        stages.setdefault(stage, set()).add(label[len(CAMEO_WEALTH[wealth]) + 1:])
    # Each life-stage digit has one wording, and the five wordings differ.
    assert sorted(stages) == [1, 2, 3, 4, 5]
    assert all(len(words) == 1 for words in stages.values())
    assert len({next(iter(words)) for words in stages.values()}) == 5
    assert "retired" in codes["15"] and "young couples" in codes["52"]


def test_wohnlage_zero_is_a_labelled_level_not_missing(schema):
    wohnlage = schema["WOHNLAGE"]
    assert "0" not in wohnlage.missing
    assert "not scored" in wohnlage.label(0)
    assert "rural" in wohnlage.label(7) and "rural" in wohnlage.label(8)


# --- normalise_code, label, is_text --------------------------------------------------------------


@pytest.mark.parametrize(("value", "code"), [
    (2, "2"),
    (2.0, "2"),
    ("2", "2"),
    ("2.0", "2"),
    (" 2 ", "2"),
    (" 2.0 ", "2"),
    (10.0, "10"),
    (-1, "-1"),
    (-1.0, "-1"),
    ("-1.0", "-1"),
    (0.0, "0"),
    (np.float64(3.0), "3"),
    (np.int64(3), "3"),
    (2.5, "2.5"),
    ("8A", "8A"),
    ("XX", "XX"),
    ("X", "X"),
    (" W ", "W"),
    ("1A.0", "1A.0"),
])
def test_normalise_code(value, code):
    assert normalise_code(value) == code


@pytest.mark.parametrize("value", [2, 2.0, "2", "2.0", np.float64(2.0)])
def test_label_accepts_any_spelling_of_a_code(schema, value):
    assert schema["ANREDE_KZ"].label(value) == "woman"


def test_label_of_text_codes_and_unlabelled_codes(schema):
    assert schema["CAMEO_DEU_2015"].label("8A") == schema["CAMEO_DEU_2015"].codes["8A"]
    assert schema["OST_WEST_KZ"].label("W") == "West (former FRG)"
    # Codes without a label (missing codes, numeric values) come back as written.
    assert schema["ANREDE_KZ"].label(-1) == "-1"
    assert schema["CAMEO_DEU_2015"].label("XX") == "XX"
    assert schema["GEBURTSJAHR"].label("1970") == "1970"


def test_is_text_exactly_for_letter_coded_columns(schema):
    assert {name for name, f in schema.items() if f.is_text} == TEXT_CODED


# --- agreement with the real summary and the reference levels (skipped without ../shared) -------


@pytest.fixture(scope="module")
def shared() -> Path:
    if not (SHARED / "AZDIAS_Feature_Summary.csv").is_file():
        pytest.skip(f"the real AZDIAS feature summary is not at {SHARED} (../shared beside the repo)")
    return SHARED


def test_first_four_columns_agree_with_the_real_summary(schema, shared):
    real = read_summary(shared / "AZDIAS_Feature_Summary.csv")
    assert [spec.name for spec in real] == list(schema)
    assert real == [feature.spec for feature in schema.values()]
    # Cell for cell as published, apart from surrounding spaces (" ordinal" on RELAT_AB).
    published = (shared / "AZDIAS_Feature_Summary.csv").read_text(encoding="utf-8").splitlines()
    shipped = (DATA / "features.csv").read_text(encoding="utf-8").splitlines()
    assert [[cell.strip() for cell in line.split(";")] for line in published] == [
        line.split(";")[:4] for line in shipped]


def test_valid_codes_agree_with_the_reference_levels(schema, shared):
    path = shared / "feature_levels.csv"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter=";"))
    reference: dict[str, set[str]] = {name: set() for name in schema}
    for row in rows:
        assert row["attribute"] in schema, row
        if row["meaning"] != "unknown" and row["code"] != "numeric":
            reference[row["attribute"]].add(row["code"])
    shipped = {name: set(f.codes) for name, f in schema.items()}
    assert {n: (shipped[n], reference[n]) for n in schema if shipped[n] != reference[n]} == {}
