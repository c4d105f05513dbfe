"""The presentation layer's own logic on hand-made results: numbers and structure, not prose."""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from analysis.constants import RESULTS_FILE
from analysis.present import words
from analysis.present.words import WIDE_CELL, _wilson, k_reason, markdown_table, source_note, verdict_lists
from analysis.results import Results
from analysis.segment.kselect import BETTER_SEPARATED, ELBOW_KEPT, ELBOW_UNREPRODUCIBLE, ELBOW_UNSTABLE, FORCED, REASONS

RULE = {"window": 2, "stable_ari": 0.9, "silhouette_margin": 0.02, "n_boot": 5}
CURVES = [{"k": k, "stability_mean": s, "silhouette": sil}
          for k, s, sil in zip(range(2, 10), [1.0, 0.5, 0.7, 0.83, 0.91, 0.96, 0.5, 0.5],
                               [0.9, 0.30, 0.33, 0.29, 0.20, 0.27, 0.1, 0.1])]


def results(tmp_path, **summary) -> Results:
    (tmp_path / RESULTS_FILE).write_text(json.dumps(summary), encoding="utf-8")
    return Results(tmp_path)


def selection(k: int, reason: str, elbow: int = 5) -> dict:
    return {"k_selection": {"k": k, "elbow_k": elbow, "reason": reason, "rule": RULE, "curves": CURVES}}


def numbers(text: str) -> list[str]:
    return re.findall(r"\d+(?:\.\d+)?", text)


@pytest.mark.parametrize(("k", "reason", "wanted"), [
    (5, ELBOW_KEPT, ["5", "0.83", "0.29"]),  # the elbow's stability and silhouette
    (7, BETTER_SEPARATED, ["7", "5", "0.96", "0.27", "0.29"]),  # chosen against the elbow
    (7, ELBOW_UNREPRODUCIBLE, ["7", "5", "0.83", "0.96", "0.27"]),
    (5, ELBOW_UNSTABLE, ["5", "0.96", "0.90"]),  # the best stability within ±2 of the elbow
    (8, FORCED, ["8"]),
])
def test_k_reason_states_the_numbers_of_the_rule_that_fired(tmp_path, k, reason, wanted):
    said = numbers(k_reason(results(tmp_path, **selection(k, reason))))
    for number in wanted:
        assert number in said, (number, said)
    assert said[0] == str(k)  # it starts from the k chosen


def test_every_reason_the_analysis_can_give_has_words(tmp_path):
    texts = {reason: k_reason(results(tmp_path, **selection(5, reason))) for reason in REASONS}
    assert len(set(texts.values())) == len(REASONS)
    with pytest.raises(ValueError, match="no-such-reason"):
        k_reason(results(tmp_path, **selection(5, "no-such-reason")))


def test_source_note_follows_the_flag(tmp_path):
    demo = source_note(results(tmp_path, data={"source": "demo"}))
    user = source_note(results(tmp_path, data={"source": "user"}))
    assert demo != user and "SYNTHETIC" in demo and "SYNTHETIC" not in user


def test_verdict_lists_name_each_group_with_its_verdict(tmp_path):
    segments = [{"id": -1, "name": "Set aside", "index": 240.0, "verdict": "over-represented"},
                {"id": 0, "name": "Savers", "index": 150.0, "verdict": "over-represented"},
                {"id": 1, "name": "Students", "index": 40.0, "verdict": "under-represented"},
                {"id": 2, "name": "Middle", "index": 101.0, "verdict": "as expected"}]
    text = verdict_lists(results(tmp_path, segments=segments))
    over, under = text.split("Under-represented:")
    assert "Savers" in over and "240" in over and "150" in over and "Students" not in over
    assert "Students" in under and "40" in under
    assert "Middle" not in text and "101" not in text
    assert verdict_lists(results(tmp_path, segments=segments[3:])) == ""


def cells(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]


def test_markdown_table_keeps_cells_literal_and_aligned():
    table = pd.DataFrame({"a|b": ["x*y_z", "1,234"], "n": ["0.850", "∞"]})
    lines = markdown_table(table, "lr").splitlines()
    assert len(lines) == 4 and len({len(line) for line in (lines[0], *lines[2:])}) == 1  # padded
    assert cells(lines[0]) == ["a\\|b", "n"]
    assert re.fullmatch(r":-+", cells(lines[1])[0]) and re.fullmatch(r"-+:", cells(lines[1])[1])
    assert cells(lines[2]) == ["x\\*y\\_z", "0.850"]  # markdown escaped, not re-read as a number
    assert cells(lines[3]) == ["1,234", "∞"]


def test_long_sentences_do_not_squeeze_short_columns():
    """Pandoc sizes columns by the dashes under the header: a column of long sentences gets at
    most WIDE_CELL of them, a short column its longest cell, and no column less than its longest word."""
    table = pd.DataFrame({"Step": ["Missing data: features"], "Feature": ["GEBURTSJAHR"],
                          "Reason": ["missing for 44.0% of the population, " * 5]})
    dashes = [len(cell.strip(":")) for cell in cells(markdown_table(table).splitlines()[1])]
    assert dashes == [len("Missing data: features"), len("GEBURTSJAHR"), WIDE_CELL]
    narrow = pd.DataFrame({"Word": ["x" * (WIDE_CELL + 10)]})
    assert len(cells(markdown_table(narrow).splitlines()[1])[0].strip(":")) == WIDE_CELL + 10


def test_wilson_interval_matches_the_closed_form():
    counts, total = np.array([0, 3, 500, 1000]), 1000
    low, high = _wilson(counts, total)
    z, share = norm.ppf(0.975), counts / total
    centre = (share + z**2 / (2 * total)) / (1 + z**2 / total)
    half = z * np.sqrt(share * (1 - share) / total + z**2 / (4 * total**2)) / (1 + z**2 / total)
    np.testing.assert_allclose(low, centre - half, atol=1e-12)
    np.testing.assert_allclose(high, centre + half, atol=1e-12)
    assert low[0] == 0 and high[-1] == 1


def test_headline_text_states_the_selection_and_both_shares() -> None:
    top = {"segments": [4, 0, -1], "population_share": 0.12, "customer_share": 0.41, "top": True}
    assert words.headline_text(top) == "The top 3 segments hold 12% of the population and 41% of current customers"
    # A small non-zero share keeps a decimal rather than reading "0%"; a non-prefix names the segments.
    listed = {"segments": [7], "population_share": 0.004, "customer_share": 0.02, "top": False}
    assert words.headline_text(listed) == "Segment 7 holds 0.4% of the population and 2% of current customers"
