"""The real render: `segments report` on the session's small cached analysis, once per session.

Needs a ``quarto`` command (the Quarto kit, set up by ``.ci/run``); the tests that use it skip
with the reason otherwise. The project copy keeps its ``_freeze/`` so that a test can copy it
and render again.
"""
from __future__ import annotations

import pytest

from analysis.results import load_results
from analysis.shell.render import find_quarto
from rendering import NO_QUARTO, Rendered, make_project, segments_report


@pytest.fixture(scope="session")
def rendered(tmp_path_factory, small_data, small_results) -> Rendered:
    """The site and PDF rendered by `segments report` from the session's cached small analysis."""
    if find_quarto() is None:
        pytest.skip(NO_QUARTO)
    project = make_project(tmp_path_factory.mktemp("render") / "project", small_data, small_results)
    done = segments_report(project)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]
    assert "up to date" in log  # the cached analysis was reused: this is the render alone
    return Rendered(project, log, load_results(project / "_results"))
