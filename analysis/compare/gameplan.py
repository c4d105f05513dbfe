"""The game plan (after Esri's Tapestry Game Plan): every type placed by its share of current
customers and its index, in four quadrants.

- **core**: a large share of customers and a high index: keep and grow;
- **developmental**: a large share of customers, index near or below 100: broad campaigns;
- **niche**: a small share of customers but a high index: targeted, tailored mailings;
- **low priority**: a small share and no high index.

Thresholds: a *large* share is at least the share an average type would hold (the customers
placed in a type divided by the number of types); a *high* index is at least ``HIGH_INDEX``
(the top of the 90-110 band within which an index counts as "about average"). The set-aside
group is not a type and is not placed.
"""
from __future__ import annotations

import pandas as pd

from analysis.constants import MIN_EFFECT, SET_ASIDE

HIGH_INDEX = 100 * (1 + MIN_EFFECT)
CORE, DEVELOPMENTAL, NICHE, LOW = "core", "developmental", "niche", "low priority"


def game_plan(comparison: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Quadrant per type (rows of a type comparison indexed by segment) and the thresholds used."""
    types = comparison.drop(index=SET_ASIDE, errors="ignore")
    share_threshold = float(types["customer_share"].sum() / max(len(types), 1))
    large = types["customer_share"] >= share_threshold
    high = types["index"] >= HIGH_INDEX
    quadrant = pd.Series(LOW, index=types.index)
    quadrant[large & high] = CORE
    quadrant[large & ~high] = DEVELOPMENTAL
    quadrant[~large & high] = NICHE
    table = pd.DataFrame({"segment": types.index, "customer_share": types["customer_share"].to_numpy(),
                          "population_share": types["population_share"].to_numpy(),
                          "index": types["index"].to_numpy(), "quadrant": quadrant.to_numpy()})
    facts = {"share_threshold": share_threshold, "index_threshold": HIGH_INDEX,
             "quadrants": [CORE, DEVELOPMENTAL, NICHE, LOW]}
    return table, facts
