"""A later delivery of the demo data, with known planted changes: something for "What changed" to find.

``segments demo-data --refresh-of DIR --out DIR2`` draws a fresh sample of the same synthetic
population (the next seed, the same sizes) and plants three changes, recorded under
``refresh`` in the delivery's planted_truth.json:

- one planted segment's customer share doubles (the other segments shrink in proportion);
- one feature's missing share rises (fields left empty in an extra share of rows, both files);
- a new, undocumented code appears in one category column (both files).

With ``planted=False`` it is an unchanged re-delivery: the same population sampled again, so
anything the report flags beyond noise is a false alarm. The files are edited as text lines,
so every untouched field is exactly as the generator wrote it.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.demo.synthetic import SEGMENTS, DemoPaths, _move_into_place, generate

DOUBLED_SEGMENT = "east_working_class"  # customer share 4.9% -> 9.8%
MORE_MISSING = ("SEMIO_KULT", 0.10)  # left empty in an extra 10% of rows
NEW_CODE = ("FINANZTYP", "7", 0.03)  # documented codes are 1-6; 7 appears in 3% of rows


def generate_refresh(previous: Path | str, out_dir: Path | str, seed: int | None = None,
                     planted: bool = True) -> DemoPaths:
    """Write a later delivery of the demo data in ``previous`` (a folder ``generate`` wrote)."""
    before = DemoPaths.in_folder(previous)
    truth = json.loads(before.truth.read_text(encoding="utf-8"))
    seed = int(truth["seed"]) + 1 if seed is None else seed
    rows, customers = int(truth["population_rows"]), int(truth["customer_rows"])
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))
    try:
        # twice the customers, so the doubled segment can be drawn without repeating anyone
        paths = generate(tmp / "delivery", population=rows, customers=2 * customers if planted else customers,
                         seed=seed)
        changes: list[dict] = []
        if planted:
            changes.append(_double_segment(paths, customers, np.random.default_rng(seed)))
            rng = np.random.default_rng([seed, 1])
            changes.append(_more_missing(paths, rng))
            changes.append(_new_code(paths, rng))
        new_truth = json.loads(paths.truth.read_text(encoding="utf-8"))
        new_truth["customer_rows"] = customers
        new_truth["refresh"] = {"refresh_of": str(Path(previous)), "previous_seed": truth["seed"],
                                "planted": planted, "planted_changes": changes}
        paths.truth.write_text(json.dumps(new_truth, indent=2) + "\n", encoding="utf-8")
        _move_into_place(paths.directory, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return DemoPaths.in_folder(out_dir)


def _double_segment(paths: DemoPaths, customers: int, rng: np.random.Generator) -> dict:
    """Keep ``customers`` of the customer rows, with the doubled segment at twice its planned share."""
    labels = pd.read_parquet(paths.labels)
    cust = labels["table"] == "customers"
    segment = labels.loc[cust, "segment"].to_numpy()
    target = [s.key for s in SEGMENTS].index(DOUBLED_SEGMENT)
    share = 2 * SEGMENTS[target].customer_share
    n_target = int(round(share * customers))
    pick_target = np.flatnonzero(segment == target)[:n_target]
    others = np.flatnonzero(segment != target)
    pick_other = np.sort(rng.choice(others, size=customers - len(pick_target), replace=False))
    keep = np.sort(np.concatenate([pick_target, pick_other]))
    lines = _read_lines(paths.customers)
    _write_lines(paths.customers, lines[0], [lines[1 + i] for i in keep])
    rows = labels.loc[cust].iloc[keep].assign(row=np.arange(len(keep), dtype=np.int32))
    pd.concat([labels.loc[~cust], rows], ignore_index=True).to_parquet(paths.labels, index=False)
    return {"kind": "customer_share", "segment": target, "key": DOUBLED_SEGMENT,
            "customer_share_before": SEGMENTS[target].customer_share, "customer_share_after": share,
            "customer_rows_after": int(len(pick_target))}


def _more_missing(paths: DemoPaths, rng: np.random.Generator) -> dict:
    column, extra = MORE_MISSING
    for path in (paths.population, paths.customers):
        _edit_column(path, column, lambda values: ["" if r < extra else v
                                                   for v, r in zip(values, rng.random(len(values)))])
    return {"kind": "missing_share", "column": column, "extra_share": extra}


def _new_code(paths: DemoPaths, rng: np.random.Generator) -> dict:
    column, code, share = NEW_CODE
    for path in (paths.population, paths.customers):
        _edit_column(path, column, lambda values: [code if v and r < share else v
                                                   for v, r in zip(values, rng.random(len(values)))])
    return {"kind": "new_code", "column": column, "code": code, "share": share}


def _edit_column(path: Path, column: str, change) -> None:
    """Rewrite one ``;``-separated column of a file through ``change(values) -> values``."""
    lines = _read_lines(path)
    at = lines[0].split(";").index(column)
    fields = [line.split(";") for line in lines[1:]]
    for row, value in zip(fields, change([row[at] for row in fields])):
        row[at] = value
    _write_lines(path, lines[0], [";".join(row) for row in fields])


def _read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="ascii").splitlines()


def _write_lines(path: Path, header: str, lines: list[str]) -> None:
    path.write_text("\n".join([header, *lines]) + "\n", encoding="ascii")
