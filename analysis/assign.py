"""Score a file in the population format with the fitted model: how a marketer scores a mailing list.

The output keeps the input's row order. Columns not in the feature summary (a customer number,
say) are copied through, followed by ``segment`` (-1 for rows set aside for missing data),
``segment_name`` and ``segment_index``.
"""
from __future__ import annotations

from pathlib import Path

import joblib
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from .cleaning import apply_cleaning
from .errors import InputError
from .loading import load_table
from .pipeline import MODEL_FILE, Model
from .store import atomic_file


def load_model(results: Path) -> Model:
    path = Path(results) / MODEL_FILE
    if not path.is_file():
        raise InputError("no fitted model found", path=path,
                         hint="Run 'segments run' first, or pass --results with the folder it wrote")
    return joblib.load(path)


def assign_file(results: Path, source: Path, target: Path) -> int:
    """Assign every row of ``source``; write ``target`` all at once. Returns the row count."""
    model = load_model(results)
    table = load_table(source, model.plan.features)
    labels = model.assign(apply_cleaning(model.plan, table.data))
    out = _extra_columns(source, table.extra_columns)
    out["segment"] = labels
    out["segment_name"] = pd.Series(labels).map(model.names).to_numpy()
    out["segment_index"] = pd.Series(labels).map(model.index).round(1).to_numpy()
    with atomic_file(Path(target)) as work:
        out.to_csv(work, sep=";", index=False)
    return len(out)


def _extra_columns(source: Path, names: tuple[str, ...]) -> pd.DataFrame:
    """Columns outside the schema, as text, so identifiers are copied exactly."""
    if not names:
        return pd.DataFrame()
    table = pacsv.read_csv(source, parse_options=pacsv.ParseOptions(delimiter=";"),
                           convert_options=pacsv.ConvertOptions(
                               include_columns=list(names), column_types={n: pa.string() for n in names}))
    return table.to_pandas()
