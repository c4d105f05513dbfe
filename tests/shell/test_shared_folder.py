"""Faults a shared analysis folder meets (issue 14): two runs at once, a full or read-only disk,
inputs that change during a run, SIGTERM and SIGKILL, hostile text, settings that make no sense.

Every case checks the message, the exit status, and that the previous results (or site, or
output file) are byte-identical afterwards with no temporary files left beside them.
"""
from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from analysis import assemble, pipeline
from analysis.errors import EXIT_BUSY, EXIT_INPUT, EXIT_TERMINATED, EXIT_WRITE
from analysis.shell import lock, render, store
from analysis.shell.cli import main
from analysis.constants import RESULTS_FILE
from damage import valid_files, write_files

pytestmark = pytest.mark.usefixtures("cheap_k")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    return valid_files(tmp_path_factory.mktemp("shared") / "data", population=400, customers=150, seed=3)


@pytest.fixture(scope="module")
def baseline(valid, tmp_path_factory) -> Path:
    """in/ (the inputs) and out/_results (one complete run on them), copied by each test."""
    base = tmp_path_factory.mktemp("baseline")
    paths = write_files(base / "in", valid)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEGMENTS_K_MAX", "4")
        assert main(["--quiet", "run", *flags(paths), "--out", str(base / "out" / "_results")]) == 0
    return base


def flags(paths: dict[str, Path]) -> list[str]:
    return ["--population", str(paths["population"]), "--customers", str(paths["customers"]),
            "--feature-summary", str(paths["summary"]), "--k", "3"]


@pytest.fixture
def previous(baseline, tmp_path):
    """A private copy of the baseline: (input paths, results folder, its snapshot)."""
    shutil.copytree(baseline, tmp_path / "case")
    base = tmp_path / "case"
    paths = {role: base / "in" / f"{role}.csv" for role in ("population", "customers", "summary")}
    out = base / "out" / "_results"
    return paths, out, snapshot(out)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def hidden(parent: Path) -> list[str]:
    """Temporary folders, lock files: anything hidden beside the results."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def run(paths, out, *extra) -> int:
    return main(["--quiet", "run", *flags(paths), "--out", str(out), *extra])


# --- 1. two runs at once ------------------------------------------------------------------------

HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from analysis.shell.lock import claim_folder
    with claim_folder(Path(sys.argv[1]), wait=0):
        print("holding", flush=True)
        time.sleep(float(sys.argv[2]))
""")


def hold_lock(target: Path, seconds: float) -> subprocess.Popen:
    """Another process (another analyst's run) holding the lock on ``target``."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(target), str(seconds)], stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline().strip() == "holding"
    return holder


def test_second_run_stops_naming_the_first_then_takes_over_its_stale_lock(previous, monkeypatch, capsys):
    paths, out, before = previous
    holder = hold_lock(out, 60)
    monkeypatch.setenv("SEGMENTS_LOCK_WAIT", "0.3")
    try:
        capsys.readouterr()
        assert run(paths, out, "--force") == EXIT_BUSY
        err = capsys.readouterr().err
        assert f"segments: note: waiting up to 0.3 s for process {holder.pid} on host {socket.gethostname()}" in err
        assert (f"segments: error: another segments run is writing {out}: process {holder.pid} on host "
                f"{socket.gethostname()}, started 20") in err
        assert f"delete the lock file {lock.lock_path(out)}" in err
        assert f"The previous results in {out} were kept." in err
        assert snapshot(out) == before
    finally:
        holder.kill()  # SIGKILL: its lock file stays behind
        holder.wait()
    assert hidden(out.parent) == ["._results.lock"]
    assert run(paths, out) == 0
    err = capsys.readouterr().err
    assert f"segments: note: took over the lock on {out} left by process {holder.pid}" in err
    assert "which is no longer running" in err
    assert snapshot(out) == before and hidden(out.parent) == []


def test_second_run_waits_for_the_first_to_finish(previous, monkeypatch, capsys):
    paths, out, before = previous
    holder = hold_lock(out, 1.0)
    monkeypatch.setenv("SEGMENTS_LOCK_WAIT", "60")
    capsys.readouterr()
    assert run(paths, out) == 0  # up to date once it gets the folder
    holder.wait()
    err = capsys.readouterr().err
    assert f"waiting up to 60 s for process {holder.pid}" in err
    assert snapshot(out) == before and hidden(out.parent) == []


def fake_quarto(folder: Path) -> Path:
    """A stand-in for quarto that writes a one-page site into --output-dir."""
    script = folder / "quarto"
    script.write_text('#!/bin/sh\nmkdir -p "$3" && echo "<p>new</p>" > "$3/index.html"\n')
    script.chmod(0o755)
    return script


def test_report_on_a_site_in_use_stops_then_takes_over_a_stale_lock(previous, tmp_path, monkeypatch, capsys):
    paths, out, _ = previous
    project = tmp_path / "project"
    (project / "_site").mkdir(parents=True)
    (project / "_quarto.yml").write_text("project:\n  type: website\n")
    (project / "_site" / "index.html").write_text("<p>previous</p>")
    site = project / "_site"
    before = snapshot(site)
    monkeypatch.chdir(project)
    monkeypatch.setattr(render, "find_quarto", lambda: str(fake_quarto(tmp_path)))
    monkeypatch.setenv("SEGMENTS_LOCK_WAIT", "0")
    holder = hold_lock(site, 60)
    try:
        capsys.readouterr()
        assert main(["--quiet", "report", *flags(paths), "--out", str(out)]) == EXIT_BUSY
        err = capsys.readouterr().err
        assert f"another segments run is writing {site}: process {holder.pid}" in err
        assert f"The existing {site} was kept." in err
        assert snapshot(site) == before
    finally:
        holder.kill()
        holder.wait()
    assert main(["--quiet", "report", *flags(paths), "--out", str(out)]) == 0
    assert f"took over the lock on {site} left by process {holder.pid}" in capsys.readouterr().err
    assert (site / "index.html").read_text().strip() == "<p>new</p>" and hidden(project) == []


# --- 2. full disk, read-only folder, no permission ----------------------------------------------

def raising(code: int):
    def write(*args, **kwargs):
        raise OSError(code, os.strerror(code))
    return write


def test_full_disk_while_writing_results(previous, monkeypatch, capsys):
    paths, out, before = previous
    monkeypatch.setattr(assemble.joblib, "dump", raising(errno.ENOSPC))  # the results step writes the model
    capsys.readouterr()
    assert run(paths, out, "--force") == EXIT_WRITE
    err = capsys.readouterr().err
    assert (f"segments: error: cannot write {out}: no space is left on the device (ENOSPC) in {out.parent}. "
            "It needs at least ") in err
    assert "the previous version takes " in err and " are free there." in err
    assert "Nothing was half-written and the temporary files were removed." in err
    assert f"The previous results in {out} were kept." in err
    assert snapshot(out) == before and hidden(out.parent) == []


def test_read_only_folder_is_reported_before_the_analysis(previous, monkeypatch, capsys):
    paths, out, before = previous
    monkeypatch.setattr(store.tempfile, "mkdtemp", raising(errno.EROFS))
    monkeypatch.setattr(pipeline, "prepare", lambda *a: pytest.fail("the analysis ran"))
    capsys.readouterr()
    assert run(paths, out, "--force") == EXIT_WRITE
    err = capsys.readouterr().err
    assert f"cannot write {out}: the file system is read-only (EROFS) in {out.parent}." in err
    assert snapshot(out) == before and hidden(out.parent) == []


def test_no_permission_for_the_lock_is_a_write_error(previous, monkeypatch, capsys):
    paths, out, before = previous
    monkeypatch.setattr(lock.os, "link", raising(errno.EACCES))
    assert run(paths, out) == EXIT_WRITE
    assert f"cannot write {out}: permission to write is denied (EACCES)" in capsys.readouterr().err
    assert snapshot(out) == before and hidden(out.parent) == []


def test_full_disk_while_writing_assign_output(previous, tmp_path, monkeypatch, capsys):
    paths, out, _ = previous
    target = tmp_path / "scored.csv"
    target.write_text("earlier output\n")
    monkeypatch.setattr(pd.DataFrame, "to_csv", raising(errno.ENOSPC))
    capsys.readouterr()
    assert main(["--quiet", "assign", str(paths["customers"]), "--results", str(out), "--out", str(target)]) \
        == EXIT_WRITE
    err = capsys.readouterr().err
    assert f"cannot write {target}: no space is left on the device (ENOSPC) in {tmp_path}." in err
    assert f"The existing {target} was kept." in err
    assert target.read_text() == "earlier output\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".scored")] == []


def test_an_unreadable_input_is_not_called_a_write_error(tmp_path):
    """Permission denied on a file outside the output folder is not the output's fault."""
    denied = OSError(errno.EACCES, "Permission denied", str(tmp_path / "elsewhere" / "in.csv"))
    assert store.write_failure(denied, tmp_path / "out" / "_results", 0) is None


@pytest.fixture
def small_disk(tmp_path):
    """A real 2 MB tmpfs (root only); skipped where mounting is not allowed."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


@pytest.mark.slow  # a second process or a real file system, and full analysis runs
def test_real_small_disk_full_and_read_only(previous, small_disk, capsys):
    paths, out, _ = previous
    target = small_disk / "_results"
    assert run(paths, target) == 0  # the results fit once
    before = snapshot(target)
    filler = small_disk / "filler"
    free = shutil.disk_usage(small_disk).free
    filler.write_bytes(b"\0" * (free - 8192))  # leave too little for a second copy
    capsys.readouterr()
    assert run(paths, target, "--force") == EXIT_WRITE
    err = capsys.readouterr().err
    assert f"cannot write {target}: no space is left on the device (ENOSPC) in {small_disk}." in err
    assert snapshot(target) == before and hidden(small_disk) == []
    filler.unlink()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    assert run(paths, target, "--force") == EXIT_WRITE
    assert f"cannot write {target}: the file system is read-only (EROFS)" in capsys.readouterr().err
    assert snapshot(target) == before and hidden(small_disk) == []


# --- 3. inputs that change during the run -------------------------------------------------------

def test_input_changed_during_the_run_keeps_previous_results(previous, monkeypatch, capsys):
    paths, out, before = previous
    real = pipeline.fit_levels

    def export_arrives(*args, **kwargs):  # someone overwrites the customers file mid-run
        data = paths["customers"].read_bytes()
        paths["customers"].write_bytes(data + data.split(b"\n")[1] + b"\n")
        return real(*args, **kwargs)
    monkeypatch.setattr(pipeline, "fit_levels", export_arrives)
    capsys.readouterr()
    assert run(paths, out, "--force") == EXIT_INPUT
    err = capsys.readouterr().err
    assert (f"segments: error: file {paths['customers']}: the file changed while the analysis was reading it"
            in err)
    assert f"The previous results in {out} were kept." in err
    assert snapshot(out) == before and hidden(out.parent) == []


def test_touching_an_input_without_changing_it_does_not_stop_the_run(previous, monkeypatch):
    paths, out, _ = previous
    real = pipeline.fit_levels

    def touch(*args, **kwargs):
        os.utime(paths["population"])
        return real(*args, **kwargs)
    monkeypatch.setattr(pipeline, "fit_levels", touch)
    assert run(paths, out, "--force") == 0


# --- 4. SIGTERM and SIGKILL ---------------------------------------------------------------------

SLOW_RUN = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from analysis import pipeline
    from analysis.shell.cli import main

    def stuck(*args, **kwargs):  # the long final clustering of a big run
        Path(sys.argv[1]).touch()
        time.sleep(120)
    pipeline.fit_levels = stuck
    sys.exit(main(sys.argv[2:]))
""")


def start_slow_run(paths, out, ready: Path) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", SLOW_RUN, str(ready), "--quiet", "run", *flags(paths),
                              "--out", str(out), "--force"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not ready.exists():
        assert child.poll() is None, child.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return child


@pytest.mark.slow  # a second process or a real file system, and full analysis runs
def test_sigterm_cleans_up_like_ctrl_c(previous, tmp_path):
    paths, out, before = previous
    child = start_slow_run(paths, out, tmp_path / "ready")
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=60)
    assert child.returncode == EXIT_TERMINATED
    assert f"segments: terminated (SIGTERM). The previous results in {out} were kept." in err
    assert "Traceback" not in err
    assert snapshot(out) == before and hidden(out.parent) == []


@pytest.mark.slow  # a second process or a real file system, and full analysis runs
def test_next_run_removes_what_a_sigkill_left(previous, tmp_path, capsys):
    paths, out, before = previous
    mine = out.parent / "._results.new-mine"  # the user's own folder with the same look: never touched
    mine.mkdir()
    child = start_slow_run(paths, out, tmp_path / "ready")
    child.kill()
    child.communicate(timeout=60)
    left = [name for name in hidden(out.parent) if name.startswith("._results.new-") and name != mine.name]
    assert len(left) == 1 and "._results.lock" in hidden(out.parent)
    capsys.readouterr()
    assert run(paths, out) == 0
    err = capsys.readouterr().err
    assert f"took over the lock on {out} left by process {child.pid}" in err
    assert f"segments: note: removed {out.parent / left[0]}, a temporary folder left by an interrupted run" in err
    assert snapshot(out) == before and hidden(out.parent) == [mine.name]


def test_previous_results_caught_mid_swap_are_put_back(previous, capsys):
    """Killed between the two renames of a swap: the previous results sit in .NAME.old-*."""
    paths, out, before = previous
    old = Path(tempfile.mkdtemp(prefix="._results.old-", dir=out.parent))
    os.replace(out, old / "_results")
    (old / store.MARKER).write_text('{"pid": 999999999, "host": "%s"}' % socket.gethostname())
    capsys.readouterr()
    assert run(paths, out) == 0  # put back, then found up to date
    err = capsys.readouterr().err
    assert f"segments: note: put back the previous {out} from {old}" in err
    assert snapshot(out) == before and hidden(out.parent) == []


# --- 5. hostile text ----------------------------------------------------------------------------

HOSTILE_COLUMN = "<script>alert(1)</script>"
HOSTILE_NAME = "pop #1 **bold** #set text(red) $x$ @cite `tick` <b>&amp;.csv"


@pytest.fixture(scope="module")
def hostile(valid, tmp_path_factory):
    """Inputs in a folder with spaces and '#', a population file with a hostile name and extra column."""
    folder = tmp_path_factory.mktemp("hostile") / "shared drive #2"
    paths = write_files(folder, valid)
    population = paths["population"].with_name(HOSTILE_NAME)
    lines = paths["population"].read_bytes().split(b"\n")
    extra = [lines[0] + b";" + HOSTILE_COLUMN.encode()] + [line + b";**x** #set $y$" for line in lines[1:] if line]
    population.write_bytes(b"\n".join(extra) + b"\n")
    paths["population"].unlink()
    return {**paths, "population": population}


def test_validate_shows_hostile_names_literally(hostile, capsys):
    capsys.readouterr()
    assert main(["--quiet", "validate", *flags(hostile)[:-2]]) == 0
    out = capsys.readouterr().out
    assert f"Population: {hostile['population']}" in out
    assert f"note: extra columns ignored: {HOSTILE_COLUMN}" in out


@pytest.fixture(scope="module")
def hostile_results(hostile, tmp_path_factory):
    out = tmp_path_factory.mktemp("hostile-out") / "results #1 <b>"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEGMENTS_K_MAX", "4")
        assert main(["--quiet", "run", *flags(hostile), "--out", str(out)]) == 0
    return out


def page_markdown(folder: Path) -> str:
    """The markdown every words helper gives the pages for this results folder."""
    from analysis.present import words
    from analysis.results import load_results
    res = load_results(folder)
    helpers = ["sources_table", "fingerprint_table", "settings_table", "source_callout",
               "dropped_table", "versions_table"]
    return "\n\n".join(getattr(words, name)(res) for name in helpers)


def test_report_markdown_escapes_file_names(hostile_results):
    markdown = page_markdown(hostile_results)
    escaped = (r"pop \#1 \*\*bold\*\* \#set text(red) \$x\$ \@cite \`tick\` \<b\>\&amp;.csv")
    assert escaped in markdown
    assert HOSTILE_NAME not in markdown


@pytest.mark.skipif(shutil.which("quarto") is None, reason="quarto (with its pandoc) not on PATH")
@pytest.mark.parametrize("to", ["html", "typst"])
def test_rendered_pages_show_hostile_names_literally(hostile_results, tmp_path, to):
    source = tmp_path / "page.md"
    source.write_text(page_markdown(hostile_results), encoding="utf-8")
    done = subprocess.run(["quarto", "pandoc", str(source), "-f", "markdown", "-t", to, "--wrap=none"], capture_output=True,
                          text=True, check=True)
    if to == "html":
        assert "pop #1 **bold** #set text(red) $x$ @cite `tick` &lt;b&gt;&amp;amp;.csv" in done.stdout
        assert "<b>" not in done.stdout and "<strong>bold" not in done.stdout and "<code>" not in done.stdout
    else:  # Typst: each markup character escaped, no #set command, no math or reference
        assert r"pop \#1 \*\*bold\*\* \#set text(red) \$x\$ \@cite \`tick\` \<b\>&amp;.csv" in done.stdout


# --- 6. settings that make no sense ------------------------------------------------------------

@pytest.mark.parametrize("env, says", [
    ({"SEGMENTS_K": "1"}, "the setting k is out of range: it is 1. Expected an integer of at least 2."),
    ({"SEGMENTS_ROW_MISSING_THRESHOLD": "-0.1"},
     "the setting row_missing_threshold is out of range: it is -0.1. Expected a share above 0 and at most 1"),
    ({"SEGMENTS_VARIANCE_TARGET": "1.5"}, "the setting variance_target is out of range: it is 1.5."),
    ({"SEGMENTS_K_MIN": "9"}, "the setting k_min/k_max is out of range: it is 9/4. Expected 2 <= k_min < k_max"),
    ({"SEGMENTS_SEED": "-3"}, "the setting seed is out of range: it is -3. Expected an integer of at least 0."),
])
def test_settings_that_make_no_sense_are_refused_before_any_work(previous, monkeypatch, capsys, env, says):
    paths, out, before = previous
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(pipeline, "resolve_inputs", lambda *a: pytest.fail("work started"))
    capsys.readouterr()
    argv = ["--quiet", "run", *flags(paths)[:-2], "--out", str(out)]
    assert main(argv) == EXIT_INPUT
    err = capsys.readouterr().err
    assert says in err
    assert snapshot(out) == before and hidden(out.parent) == []


def test_k_larger_than_the_rows_allow(previous, capsys):
    paths, out, before = previous
    capsys.readouterr()
    assert main(["--quiet", "run", *flags(paths)[:-2], "--k", "400", "--out", str(out)]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert "rows are complete enough to cluster, and the setting k is 400. Expected at least" in err
    assert snapshot(out) == before and hidden(out.parent) == []


@pytest.mark.slow  # renders the whole site and PDF
@pytest.mark.skipif(render.find_quarto() is None, reason="quarto is not installed")
def test_rendered_site_and_pdf_show_hostile_names_literally(hostile_results, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "_quarto.yml", project)
    shutil.copytree(ROOT / "report", project / "report")
    env = {**os.environ, "SEGMENTS_RESULTS": str(hostile_results), "SEGMENTS_ANALYSED": "1",
           "QUARTO_PYTHON": sys.executable}
    env.pop("MPLBACKEND", None)
    done = subprocess.run([render.find_quarto(), "render"], cwd=project, env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    pages = {p.name: p.read_text(encoding="utf-8") for p in (project / "_site").rglob("*.html")}
    literal = "pop #1 **bold** #set text(red) $x$ @cite `tick` &lt;b&gt;&amp;amp;.csv"
    assert literal in pages["data.html"] and literal in pages["method.html"]
    assert not any("<script>alert" in text or "<b>&amp;" in text for text in pages.values())
    pdf = project / "_site" / "report" / "full-report.pdf"
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True).stdout
        assert "pop #1 **bold** #set text(red) $x$ @cite `tick`" in text  # a table cell: wrapped
        assert "<b>&amp;.csv" in text
