"""Score a file in the population format with the fitted model: how a marketer scores a mailing list.

The output keeps the input's row order. Columns not in the feature summary (a customer number,
say) are copied through as exact text, followed by ``segment`` (the type id, -1 for rows set
aside for missing data), ``segment_name`` and ``segment_index`` (of the type), then ``group``,
``group_name``, ``group_index``, ``type``, ``type_name``, ``type_index`` (codes such as ``B``
and ``B2``) and ``set_aside`` (1 for rows set aside), then ``lookalike_score`` (resemblance to current
customers, 1.0 = population average; every row is scored, set-aside ones too) and
``lookalike_decile`` (1 = the tenth of the population most like customers). Set-aside rows get code ``X`` and an empty
index: they are not a segment to rank, so sorting by index never puts them first. The file is
written all at once, so a failure leaves any earlier output untouched.
"""
from __future__ import annotations

from pathlib import Path

import joblib
import pandas as pd

from analysis.prepare.cleaning import WORKERS, CleanedTable, apply_cleaning
from analysis.errors import InputError
from analysis.inputs.loading import load_table
from analysis.constants import MODEL_FILE, SET_ASIDE
from analysis.segment.model import Model
from analysis.shell.store import atomic_file


def load_model(results: Path) -> Model:
    """The model ``segments run`` fitted, with a clear error when it is missing or unreadable."""
    path = Path(results) / MODEL_FILE
    if not path.is_file():
        raise InputError("no fitted model found", path=path,
                         hint="Run 'segments run' first, or pass --results with the folder it wrote")
    try:
        model = joblib.load(path)
    except Exception as err:  # unpickling can fail in many ways (truncated file, other version)
        raise InputError(f"the fitted model cannot be read ({type(err).__name__}: {err})", path=path,
                         hint="Run 'segments run --force' to fit it again") from None
    if not isinstance(model, Model):
        raise InputError("the file does not hold a model fitted by 'segments run'", path=path,
                         hint="Run 'segments run --force' to fit it again")
    return model


def assign_file(results: Path, source: Path, target: Path) -> int:
    """Assign every row of ``source``; write ``target`` all at once. Returns the row count."""
    model = load_model(results)
    table = load_table(source, model.plan.features, keep_extra=True)
    out = scored(model, table.extra, apply_cleaning(model.plan, table.data, WORKERS))
    with atomic_file(Path(target)) as work:
        out.to_csv(work, sep=";", index=False)
    return len(out)


def scored(model: Model, extra: pd.DataFrame, cleaned: CleanedTable) -> pd.DataFrame:
    """The output columns for some cleaned rows (``extra``: their columns copied through); the dask
    engine's ``assign`` writes the same per partition."""
    labels = pd.Series(model.assign(cleaned))
    aside = labels == SET_ASIDE
    ranked = lambda index: labels.map(index).round(1).mask(aside)  # noqa: E731
    out = extra.assign(segment=labels, segment_name=labels.map(model.names),
                       segment_index=ranked(model.index))
    if model.levels is not None:
        groups = pd.Series(model.levels.groups_of(labels.to_numpy()), index=labels.index)
        out = out.assign(group=groups.map(model.levels.group_codes), group_name=groups.map(model.group_names),
                         group_index=groups.map(model.group_index).round(1).mask(aside),
                         type=labels.map(model.levels.codes), type_name=labels.map(model.names),
                         type_index=ranked(model.index), set_aside=aside.astype(int))
    if getattr(model, "lookalike", None) is not None:  # models fitted before the score have none
        score = model.lookalike.score(cleaned.matrix)
        out = out.assign(lookalike_score=score, lookalike_decile=model.lookalike.decile(score))
    return out
