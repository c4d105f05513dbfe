"""Tests for analysis.inputs.summary: reading a feature summary in the published format.

The published AZDIAS_Feature_Summary.csv is semicolon-separated with list cells such as ``[-1,0]``,
``[-1,X]``, ``[XX]`` and ``[]``, and its last row reads ``RELAT_AB;community; ordinal;[-1,9]``.
Users also hand us copies saved by Excel (BOM, CRLF, Latin-1) or re-exported with commas. Every
problem must be an InputError that names the file, and where it can, the line and column.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from analysis.errors import InputError
from analysis.inputs.summary import COLUMNS, FeatureSpec, parse_missing, read_summary

HEADER = "attribute;information_level;type;missing_or_unknown"
REAL_SUMMARY = Path(__file__).resolve().parents[3] / "shared" / "azdias" / "AZDIAS_Feature_Summary.csv"

# A faithful excerpt of the published file: every kind of list cell and the stray space.
EXCERPT = "\n".join([
    HEADER,
    "AGER_TYP;person;categorical;[-1,0]",
    "ALTERSKATEGORIE_GROB;person;ordinal;[-1,0,9]",
    "GEBURTSJAHR;person;numeric;[0]",
    "GFK_URLAUBERTYP;person;categorical;[]",
    "ALTER_HH;household;interval;[0]",
    "CAMEO_DEUG_2015;microcell_rr4;categorical;[-1,X]",
    "CAMEO_DEU_2015;microcell_rr4;categorical;[XX]",
    "CAMEO_INTL_2015;microcell_rr4;mixed;[-1,XX]",
    "RELAT_AB;community; ordinal;[-1,9]",
]) + "\n"
EXCERPT_SPECS = [
    FeatureSpec("AGER_TYP", "person", "categorical", ("-1", "0")),
    FeatureSpec("ALTERSKATEGORIE_GROB", "person", "ordinal", ("-1", "0", "9")),
    FeatureSpec("GEBURTSJAHR", "person", "numeric", ("0",)),
    FeatureSpec("GFK_URLAUBERTYP", "person", "categorical", ()),
    FeatureSpec("ALTER_HH", "household", "interval", ("0",)),
    FeatureSpec("CAMEO_DEUG_2015", "microcell_rr4", "categorical", ("-1", "X")),
    FeatureSpec("CAMEO_DEU_2015", "microcell_rr4", "categorical", ("XX",)),
    FeatureSpec("CAMEO_INTL_2015", "microcell_rr4", "mixed", ("-1", "XX")),
    FeatureSpec("RELAT_AB", "community", "ordinal", ("-1", "9")),
]

EXPECT_HEADER = " Expected the header " + HEADER + " (semicolon-separated)."
EXPECT_FIELDS = " Expected 4 fields: " + HEADER + "."
EXPECT_TYPE = " Expected one of categorical, ordinal, numeric, interval, mixed."
EXPECT_LIST = " Expected a list such as [-1,0], [-1,X], [XX] or []."


def write(tmp_path: Path, data: str | bytes, name: str = "summary.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


# --- parse_missing -------------------------------------------------------------------------


@pytest.mark.parametrize(("cell", "codes"), [
    ("[-1,0]", ("-1", "0")),
    ("[-1,0,9]", ("-1", "0", "9")),
    ("[-1,X]", ("-1", "X")),
    ("[-1,XX]", ("-1", "XX")),
    ("[XX]", ("XX",)),
    ("[0]", ("0",)),
    ("[]", ()),
    ("[ ]", ()),
    (" [ -1 , 0 ] ", ("-1", "0")),
])
def test_parse_missing_reads_list_cells_as_strings(cell, codes):
    assert parse_missing(cell) == codes


@pytest.mark.parametrize(("cell", "reason"), [
    ("-1,0", "'-1,0' is not a bracketed list"),
    ("(-1,0)", "'(-1,0)' is not a bracketed list"),
    ("", "'' is not a bracketed list"),
    ("[-1;0]", "'-1;0' in '[-1;0]' is not a code"),
    ("[a b]", "'a b' in '[a b]' is not a code"),
    ("[-1,]", "'' in '[-1,]' is not a code"),
    ("[1.5]", "'1.5' in '[1.5]' is not a code"),
])
def test_parse_missing_rejects_malformed_cells(cell, reason):
    with pytest.raises(ValueError) as caught:
        parse_missing(cell)
    assert str(caught.value) == reason


# --- reading the real format -----------------------------------------------------------------


def test_reads_the_published_format(tmp_path):
    assert read_summary(write(tmp_path, EXCERPT)) == EXCERPT_SPECS


@pytest.mark.parametrize("variant", [
    pytest.param(EXCERPT.encode("utf-8-sig"), id="utf8-bom"),
    pytest.param(EXCERPT.replace("\n", "\r\n").encode("utf-8"), id="crlf"),
    pytest.param(EXCERPT.replace("\n", "\r\n").encode("utf-8-sig"), id="excel-bom-crlf"),
    pytest.param(EXCERPT.encode("latin-1"), id="latin-1"),
    pytest.param(EXCERPT.rstrip("\n").encode("utf-8"), id="no-final-newline"),
    pytest.param((EXCERPT + "\n\n;;;\n").encode("utf-8"), id="trailing-blank-lines"),
    pytest.param(EXCERPT.replace("\n", "\n\n").encode("utf-8"), id="blank-line-between-rows"),
    pytest.param("\n".join(" ; ".join(f" {cell} " for cell in line.split(";"))
                           for line in EXCERPT.splitlines()).encode("utf-8"),
                 id="spaces-around-every-cell"),
])
def test_reads_variants_of_the_published_format(tmp_path, variant):
    assert read_summary(write(tmp_path, variant)) == EXCERPT_SPECS


def test_header_with_bom_is_accepted_when_text_is_given():
    # A caller that decoded the file itself may hand over the BOM as a character.
    assert read_summary("summary.csv", text="\ufeff" + EXCERPT) == EXCERPT_SPECS


def test_text_argument_does_not_touch_the_path(tmp_path):
    absent = tmp_path / "nowhere" / "summary.csv"
    assert read_summary(absent, text=EXCERPT) == EXCERPT_SPECS


@pytest.mark.parametrize(("data", "name"), [
    pytest.param("GRÖSSE;person;ordinal;[-1]".encode("latin-1"), "GRÖSSE", id="latin-1"),
    pytest.param("GRÖSSE;person;ordinal;[-1]".encode("utf-8"), "GRÖSSE", id="utf-8"),
])
def test_non_ascii_names_decode_from_utf8_or_latin1(tmp_path, data, name):
    path = write(tmp_path, HEADER.encode("ascii") + b"\n" + data + b"\n")
    assert read_summary(path) == [FeatureSpec(name, "person", "ordinal", ("-1",))]


def test_reads_the_real_summary():
    if not REAL_SUMMARY.is_file():
        pytest.skip(f"the real feature summary is not at {REAL_SUMMARY}")
    specs = read_summary(REAL_SUMMARY)
    assert len(specs) == 85
    assert Counter(spec.kind for spec in specs) == {
        "ordinal": 49, "categorical": 21, "mixed": 7, "numeric": 7, "interval": 1}
    assert specs[0] == FeatureSpec("AGER_TYP", "person", "categorical", ("-1", "0"))
    # The published last row carries " ordinal"; the parser strips it.
    assert specs[-1] == FeatureSpec("RELAT_AB", "community", "ordinal", ("-1", "9"))
    by_name = {spec.name: spec for spec in specs}
    assert by_name["CAMEO_DEUG_2015"].missing == ("-1", "X")
    assert by_name["CAMEO_DEU_2015"].missing == ("XX",)
    assert by_name["CAMEO_INTL_2015"].missing == ("-1", "XX")
    assert by_name["KONSUMNAEHE"].missing == ()


# --- malformed input ---------------------------------------------------------------------------

ROW = "AGER_TYP;person;categorical;[-1,0]"

# (file text, problem and expectation after "file <path>[, column C][, line N]: ", column, line)
MALFORMED = [
    pytest.param(
        "attribute;level;type;missing_or_unknown\n" + ROW + "\n",
        "the header reads 'attribute;level;type;missing_or_unknown'." + EXPECT_HEADER, None, 1,
        id="wrong-header"),
    pytest.param(
        HEADER + ";description\n" + ROW + ";Age\n",
        "the header reads '" + HEADER + ";description'." + EXPECT_HEADER, None, 1,
        id="extra-header-column"),
    pytest.param(
        ROW + "\n",
        "the header reads 'AGER_TYP;person;categorical;[-1,0]'." + EXPECT_HEADER, None, 1,
        id="no-header"),
    pytest.param(
        "attribute,information_level,type,missing_or_unknown\n"
        'AGER_TYP,person,categorical,"[-1,0]"\n',
        "the header reads 'attribute,information_level,type,missing_or_unknown'." + EXPECT_HEADER,
        None, 1, id="comma-separated"),
    pytest.param(
        HEADER + "\n" + ROW + "\nANREDE_KZ;person;categorical\n",
        "the line has 3 fields." + EXPECT_FIELDS, None, 3, id="too-few-fields"),
    pytest.param(
        HEADER + "\n" + ROW + ";extra\n",
        "the line has 5 fields." + EXPECT_FIELDS, None, 2, id="too-many-fields"),
    pytest.param(
        # A semicolon inside the list splits the cell, so this is a field-count problem.
        HEADER + "\n" + ROW + "\nANREDE_KZ;person;categorical;[-1;0]\n",
        "the line has 5 fields." + EXPECT_FIELDS, None, 3, id="semicolon-inside-list"),
    pytest.param(
        HEADER + "\n" + ROW + "\n\nANREDE_KZ;person\n",
        "the line has 2 fields." + EXPECT_FIELDS, None, 4, id="line-count-includes-blank-lines"),
    pytest.param(
        HEADER + "\nAGER_TYP;person;nominal;[-1,0]\n",
        "type 'nominal' is not known." + EXPECT_TYPE, "AGER_TYP", 2, id="unknown-type"),
    pytest.param(
        HEADER + "\nAGER_TYP;person;;[-1,0]\n",
        "type '' is not known." + EXPECT_TYPE, "AGER_TYP", 2, id="empty-type"),
    pytest.param(
        HEADER + "\nAGER_TYP;person;Ordinal;[-1,0]\n",
        "type 'Ordinal' is not known." + EXPECT_TYPE, "AGER_TYP", 2, id="type-is-case-sensitive"),
    pytest.param(
        HEADER + "\n" + ROW + "\nANREDE_KZ;person;categorical;-1,0\n",
        "missing_or_unknown '-1,0' is not a bracketed list." + EXPECT_LIST, "ANREDE_KZ", 3,
        id="list-without-brackets"),
    pytest.param(
        HEADER + "\nANREDE_KZ;person;categorical;[a b]\n",
        "missing_or_unknown 'a b' in '[a b]' is not a code." + EXPECT_LIST, "ANREDE_KZ", 2,
        id="space-separated-list"),
    pytest.param(
        HEADER + "\nANREDE_KZ;person;categorical;[-1,]\n",
        "missing_or_unknown '' in '[-1,]' is not a code." + EXPECT_LIST, "ANREDE_KZ", 2,
        id="empty-code-in-list"),
    pytest.param(
        HEADER + "\nANREDE_KZ;person;categorical;\n",
        "missing_or_unknown '' is not a bracketed list." + EXPECT_LIST, "ANREDE_KZ", 2,
        id="empty-list-cell"),
    pytest.param(
        HEADER + "\n" + ROW + "\nANREDE_KZ;person;categorical;[-1,0]\n" + ROW + "\n",
        "AGER_TYP is listed twice. Expected each attribute once.", None, 4,
        id="duplicate-attribute"),
    pytest.param(
        HEADER + "\n" + ROW + "\n AGER_TYP ;person;categorical;[-1,0]\n",
        "AGER_TYP is listed twice. Expected each attribute once.", None, 3,
        id="duplicate-after-stripping"),
    pytest.param(
        HEADER + "\n ;person;categorical;[-1,0]\n",
        "the attribute name is empty. Expected a column name such as ALTERSKATEGORIE_GROB.",
        None, 2, id="empty-attribute"),
    pytest.param(
        "",
        "the feature summary is empty. Expected a header line " + HEADER + ".", None, None,
        id="empty-file"),
    pytest.param(
        " ; \n\n",
        "the feature summary is empty. Expected a header line " + HEADER + ".", None, None,
        id="blank-file"),
    pytest.param(
        HEADER + "\n",
        "the feature summary lists no features. Expected one line per feature after the header.",
        None, None, id="header-only"),
    pytest.param(
        HEADER + "\n\n;;;\n\n",
        "the feature summary lists no features. Expected one line per feature after the header.",
        None, None, id="header-and-blank-lines"),
]


@pytest.mark.parametrize(("text", "problem", "column", "line"), MALFORMED)
def test_malformed_summary_raises_input_error(tmp_path, text, problem, column, line):
    path = write(tmp_path, text)
    with pytest.raises(InputError) as caught:
        read_summary(path)
    where = ", ".join([f"file {path}"]
                      + ([f"column {column}"] if column else [])
                      + ([f"line {line}"] if line else []))
    assert str(caught.value) == f"{where}: {problem}"
    assert (caught.value.path, caught.value.column, caught.value.line) == (path, column, line)


def test_missing_file_raises_input_error(tmp_path):
    path = tmp_path / "AZDIAS_Feature_Summary.csv"
    with pytest.raises(InputError) as caught:
        read_summary(path)
    assert str(caught.value) == (
        f"file {path}: the file does not exist. "
        "Check the path in segments.toml, the environment or the command line.")
    assert caught.value.line is None


def test_a_directory_is_not_a_summary(tmp_path):
    with pytest.raises(InputError) as caught:
        read_summary(tmp_path)
    assert str(caught.value).startswith(f"file {tmp_path}: the file does not exist.")


def test_string_path_is_reported_as_given(tmp_path):
    path = write(tmp_path, HEADER + "\nAGER_TYP;person;nominal;[]\n")
    with pytest.raises(InputError) as caught:
        read_summary(str(path))
    assert str(caught.value).startswith(f"file {path}, column AGER_TYP, line 2: ")


def test_columns_constant_matches_the_published_header():
    assert ";".join(COLUMNS) == HEADER
