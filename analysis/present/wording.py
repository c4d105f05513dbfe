"""Small pieces of English used wherever results are put into words."""
from __future__ import annotations

import math
from typing import Sequence


def join_words(items: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def percent(share: float | None, digits: int = 1) -> str:
    """18.3%; a tiny non-zero share keeps one decimal instead of reading 0%; '–' when unknown."""
    if share is None or not math.isfinite(share):
        return "–"
    if digits == 0 and 0 < share < 0.01:
        digits = 1
    return f"{share:.{digits}%}"
