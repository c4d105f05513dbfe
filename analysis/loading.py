"""Read a population or customers file into compact columns, validating it against the summary.

Files are streamed with pyarrow's CSV reader in blocks, each column read as dictionary-encoded
text: a column of codes has a handful of distinct strings per block, so turning them into
numbers means converting the small dictionary once and indexing it, which is fast, keeps memory
proportional to the data, and tells us the exact line of a bad value. ``2.0`` (what pandas
writes for a column with blanks) and ``2`` are the same code.

Result: a DataFrame with one float32 column per numeric-coded feature (codes as numbers, blanks
as NaN; missing codes are still present and are decoded by ``cleaning``) and a pandas
Categorical of normalised strings for text-coded features (CAMEO_*, OST_WEST_KZ).
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from .errors import InputError
from .schema import Feature, normalise_code

BLOCK_SIZE = 16 << 20  # 16 MiB blocks: few Python-level iterations, bounded memory


@dataclass(frozen=True)
class LoadedTable:
    """A validated table plus facts for the data-quality report."""

    path: Path
    data: pd.DataFrame
    extra_columns: tuple[str, ...]  # present in the file, not in the summary: ignored

    @property
    def rows(self) -> int:
        return len(self.data)


def load_table(path: Path | str, features: Sequence[Feature],
               progress: Callable[[int], None] | None = None) -> LoadedTable:
    """Load ``path``; ``features`` (in summary order) say which columns must be there and how they are coded."""
    path = Path(path)
    _check_file(path)
    header = _read_header(path)
    extra = _check_header(path, header, [f.name for f in features])
    wanted = {f.name: f for f in features}
    columns: dict[str, list[np.ndarray]] = {name: [] for name in wanted}
    rows = 0
    for batch in _batches(path, header, list(wanted)):
        for name, feature in wanted.items():
            columns[name].append(_convert(batch.column(name), feature, path, rows))
        rows += batch.num_rows
        if progress:
            progress(rows)
    if rows == 0:
        raise InputError("the file has a header but no data rows", path=path,
                         expected="one line per person after the header")
    data = pd.DataFrame({name: _finish(parts, wanted[name]) for name, parts in columns.items()})
    return LoadedTable(path, data, tuple(extra))


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputError("the file does not exist", path=path,
                         hint="Check the path in segments.toml, SEGMENTS_* variables or the command line")
    if not path.is_file():
        raise InputError("the path is not a file", path=path)
    if path.stat().st_size == 0:
        raise InputError("the file is empty", path=path,
                         expected="a semicolon-separated table with a header line of attribute names")


def _read_header(path: Path) -> list[str]:
    with path.open("rb") as fh:
        first = fh.readline()
    text = first.decode("utf-8-sig", errors="replace").strip("\r\n")
    if ";" not in text:
        sep = next((s for s in (",", "\t", "|") if s in text), None)
        found = f"separated by {sep!r}" if sep else "a single field"
        raise InputError(f"the header line is {found}, not by semicolons", path=path, line=1,
                         expected="semicolon-separated columns, as in the original AZDIAS files",
                         hint="Re-export the file with ';' as the separator")
    return [cell.strip().strip('"') for cell in text.split(";")]


def _check_header(path: Path, header: list[str], names: list[str]) -> list[str]:
    duplicated = sorted({h for h in header if header.count(h) > 1})
    if duplicated:
        raise InputError(f"the header repeats {', '.join(duplicated)}", path=path, line=1,
                         expected="each column once")
    missing = [n for n in names if n not in header]
    if missing:
        first = missing[0]
        close = difflib.get_close_matches(first, [h for h in header if h not in names], n=1)
        hint = f"Is {close[0]!r} the column {first} renamed? Rename it back" if close else None
        more = f" (and {len(missing) - 1} more: {', '.join(missing[1:6])})" if len(missing) > 1 else ""
        raise InputError(f"the column {first} is missing{more}", path=path, column=first, line=1,
                         expected="the 85 columns listed in the feature summary", hint=hint)
    return [h for h in header if h not in names]


def _open(path: Path, header: list[str], names: list[str], handler: _RowError) -> pacsv.CSVStreamingReader:
    text_type = pa.dictionary(pa.int32(), pa.string())
    return pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=BLOCK_SIZE, use_threads=True),
        parse_options=pacsv.ParseOptions(delimiter=";", invalid_row_handler=handler),
        convert_options=pacsv.ConvertOptions(
            include_columns=names,
            column_types={name: text_type for name in header},
            strings_can_be_null=True,
            null_values=[""],
        ),
    )


class _RowError:
    """pyarrow calls this for a line with the wrong number of fields; remember it and stop.

    Raising inside the handler is swallowed by pyarrow, so the first bad row is kept here and
    turned into an InputError by ``_batches``.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.error: InputError | None = None

    def __call__(self, row: pacsv.InvalidRow) -> str:
        if self.error is None:
            self.error = InputError(
                f"the line has {row.actual_columns} fields instead of {row.expected_columns}",
                path=self.path, line=_find_line(self.path, row.text),
                expected="every line to have as many fields as the header",
                hint="The file may be truncated or contain a stray ';'")
        return "error"


def _find_line(path: Path, text: str) -> int | None:
    """The 1-based number of the first line reading ``text`` (only called on the error path)."""
    target = text.encode("utf-8", errors="replace").rstrip(b"\r\n")
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if line.rstrip(b"\r\n") == target:
                return number
    return None


def _batches(path: Path, header: list[str], names: list[str]) -> Iterator[pa.RecordBatch]:
    """Record batches of the file; any parse problem becomes an InputError."""
    handler = _RowError(path)
    try:
        reader = _open(path, header, names, handler)
        while True:
            yield reader.read_next_batch()
    except StopIteration:
        return
    except pa.ArrowInvalid as err:
        if handler.error is not None:
            raise handler.error from None
        raise InputError(f"the file cannot be parsed ({_arrow_reason(err)})", path=path,
                         expected="UTF-8 or Latin-1 text, semicolon-separated") from None


def _arrow_reason(err: Exception) -> str:
    return str(err).splitlines()[0].rstrip(".")


def _convert(column: pa.Array, feature: Feature, path: Path, offset: int) -> np.ndarray:
    """Dictionary-encoded text -> float32 codes (numeric features) or normalised strings (text features)."""
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if column.null_count == len(column):
        return np.full(len(column), np.nan, np.float32) if not feature.is_text else np.full(len(column), None, object)
    indices = column.indices.fill_null(0).to_numpy(zero_copy_only=False)
    values = [normalise_code(v) for v in column.dictionary.to_pylist()]
    valid = ~np.asarray(column.is_null())
    if feature.is_text:
        lookup = np.array(values + [None], dtype=object)
        return lookup[np.where(valid, indices, len(values))]
    numbers = np.empty(len(values) + 1, dtype=np.float32)
    numbers[-1] = np.nan
    for i, text in enumerate(values):
        try:
            numbers[i] = float(text)
        except ValueError:
            row = int(np.flatnonzero(valid & (indices == i))[0])
            raise InputError(f"the value {text!r} is not a number", path=path, column=feature.name,
                             line=offset + row + 2, expected="numeric codes such as "
                             + (", ".join(list(feature.codes)[:4]) or "a count"),
                             hint="Check that the column was not exported as text labels") from None
    return numbers[np.where(valid, indices, len(values))]


def _finish(parts: list[np.ndarray], feature: Feature) -> pd.Series | np.ndarray:
    joined = np.concatenate(parts)
    if feature.is_text:
        return pd.Categorical(joined)
    return joined
