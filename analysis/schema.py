"""The package's own description of the 85 AZDIAS features, in words a marketer reads.

Two files in ``analysis/data`` hold it: ``features.csv`` (the feature summary's four columns
plus a description, the scale direction, words for each end of the scale and a numeric range)
and ``levels.csv`` (one short label per valid code). Keeping them as data means a label can be
corrected without touching code, and the report, the component interpretation and the pen
portraits all read the same words.

Scale direction matters: for FINANZ_*, SEMIO_*, HH_EINKOMMEN_SCORE, CAMEO wealth and KKK a *low*
code is the strong end. ``low_end`` / ``high_end`` say in words what a low and a high value
mean, so text built from a sign can never read a scale backwards.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from .summary import FeatureSpec, read_summary

SCALES = ("low-strong", "high-strong", "nominal", "count")


@dataclass(frozen=True)
class Feature:
    """One AZDIAS feature: coding from the summary plus human words."""

    name: str
    level: str
    kind: str
    missing: tuple[str, ...]
    description: str
    scale: str  # one of SCALES: which end of an ordinal/numeric scale is the "strong" end
    low_end: str  # what a low value means, e.g. "keen saver"
    high_end: str  # what a high value means, e.g. "not a saver"
    codes: dict[str, str] = field(default_factory=dict)  # valid code -> label
    min: float | None = None  # numeric features only: plausible range
    max: float | None = None

    @property
    def spec(self) -> FeatureSpec:
        return FeatureSpec(self.name, self.level, self.kind, self.missing)

    @property
    def is_text(self) -> bool:
        """True when the file holds letters for this column (CAMEO_*, OST_WEST_KZ)."""
        return any(not code.lstrip("-").isdigit() for code in (*self.codes, *self.missing))

    def label(self, code: object) -> str:
        """The label of a code, accepting ``2``, ``'2'`` or ``2.0``."""
        code = normalise_code(code)
        return self.codes.get(code, code)

    def end(self, sign: float) -> str:
        """Words for the end of the scale a positive (high) or negative (low) value points to."""
        return self.high_end if sign > 0 else self.low_end


def normalise_code(value: object) -> str:
    """Turn 2, 2.0, '2.0' or ' 2 ' into '2'; leave '8A' and 'XX' as they are."""
    text = str(value).strip()
    if text.endswith(".0") and text[:-2].lstrip("-").isdigit():
        return text[:-2]
    return text


@cache
def load_schema() -> dict[str, Feature]:
    """All features in file order, keyed by name."""
    data = Path(__file__).parent / "data"
    specs = {s.name: s for s in read_summary("analysis/data/features.csv", _summary_text(data))}
    levels: dict[str, dict[str, str]] = {name: {} for name in specs}
    with (data / "levels.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter=";"):
            levels[row["attribute"]][row["code"]] = row["label"]
    features = {}
    with (data / "features.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter=";"):
            spec = specs[row["attribute"]]
            features[spec.name] = Feature(
                spec.name, spec.level, spec.kind, spec.missing,
                description=row["description"], scale=row["scale"],
                low_end=row["low_end"], high_end=row["high_end"],
                codes=levels[spec.name],
                min=float(row["min"]) if row["min"] else None,
                max=float(row["max"]) if row["max"] else None,
            )
    return features


def _summary_text(data: Path) -> str:
    """The first four columns of features.csv, i.e. a feature summary in the published format."""
    lines = (data / "features.csv").read_text(encoding="utf-8").splitlines()
    return "\n".join(";".join(line.split(";")[:4]) for line in lines)
