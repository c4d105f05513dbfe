"""Read a feature summary in the published format.

The file is ``attribute;information_level;type;missing_or_unknown`` with list cells such as
``[-1,0]``, ``[-1,X]``, ``[XX]`` or ``[]``. Real copies carry stray spaces (the last row of the
published file reads `` ordinal``), so every cell is stripped. Codes stay strings: CAMEO codes
(``X``, ``XX``) are not numbers, and comparing as strings avoids ``-1`` vs ``-1.0`` surprises.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from analysis.errors import InputError

COLUMNS = ("attribute", "information_level", "type", "missing_or_unknown")
TYPES = ("categorical", "ordinal", "numeric", "interval", "mixed")
_LIST = re.compile(r"^\[(.*)\]$")
_CODE = re.compile(r"^-?[0-9]+$|^[A-Za-z0-9]+$")


@dataclass(frozen=True)
class FeatureSpec:
    """One row of a feature summary: how a column is coded and which codes mean unknown."""

    name: str
    level: str
    kind: str
    missing: tuple[str, ...]


def parse_missing(cell: str) -> tuple[str, ...]:
    """Parse a ``missing_or_unknown`` cell like ``[-1,X]`` into ``('-1', 'X')``.

    Raises ValueError with the reason; the caller adds file and line.
    """
    match = _LIST.match(cell.strip())
    if not match:
        raise ValueError(f"{cell!r} is not a bracketed list")
    body = match.group(1).strip()
    if not body:
        return ()
    codes = tuple(code.strip() for code in body.split(","))
    for code in codes:
        if not _CODE.match(code):
            raise ValueError(f"{code!r} in {cell!r} is not a code")
    return codes


def read_summary(path: Path | str, text: str | None = None) -> list[FeatureSpec]:
    """Parse a feature summary file (or ``text``, read as if from ``path``).

    Every problem is an InputError naming the file and line.
    """
    path = Path(path)
    if text is None:
        text = _read_text(path)
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    while rows and not any(cell.strip() for cell in rows[0]):
        rows.pop(0)  # blank lines before the header
    if not rows:
        raise InputError("the feature summary is empty", path=path,
                         expected="a header line " + ";".join(COLUMNS))
    header = tuple(cell.strip().lstrip("\ufeff") for cell in rows[0])
    if header != COLUMNS:
        raise InputError(f"the header reads {';'.join(header)!r}", path=path, line=1,
                         expected="the header " + ";".join(COLUMNS) + " (semicolon-separated)")
    specs: list[FeatureSpec] = []
    seen: set[str] = set()
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        specs.append(_parse_row(row, path, number, seen))
    if not specs:
        raise InputError("the feature summary lists no features", path=path,
                         expected="one line per feature after the header")
    return specs


def _parse_row(row: list[str], path: Path, number: int, seen: set[str]) -> FeatureSpec:
    if len(row) != len(COLUMNS):
        raise InputError(f"the line has {len(row)} fields", path=path, line=number,
                         expected=f"{len(COLUMNS)} fields: " + ";".join(COLUMNS))
    name, level, kind, missing = (cell.strip() for cell in row)
    if not name:
        raise InputError("the attribute name is empty", path=path, line=number,
                         expected="a column name such as ALTERSKATEGORIE_GROB")
    if name in seen:
        raise InputError(f"{name} is listed twice", path=path, line=number,
                         expected="each attribute once")
    if kind not in TYPES:
        raise InputError(f"type {kind!r} is not known", path=path, column=name, line=number,
                         expected="one of " + ", ".join(TYPES))
    try:
        codes = parse_missing(missing)
    except ValueError as err:
        raise InputError(f"missing_or_unknown {err}", path=path, column=name, line=number,
                         expected="a list such as [-1,0], [-1,X], [XX] or []") from None
    seen.add(name)
    return FeatureSpec(name, level, kind, codes)


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise InputError("the file does not exist", path=path,
                         hint="Check the path in segments.toml, the environment or the command line")
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")
