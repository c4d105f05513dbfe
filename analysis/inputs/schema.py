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
import dataclasses
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from analysis.errors import InputError
from analysis.inputs.summary import FeatureSpec, read_summary

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
    data = Path(__file__).parents[1] / "data"
    specs = {s.name: s for s in read_summary("analysis/data/features.csv", summary_text())}
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


def summary_text() -> str:
    """The feature summary in the published format: the first four columns of features.csv."""
    lines = (Path(__file__).parents[1] / "data" / "features.csv").read_text(encoding="utf-8").splitlines()
    return "\n".join(";".join(line.split(";")[:4]) for line in lines) + "\n"


def load_features(summary_path: Path | None) -> list[Feature]:
    """The schema's features, coded as the user's feature summary says (its missing codes win).

    Without a summary file the package's own copy of the published summary is used.
    """
    schema = load_schema()
    if summary_path is None:
        return list(schema.values())
    specs = read_summary(summary_path)
    _check_summary(specs, schema, summary_path)
    return [dataclasses.replace(schema[s.name], kind=s.kind, missing=s.missing, level=s.level)
            for s in specs]


def _check_summary(specs: list[FeatureSpec], schema: dict[str, Feature], path: Path) -> None:
    """Cleaning relies on every feature and on its type, so a summary may only change missing codes."""
    unknown = [s.name for s in specs if s.name not in schema]
    if unknown:
        raise InputError(f"the summary lists {unknown[0]}, which is not an AZDIAS feature this tool knows",
                         path=path, column=unknown[0],
                         expected="the 85 attributes of AZDIAS_Feature_Summary.csv")
    listed = {s.name for s in specs}
    absent = [name for name in schema if name not in listed]
    if absent:
        raise InputError(f"the summary does not list {absent[0]}", path=path, column=absent[0],
                         expected="all 85 attributes of AZDIAS_Feature_Summary.csv",
                         hint="Use the complete published summary, or leave the feature summary out "
                              "to use the packaged copy")
    changed = next((s for s in specs if s.kind != schema[s.name].kind), None)
    if changed:
        raise InputError(f"the summary gives the type {changed.kind!r}", path=path, column=changed.name,
                         expected=f"{schema[changed.name].kind!r}, as in the published summary",
                         hint="Only the missing_or_unknown codes may differ from the published summary")
