"""The "Whom to mail" page's words: drivers read in the direction of their meaning."""
from __future__ import annotations

import pandas as pd
import pytest

from analysis.present import lookalike as look
from analysis.results import load_results


def row(**values) -> pd.Series:
    base = {"kind": "scale", "low_end": "keen savers", "high_end": "not savers", "label": "", "direction": 0}
    return pd.Series({**base, **values})


def test_driver_phrase_follows_the_scale_direction():
    # FINANZ_SPARER: a LOW code is the strong end, so a negative direction means "keen savers".
    assert look.driver_phrase(row(direction=-1)) == "keen savers"
    assert look.driver_phrase(row(direction=1)) == "not savers"
    assert look.driver_phrase(row(kind="flag", label="green avant-garde", direction=1)) == "more often green avant-garde"
    assert look.driver_phrase(row(direction=0)) == "no clear direction"


@pytest.mark.slow
def test_page_parts_build_from_a_run(small_results):
    res = load_results(small_results)
    assert "not a response rate" in look.what_it_is(res) and "control group" in look.what_it_is(res)
    assert look.depth_table(res).count("\n") == 1 + len(res.summary["lookalike"]["at_depth"])
    # On the demo data the planted within-segment gradient is about saving: it must show as a
    # driver, read from its strong (low-code) end.
    assert "keen savers" in look.drivers_table(res)
    for chart in (look.gains_chart, look.spread_chart, look.drivers_chart):
        assert chart(res).axes
