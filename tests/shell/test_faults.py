"""Faults: a failing or interrupted run loses nothing, and damaged files never crash the tool.

* A stage that raises (a bug) or a Ctrl-C mid-run leaves the previous results folder exactly
  as it was, leaves no temporary folders behind, and the message says the results were kept.
* Property: random damage to a small valid file gives either a clean result or a clear error
  (exit 2, ``segments: error:`` naming the damaged file, no traceback), never a crash; a full
  run on damaged files leaves either the previous complete results or new complete ones.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis import assemble, pipeline
from analysis import refresh as refresh_module
from analysis.shell.cli import EXIT_BUG, EXIT_INPUT, EXIT_INTERRUPTED, main
from analysis.constants import MODEL_FILE, RESULTS_FILE
from damage import Files, valid_files, write_files

ROLES = ("population", "customers", "summary")
FILE_KEYS = {"population": "population", "customers": "customers", "summary": "feature_summary"}
SEPARATORS = (b";", b"\n", b"\r\n", b'"', b",", b"\t")


pytestmark = pytest.mark.usefixtures("cheap_k")

@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> Files:
    """Small valid inputs: damage makes copies of these."""
    return valid_files(tmp_path_factory.mktemp("faults") / "data", population=400, customers=150, seed=2)


def data_flags(paths: dict[str, Path]) -> list[str]:
    return ["--population", str(paths["population"]), "--customers", str(paths["customers"]),
            "--feature-summary", str(paths["summary"])]


def run_cli(paths: dict[str, Path], out: Path, *extra: str) -> int:
    return main(["--quiet", "run", *data_flags(paths), "--k", "3", "--out", str(out), *extra])


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of a results folder with its content."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


@pytest.fixture
def previous(tmp_path, valid) -> tuple[dict[str, Path], Path, dict[str, bytes]]:
    """Inputs, a results folder of one complete run on them, and its snapshot."""
    paths = write_files(tmp_path / "in", valid)
    out = tmp_path / "out" / "_results"
    assert run_cli(paths, out) == 0
    return paths, out, snapshot(out)


def refresh(path: Path) -> None:
    """New data, as a refreshed export would bring: one more row (a copy of the first)."""
    data = path.read_bytes()
    path.write_bytes(data + data.split(b"\n")[1] + b"\n")


def fail_in_stage(monkeypatch, error: BaseException) -> None:
    """Make the fit of the types and groups raise ``error``, after the earlier stages did their work."""
    def broken(*args, **kwargs):
        raise error
    monkeypatch.setattr(pipeline, "fit_levels", broken)


@pytest.mark.slow
@pytest.mark.parametrize("error, code, says", [
    (RuntimeError("boom"), EXIT_BUG, "unexpected error (RuntimeError"),
    (KeyboardInterrupt(), EXIT_INTERRUPTED, "segments: interrupted."),
])
def test_failed_refresh_keeps_previous_results(previous, monkeypatch, capsys, error, code, says):
    paths, out, before = previous
    refresh(paths["customers"])
    fail_in_stage(monkeypatch, error)
    capsys.readouterr()
    assert run_cli(paths, out) == code
    err = capsys.readouterr().err
    assert says in err
    assert f"The previous results in {out} were kept." in err
    assert snapshot(out) == before
    assert leftovers(out.parent) == []


@pytest.mark.parametrize("mode", [(), ("--keep-model",)])
def test_interrupted_refresh_keeps_results_and_history(previous, monkeypatch, mode):
    """Ctrl-C while comparing with the previous run (either mode): results and history untouched."""
    paths, out, before = previous
    assert any(name.startswith("history/") for name in before)
    refresh(paths["population"])

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(refresh_module, "changes", interrupted)
    assert run_cli(paths, out, *mode) == EXIT_INTERRUPTED
    assert snapshot(out) == before and leftovers(out.parent) == []


@pytest.mark.slow
def test_failed_first_run_writes_nothing(tmp_path, valid, monkeypatch, capsys):
    paths = write_files(tmp_path / "in", valid)
    out = tmp_path / "out" / "_results"
    fail_in_stage(monkeypatch, KeyboardInterrupt())
    assert run_cli(paths, out) == EXIT_INTERRUPTED
    assert f"No results were written to {out}." in capsys.readouterr().err
    assert not out.exists() and leftovers(out.parent) == []


@pytest.mark.slow
def test_interrupt_while_writing_leaves_no_half_written_cache(previous, monkeypatch, capsys):
    """Ctrl-C after some tables are written: next time the run is redone, not served stale."""
    paths, out, before = previous
    refresh(paths["population"])
    real_dump = assemble.joblib.dump

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(assemble.joblib, "dump", interrupted)
    assert run_cli(paths, out) == EXIT_INTERRUPTED
    assert snapshot(out) == before and leftovers(out.parent) == []
    monkeypatch.setattr(assemble.joblib, "dump", real_dump)
    capsys.readouterr()
    assert main(["run", *data_flags(paths), "--k", "3", "--out", str(out)]) == 0
    assert "results written to" in capsys.readouterr().err
    assert json.loads((out / RESULTS_FILE).read_text())["cache_key"] != json.loads(before[RESULTS_FILE])["cache_key"]


def test_a_folder_that_is_not_ours_is_never_replaced(tmp_path, valid, capsys):
    paths = write_files(tmp_path / "in", valid)
    assert run_cli(paths, tmp_path / "in") == EXIT_INPUT  # the data folder given as --out by mistake
    err = capsys.readouterr().err
    assert "does not hold results of this tool" in err and "No results were written" in err
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == sorted(p.name for p in paths.values())


# --- property: random damage -----------------------------------------------------------------


@st.composite
def damaged(draw, valid: dict[str, bytes]) -> tuple[str, bytes]:
    """One file of ``valid`` with one random damage, as (role, new content)."""
    role = draw(st.sampled_from(ROLES))
    data = valid[role]
    at = draw(st.integers(0, len(data)))
    kind = draw(st.sampled_from(["truncate", "delete", "duplicate", "insert bytes", "insert separator",
                                 "replace field", "drop line"]))
    if kind == "truncate":
        return role, data[:at]
    if kind == "delete":
        return role, data[:at] + data[at + draw(st.integers(1, 8)):]
    if kind == "duplicate":
        return role, data[:at] + data[at:at + draw(st.integers(1, 40))] + data[at:]
    if kind == "insert bytes":
        return role, data[:at] + draw(st.binary(min_size=1, max_size=4)) + data[at:]
    if kind == "insert separator":
        return role, data[:at] + draw(st.sampled_from(SEPARATORS)) + data[at:]
    lines = data.split(b"\n")
    line = draw(st.integers(0, len(lines) - 2))
    if kind == "drop line":
        return role, b"\n".join(lines[:line] + lines[line + 1:])
    fields = lines[line].split(b";")
    fields[draw(st.integers(0, len(fields) - 1))] = draw(st.text(max_size=6)).encode()
    lines[line] = b";".join(fields)
    return role, b"\n".join(lines)


def check_outcome(code: int, out: str, err: str, damaged_path: Path) -> None:
    """A clean result or a clear error about the damaged file; never a traceback."""
    assert "Traceback" not in err, err
    assert code in (0, EXIT_INPUT), err
    if code == EXIT_INPUT:
        assert err.startswith("segments: error: ") and err.count("\n") == 1, err
        assert f"file {damaged_path}" in err, err


@pytest.mark.slow
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_damage_gives_a_result_or_a_clear_error(valid, capsys, data):
    role, content = data.draw(damaged(valid))
    with tempfile.TemporaryDirectory() as folder:
        paths = write_files(Path(folder), {**valid, role: content})
        capsys.readouterr()
        code = main(["--quiet", "validate", *data_flags(paths)])
        captured = capsys.readouterr()
        check_outcome(code, captured.out, captured.err, paths[role])
        if code == 0:
            assert captured.out.rstrip().endswith("OK: both files can be analysed.")


@pytest.fixture(scope="module")
def baseline(valid, tmp_path_factory) -> Path:
    """A folder holding the valid inputs (in/) and the complete results of one run on them."""
    base = tmp_path_factory.mktemp("baseline")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEGMENTS_K_MAX", "4")
        assert run_cli(write_files(base / "in", valid), base / "_results") == 0
    return base


def refresh_is_all_or_nothing(valid: dict[str, bytes], baseline: Path, capsys, role: str, content: bytes) -> int:
    """Refresh the baseline's results from damaged inputs; check they are old-and-complete or new-and-complete."""
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        shutil.copytree(baseline, base, dirs_exist_ok=True)
        out, paths = base / "_results", write_files(base / "in", {**valid, role: content})
        before = snapshot(out)
        capsys.readouterr()
        code = run_cli(paths, out)
        captured = capsys.readouterr()
        check_outcome(code, captured.out, captured.err, paths[role])
        assert leftovers(base) == []
        if code == 0:  # complete results for the damaged files
            summary = json.loads((out / RESULTS_FILE).read_text())
            assert summary["data"]["files"][FILE_KEYS[role]]["bytes"] == len(content)
            assert (out / MODEL_FILE).is_file()
        else:
            assert snapshot(out) == before
    return code


@pytest.mark.slow
@pytest.mark.parametrize("role, damage, code", [
    ("population", lambda d: d.replace(b"\n", b"\n\n", 5), 0),  # blank lines: skipped
    ("customers", lambda d: b"\n".join(d.split(b"\n")[:5] + d.split(b"\n")[6:]), 0),  # a line lost
    ("population", lambda d: d[:-30], EXIT_INPUT),  # cut off
    ("summary", lambda d: d.replace(b"[-1,9]", b"[-1;9]", 1), EXIT_INPUT),
])
def test_damaged_refresh_is_all_or_nothing(valid, baseline, capsys, role, damage, code):
    assert refresh_is_all_or_nothing(valid, baseline, capsys, role, damage(valid[role])) == code


@pytest.mark.slow
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_damage_never_leaves_a_partial_results_folder(valid, baseline, capsys, data):
    role, content = data.draw(damaged(valid))
    refresh_is_all_or_nothing(valid, baseline, capsys, role, content)
