"""The ``segments`` command end to end: validate, the results cache, data quality, assign.

Runs use small generated files with ``--k 3`` and only k = 2..4 scanned, so each takes a
couple of seconds; ``assign`` reuses the session's analysis (``small_results``).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis.shell.cli import EXIT_INPUT, main
from analysis.constants import RESULTS_FILE, SET_ASIDE
from analysis.prepare import cleaning
from damage import Files, set_field, valid_files

SEGMENTS = Path(sys.executable).parent / "segments"


pytestmark = pytest.mark.usefixtures("cheap_k")

@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> Files:
    return valid_files(tmp_path_factory.mktemp("cli") / "data", population=2_000, customers=500, seed=3)


@pytest.fixture
def inputs(tmp_path, valid) -> dict[str, Path]:
    paths = {role: tmp_path / f"{role}.csv" for role in valid}
    for role, path in paths.items():
        path.write_bytes(valid[role])
    return paths


def data_flags(paths: dict[str, Path]) -> list[str]:
    return ["--population", str(paths["population"]), "--customers", str(paths["customers"]),
            "--feature-summary", str(paths["summary"])]


def run(paths: dict[str, Path], out: Path, capsys, *extra: str) -> str:
    """``segments run`` with --k 3; returns stderr (the progress lines)."""
    capsys.readouterr()
    assert main(["run", *data_flags(paths), "--k", "3", "--out", str(out), *extra]) == 0
    return capsys.readouterr().err


def test_validate_prints_a_quality_summary(inputs, capsys):
    assert main(["--quiet", "validate", *data_flags(inputs)]) == 0
    out = capsys.readouterr().out
    for fragment in ("Population:", "2,000 rows, 85 features", "Customers:", "500 rows",
                     "duplicate rows: 0", "rows set aside for missing data", "Columns dropped",
                     "OK: both files can be analysed."):
        assert fragment in out
    dropped = out.split("Columns dropped (")[1].split("Cleaned matrix")[0].splitlines()[1:]
    reasons = dict(line.strip().split(": ", 1) for line in dropped)
    assert len(reasons) == int(out.split("Columns dropped (")[1].split(")")[0])
    assert reasons["CAMEO_DEU_2015"].startswith("its 44 detailed types")  # words, not a reason code
    assert not set(reasons.values()) & set(cleaning.REASONS)


# --- cache -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_second_run_is_served_from_the_cache(inputs, tmp_path, capsys):
    out = tmp_path / "_results"
    assert "results written to" in run(inputs, out, capsys)
    first = (out / RESULTS_FILE).read_bytes()
    assert "are up to date" in run(inputs, out, capsys)
    assert (out / RESULTS_FILE).read_bytes() == first


def flip_customer_byte(paths: dict[str, Path]) -> list[str]:
    """Change one digit of the first customer: 1 <-> 2."""
    data = bytearray(paths["customers"].read_bytes())
    at = next(i for i in range(data.index(b"\n"), len(data)) if data[i] in b"12")
    data[at] = b"21"[data[at] - ord("1")]
    paths["customers"].write_bytes(bytes(data))
    return []


def touch_summary_spaces(paths: dict[str, Path]) -> list[str]:
    paths["summary"].write_bytes(paths["summary"].read_bytes().replace(b";ordinal;", b"; ordinal;", 1))
    return []


@pytest.mark.slow
@pytest.mark.parametrize("change", [
    flip_customer_byte,
    touch_summary_spaces,
    lambda paths: ["--seed", "1"],
    lambda paths: ["--k", "2"],
], ids=["one byte of customers", "feature summary", "seed", "k"])
def test_changed_data_or_setting_is_recomputed(inputs, tmp_path, capsys, change):
    out = tmp_path / "_results"
    run(inputs, out, capsys)
    before = json.loads((out / RESULTS_FILE).read_text())
    err = run(inputs, out, capsys, *change(inputs))
    assert "results written to" in err and "up to date" not in err
    assert json.loads((out / RESULTS_FILE).read_text())["cache_key"] != before["cache_key"]


@pytest.mark.slow
def test_changed_environment_setting_is_recomputed(inputs, tmp_path, capsys, monkeypatch):
    out = tmp_path / "_results"
    run(inputs, out, capsys)
    monkeypatch.setenv("SEGMENTS_ROW_MISSING_THRESHOLD", "0.5")
    assert "results written to" in run(inputs, out, capsys)


# --- data quality end to end -----------------------------------------------------------------


@pytest.mark.slow
def test_unknown_codes_duplicates_and_extra_columns_reach_the_results(inputs, tmp_path, capsys):
    data = inputs["population"].read_bytes()
    for line in (10, 20, 30):
        data = set_field(data, line, "FINANZTYP", b"77")  # FINANZTYP codes are 1..6
    lines = data.split(b"\n")
    lines = [lines[0] + b";CUSTOMER_ID", *(l + b";%d" % i for i, l in enumerate(lines[1:-1]))]
    inputs["population"].write_bytes(b"\n".join(lines + [lines[1], lines[2], b""]))  # 2 duplicates
    out = tmp_path / "_results"
    err = run(inputs, out, capsys)
    assert "population.csv: extra columns ignored: CUSTOMER_ID" in err
    summary = json.loads((out / RESULTS_FILE).read_text())
    assert summary["cleaning"]["out_of_range"]["population"] == 3
    assert summary["cleaning"]["out_of_range"]["customers"] == 0
    checks = summary["data"]["checks"]["population"]
    assert checks["extra_columns"] == ["CUSTOMER_ID"] and checks["duplicate_rows"] == 2
    quality = pd.read_parquet(out / "tables" / "quality_population.parquet").set_index("feature")
    assert quality.at["FINANZTYP", "out_of_range"] == 3


# --- assign ----------------------------------------------------------------------------------


@pytest.fixture
def mailing_list(small_data, tmp_path) -> Path:
    """200 customers with an ID column first, three of them with every feature blank."""
    lines = small_data.customers.read_bytes().split(b"\n")[:201]
    blank = b";" * (lines[0].count(b";"))
    rows = [b"%05d;" % i + (blank if i in (3, 50, 199) else line) for i, line in enumerate(lines[1:])]
    path = tmp_path / "mailing.csv"
    path.write_bytes(b"\n".join([b"CUSTOMER_ID;" + lines[0], *rows, b""]))
    return path


def assign(results: Path, source: Path, out: Path) -> int:
    return main(["--quiet", "assign", str(source), "--out", str(out), "--results", str(results)])


def test_assign_keeps_row_order_ids_and_sets_rows_aside(small_results, mailing_list, tmp_path):
    assert assign(small_results, mailing_list, tmp_path / "out.csv") == 0
    out = pd.read_csv(tmp_path / "out.csv", sep=";", dtype={"CUSTOMER_ID": str})
    assert out.columns.tolist() == ["CUSTOMER_ID", "segment", "segment_name", "segment_index", "group",
                                    "group_name", "group_index", "type", "type_name", "type_index", "set_aside",
                                    "lookalike_score", "lookalike_decile"]
    assert out["CUSTOMER_ID"].tolist() == [f"{i:05d}" for i in range(200)]
    aside = out.set_index("CUSTOMER_ID").loc[["00003", "00050", "00199"]]
    assert (aside["segment"] == SET_ASIDE).all()
    assert aside["segment_name"].str.startswith("Set aside").all()
    assert (aside["type"] == "X").all() and (aside["group"] == "X").all() and (aside["set_aside"] == 1).all()
    # set-aside rows are marked apart: no index, so ranking by index never puts them first
    assert aside[["segment_index", "group_index", "type_index"]].isna().all().all()
    placed = out[out["set_aside"] == 0]
    assert out["segment"].between(SET_ASIDE, 40).all() and placed["type_index"].notna().all()
    assert (placed["type"].str[0] == placed["group"]).all()  # every type sits in its group

    lines = mailing_list.read_bytes().split(b"\n")
    shuffled = tmp_path / "shuffled.csv"
    shuffled.write_bytes(b"\n".join([lines[0], *reversed(lines[1:-1]), b""]))
    assert assign(small_results, shuffled, tmp_path / "out2.csv") == 0
    again = pd.read_csv(tmp_path / "out2.csv", sep=";", dtype={"CUSTOMER_ID": str})
    assert again["CUSTOMER_ID"].tolist() == out["CUSTOMER_ID"].tolist()[::-1]
    assert again["segment"].tolist() == out["segment"].tolist()[::-1]
    # Scores belong to rows, not to positions in a batch: reversed input, reversed scores.
    assert again["lookalike_score"].tolist() == out["lookalike_score"].tolist()[::-1]
    assert again["lookalike_decile"].tolist() == out["lookalike_decile"].tolist()[::-1]


def test_assign_scores_every_row_and_identical_rows_alike(small_results, mailing_list, tmp_path):
    lines = mailing_list.read_bytes().split(b"\n")
    body = lines[1:-1]
    # Row 7 copied to the end under another id: the same features must give the same score.
    fields = body[7].split(b";")
    copy = b";".join([b"99999", *fields[1:]])
    doubled = tmp_path / "doubled.csv"
    doubled.write_bytes(b"\n".join([lines[0], *body, copy, b""]))
    assert assign(small_results, doubled, tmp_path / "out.csv") == 0
    out = pd.read_csv(tmp_path / "out.csv", sep=";", dtype={"CUSTOMER_ID": str}).set_index("CUSTOMER_ID")
    assert out.loc["99999", "lookalike_score"] == out.loc["00007", "lookalike_score"]
    assert out.loc["99999", "lookalike_decile"] == out.loc["00007", "lookalike_decile"]
    # Set-aside rows are scored too; deciles run 1..10 and follow the score (higher = nearer 1).
    assert out["lookalike_score"].notna().all() and (out["lookalike_score"] > 0).all()
    assert out["lookalike_decile"].between(1, 10).all()
    ranked = out.sort_values("lookalike_score")
    assert ranked["lookalike_decile"].is_monotonic_decreasing


def test_assign_bad_input_keeps_the_existing_output(small_results, mailing_list, tmp_path, capsys):
    mailing_list.write_bytes(set_field(mailing_list.read_bytes(), 40, "SEMIO_REL", b"religious"))
    target = tmp_path / "out.csv"
    target.write_text("before")
    assert assign(small_results, mailing_list, target) == EXIT_INPUT
    err = capsys.readouterr().err
    assert err.startswith(f"segments: error: file {mailing_list}, column SEMIO_REL, line 40: ")
    assert f"The existing {target} was kept." in err
    assert target.read_text() == "before"


def test_assign_without_a_model(tmp_path, mailing_list, capsys):
    assert assign(tmp_path / "nothing", mailing_list, tmp_path / "out.csv") == EXIT_INPUT
    err = capsys.readouterr().err
    assert "no fitted model found" in err and "Run 'segments run' first" in err
    assert not (tmp_path / "out.csv").exists()


def test_assign_with_a_damaged_model(small_results, tmp_path, mailing_list, capsys):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "model.joblib").write_bytes((small_results / "model.joblib").read_bytes()[:500])
    assert assign(tmp_path / "results", mailing_list, tmp_path / "out.csv") == EXIT_INPUT
    assert "the fitted model cannot be read" in capsys.readouterr().err


# --- the installed command -------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("damage, says", [
    (lambda paths: paths["population"].unlink(), "the file does not exist"),
    (lambda paths: paths["customers"].write_bytes(b"\xff\xfeA\x00"), "not plain text"),
])
def test_installed_command_exits_2_without_traceback(inputs, damage, says):
    damage(inputs)
    done = subprocess.run([str(SEGMENTS), "--quiet", "validate", *data_flags(inputs)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == EXIT_INPUT
    assert done.stderr.startswith("segments: error: file ") and says in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
