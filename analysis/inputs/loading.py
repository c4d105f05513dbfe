"""Read a population or customers file into compact columns, validating it against the summary.

Files are read with pyarrow's CSV reader in ranges of small blocks. A range whose numeric-coded
columns hold plain numbers and blanks only (a clean export) has them parsed as float32 straight
away; any other range, and every text-coded column, is read as dictionary-encoded text: a column
of codes has a handful of distinct strings per block, so turning them into numbers means
converting the small dictionary once and indexing it, which is fast, keeps memory proportional
to the data, and tells us the exact line of a bad value. ``2.0`` (what pandas writes for a
column with blanks) and ``2`` are the same code; ``NA``, ``NULL`` and the like
(what R, SAS or a database write for an empty field) are blanks.

Real exports are often wrong, so every problem a user can fix is an InputError naming the file,
the column and the line (1-based, the header is line 1). What can be handled is handled: a BOM
is skipped, a file that is not valid UTF-8 is read as Latin-1 (the codes are ASCII, so only
names and IDs can be affected), blank lines are skipped and extra columns are ignored with a
note.

Result: a DataFrame with one float32 column per numeric-coded feature (codes as numbers, blanks
as NaN; missing codes are still present and are decoded by ``cleaning``) and a pandas
Categorical of normalised strings for text-coded features (CAMEO_*, OST_WEST_KZ).
"""
from __future__ import annotations

import codecs
import ctypes
import ctypes.util
import difflib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from analysis.errors import InputError
from analysis.inputs.schema import Feature, normalise_code
from analysis.threads import cores, each

#: pyarrow parses in blocks of this size. Small blocks parse fastest: on the full population
#: file (236 MB, serial) 16 MiB blocks took 12.9 s, 2 MiB 3.9 s, 1 MiB 4.2 s, 256 KiB 5.4 s
#: (the dictionary columns of a big block do not stay in the CPU cache).
BLOCK_SIZE = 2 << 20
#: A whole file is read in ranges of about this size, each parsed by pyarrow's threads and
#: converted while the next is parsed: memory stays bounded by a few ranges, and converting
#: costs a fixed Python overhead per column and call, so converting each 2 MiB block
#: (113 x 85 calls) took 3.7 s of a 7.6 s load; a range takes 4 x 85 calls.
RANGE_BYTES = 64 << 20
#: The serial reader (spans, and a file the threaded parser failed on) converts blocks in
#: groups of at least this many rows, for the same reason.
GROUP_ROWS = 1 << 18
HEAD_BYTES = 64 << 10  # the header line must fit here: the 85 names take about 2 KB
SCAN_CHUNK = 8 << 20  # reading size for the whole-file scans (encoding check, line numbers)
# What other tools write for an empty field; none of them is a code.
MISSING_MARKERS = frozenset({"NA", "N/A", "#N/A", "NaN", "nan", "NULL", "null", "None"})
_TEXT = pa.dictionary(pa.int32(), pa.string())
#: Rows are hashed (``duplicate_rows``) in blocks of this many, on one thread per core.
HASH_ROWS = 1 << 16
HASH_WORKERS = cores()


@dataclass(frozen=True)
class LoadedTable:
    """A validated table plus facts for the data-quality report."""

    path: Path
    data: pd.DataFrame
    extra_columns: tuple[str, ...]  # present in the file, not in the summary: ignored
    encoding: str = "utf-8"  # "latin-1" when the file was not valid UTF-8
    extra: pd.DataFrame | None = None  # the extra columns as text, when asked for

    @property
    def rows(self) -> int:
        return len(self.data)

    @cached_property
    def duplicate_rows(self) -> int:
        """Rows identical to an earlier row. Real data has them, so they are reported, not refused.

        Compared by a 64-bit hash per row: ``DataFrame.duplicated`` needs several copies of the
        table, the hash one column of temporaries at a time (a collision is ~1e-8 at 10M rows).
        """
        return int(pd.Series(row_hashes(self.data, HASH_WORKERS)).duplicated().sum())

    def notes(self) -> list[str]:
        """How the file was read differently from what it says, for the user to know."""
        return read_notes(self.facts())

    def facts(self) -> dict:
        """The facts for results.json (no sentences: :func:`read_notes` words them)."""
        return {"path": str(self.path), "rows": self.rows, "duplicate_rows": self.duplicate_rows,
                "extra_columns": list(self.extra_columns), "encoding": self.encoding}


def row_hashes(data: pd.DataFrame, workers: int = 1) -> np.ndarray:
    """pandas' 64-bit hash of each row (``hash_pandas_object``, without the index), block by block.

    A row's hash depends on its values only, so hashing blocks of ``HASH_ROWS`` rows gives the
    same numbers as hashing the whole table, with temporaries that stay in the CPU cache; the
    blocks are shared by ``workers`` threads (numpy's arithmetic in the hash releases the GIL;
    nothing here uses BLAS or OpenMP threads). Both full-size tables: 0.96-1.10 s in one call,
    0.85-0.91 s in blocks on one thread, 0.50-0.67 s on two (CPU 0.8-1.0 s; load 2.0).
    """
    out = np.empty(len(data), dtype=np.uint64)

    def block(start: int) -> None:
        out[start:start + HASH_ROWS] = pd.util.hash_pandas_object(data.iloc[start:start + HASH_ROWS], index=False)

    starts = range(0, len(data), HASH_ROWS)
    each(block, starts, min(workers, len(starts)))
    return out


def read_notes(facts: dict) -> list[str]:
    """How a file was read differently from what it says, from its :meth:`LoadedTable.facts`."""
    notes = []
    if facts["extra_columns"]:
        notes.append("extra columns ignored: " + ", ".join(map(_show, facts["extra_columns"])))
    if facts["encoding"] != "utf-8":
        notes.append(f"not valid UTF-8, read as {facts['encoding']}")
    return notes


def _show(name: str) -> str:
    """A column name as messages show it (an empty header cell would otherwise vanish)."""
    return name if name.strip() else "(unnamed)"


def load_table(path: Path | str, features: Sequence[Feature],
               progress: Callable[[int], None] | None = None, keep_extra: bool = False) -> LoadedTable:
    """Load ``path``; ``features`` (in summary order) say which columns must be there and how they are coded.

    ``keep_extra`` also returns the columns outside the summary, as exact text, so that
    ``segments assign`` can copy a customer number through.
    """
    path = Path(path)
    head = _read_head(path)
    encoding = _encoding(path)
    header = _parse_header(path, head, encoding)
    extra = _check_header(path, header, [f.name for f in features])
    data, texts = _read_rows(path, header, features, list(extra) if keep_extra else [], encoding, progress)
    return LoadedTable(path, data, tuple(extra), encoding, texts if keep_extra else None)


@dataclass(frozen=True)
class Span:
    """Whole lines of a data file, bytes ``start`` to ``stop``, the first being physical line ``first_line``.

    A distributed engine reads a file as independent spans; knowing where each starts lets its
    errors name the same line as reading the whole file would.
    """

    start: int
    stop: int
    first_line: int


def read_head(path: Path) -> bytes:
    """The first bytes of ``path``, after the checks ``load_table`` makes (exists, readable, text)."""
    return _read_head(Path(path))


def read_header(path: Path, head: bytes, features: Sequence[Feature], encoding: str) -> tuple[list[str], list[str]]:
    """The header's column names and the extra columns, checked as ``load_table`` checks them."""
    header = _parse_header(path, head, encoding)
    return header, _check_header(path, header, [f.name for f in features])


def load_span(path: Path, header: list[str], features: Sequence[Feature], encoding: str, span: Span,
              texts: Sequence[str] = ()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows of one span, converted and checked exactly as ``load_table`` does; may be empty.

    Returns the features (as ``LoadedTable.data``) and the ``texts`` columns as exact strings.
    """
    return _read_rows(Path(path), header, features, list(texts), encoding, None, span)


def _read_rows(path: Path, header: list[str], features: Sequence[Feature], texts: list[str], encoding: str,
               progress: Callable[[int], None] | None,
               span: Span | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The features converted table by table, and the ``texts`` columns as exact strings.

    A whole file is parsed by pyarrow's threads, range by range (see ``RANGE_BYTES``); if that
    parser fails it cannot say on which line, so the file is read again by the serial parser,
    which stops at the same problem and names the line. A span (one partition of the Dask
    engine, whose workers already share the cores) is always read serially.
    """
    codes = [f.name for f in features]
    if span is None:
        numbers = [f.name for f in features if not f.is_text]
        try:
            return _convert_tables(_read_ahead(_ranges(path, header, codes, texts, encoding, numbers)),
                                   path, features, texts, progress)
        except _Reread:
            pass
    return _convert_tables(_groups(_batches(path, header, codes, texts, encoding, span)),
                           path, features, texts, progress, span)


def _convert_tables(tables: Iterator[pa.Table], path: Path, features: Sequence[Feature], texts: list[str],
                    progress: Callable[[int], None] | None,
                    span: Span | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Consecutive tables of the file (or span) converted, joined and checked."""
    wanted = {f.name: f for f in features}
    columns: dict[str, list] = {name: [] for name in wanted}  # per feature, its blocks (see _convert)
    kept: dict[str, list[pa.Array]] = {name: [] for name in texts}
    rows = 0
    for table in tables:
        for name, feature in wanted.items():
            column = table.column(name)
            if column.type == pa.float32():  # parsed as numbers (see _parse_range): blanks become NaN
                columns[name].append(column.to_numpy())
            else:
                columns[name].append(_convert(column.combine_chunks(), feature, path, rows, span))
        for name in texts:
            kept[name].extend(table.column(name).chunks)
        rows += table.num_rows
        if progress:
            progress(rows)
    if rows == 0 and span is None:
        raise InputError("the file has a header but no data rows", path=path,
                         expected="one line per person after the header")
    release_memory()  # the parser's buffers go back before the blocks are joined ...
    frame = _frame(columns, wanted, rows)
    extra = pd.DataFrame({name: pa.chunked_array(parts, pa.string()).to_pandas() for name, parts in kept.items()})
    release_memory()  # ... and the converted blocks before cleaning starts
    return frame, extra


class _Reread(Exception):
    """The threaded parser failed: read the file again serially to find the line."""


def _ranges(path: Path, header: list[str], codes: list[str], texts: list[str],
            encoding: str, numbers: list[str]) -> Iterator[pa.Table]:
    """The file parsed in consecutive ranges of whole lines, each by pyarrow's threads.

    Ranges end at a newline, where pyarrow's own parser splits blocks too (a quoted field
    cannot span lines), so records, and the blank lines pyarrow skips, are the same as in one
    serial read of the file.

    The ``numbers`` columns are first parsed as float32 straight away: ``2``, ``2.0`` and
    ``-1`` parse as Python's ``float`` reads them and a blank is null, which is all a clean
    export holds. A range with anything else in such a column (``X``, ``NA``, `` 2``) fails that
    parse and is parsed again as text, which :func:`_convert` normalises or names the line of.
    On the full-size population file the parse took 4.4-4.9 CPU s instead of 5.4-6.6, and
    converting the floats is one copy instead of a lookup through each block's dictionary.
    """
    first = True
    try:
        with path.open("rb") as fh:
            while text := _next_range(fh):
                yield _parse_range(text, path, header, codes, texts, encoding, numbers, skip_rows=int(first))
                first = False
    except (pa.ArrowInvalid, OSError):
        raise _Reread from None


def _parse_range(text: bytes, path: Path, header: list[str], codes: list[str], texts: list[str], encoding: str,
                 numbers: list[str], skip_rows: int) -> pa.Table:
    """One range parsed with ``numbers`` as float32, or, if any of them holds something else, as text."""
    def parse(as_floats: list[str]) -> pa.Table:
        return pacsv.read_csv(pa.BufferReader(text), **_options(
            header, codes, texts, encoding, _RowError(path), skip_rows, threads=True,
            numbers=as_floats)).unify_dictionaries()

    try:
        return parse(numbers)
    except pa.ArrowInvalid:  # a value that is not a plain number (or a broken line): as text
        return parse([])


def _next_range(fh) -> bytes:
    """About ``RANGE_BYTES`` from ``fh``, completed to the end of the line; empty at the end."""
    text = fh.read(RANGE_BYTES)
    if text and not text.endswith(b"\n"):
        text += fh.readline()
    return text


def release_memory() -> None:
    """Give freed memory back to the system: Arrow's pool and, on glibc, the C heap.

    Parsing in 2 MiB blocks allocates many mid-sized buffers, which the allocators keep after
    they are freed: without this a full-size run held about 300 MB more through cleaning
    (measured after loading both files: 783 MB resident, 482 MB after releasing).
    """
    pa.default_memory_pool().release_unused()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (it has ``malloc_trim``), else None (macOS, musl, Windows)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") else None


_LIBC = _glibc()


def _groups(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.Table]:
    """Consecutive batches joined into tables of at least ``GROUP_ROWS`` rows (the last may be
    smaller), each column's blocks sharing one dictionary so that it converts in one call."""
    group: list[pa.RecordBatch] = []
    size = 0
    for batch in batches:
        group.append(batch)
        size += batch.num_rows
        if size >= GROUP_ROWS:
            yield pa.Table.from_batches(group).unify_dictionaries()
            group, size = [], 0
    if group:
        yield pa.Table.from_batches(group).unify_dictionaries()


def _read_ahead(tables: Iterator[pa.Table]) -> Iterator[pa.Table]:
    """``tables``, each parsed by a background thread while the caller converts the one before.

    pyarrow's parser releases the GIL, so parsing and converting overlap. Errors raised while
    parsing reach the caller unchanged.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        ahead = pool.submit(next, tables, None)
        while (table := ahead.result()) is not None:
            ahead = pool.submit(next, tables, None)
            yield table


def _frame(columns: dict[str, list], wanted: dict[str, Feature], rows: int) -> pd.DataFrame:
    """Join the blocks into one float32 matrix (numeric-coded features) plus categoricals (text ones).

    Each column's blocks are copied straight into a column-major block and then released, and
    the DataFrame wraps that block without copying: peak memory stays near one copy of the data.
    """
    numeric = [name for name, feature in wanted.items() if not feature.is_text]
    block = np.empty((rows, len(numeric)), dtype=np.float32, order="F")
    for j, name in enumerate(numeric):
        parts = columns.pop(name)
        if parts:  # a span of blank lines has none
            np.concatenate(parts, out=block[:, j])
    frame = pd.DataFrame(block, columns=numeric, copy=False)
    for name in list(columns):
        frame[name] = _categorical(columns.pop(name))
    return frame


def _categorical(parts: list[tuple[np.ndarray, np.ndarray]]) -> pd.Categorical:
    """Blocks of (codes, sorted distinct values; -1 = blank) as one Categorical of sorted values.

    The same Categorical as one built from the blocks' strings, without hashing a string per row
    (0.45 s for the population's four text columns).
    """
    values = np.unique(np.concatenate([distinct for _, distinct in parts])) if parts else np.array([], dtype=object)
    codes = [np.append(np.searchsorted(values, distinct), -1)[block] for block, distinct in parts]
    return pd.Categorical.from_codes(np.concatenate(codes) if codes else np.array([], dtype=np.int32),
                                     categories=pd.Index(values))


def _read_head(path: Path) -> bytes:
    """The first bytes of the file, after checking it is a readable, non-empty text file."""
    if not path.exists():
        raise InputError("the file does not exist", path=path,
                         hint="Check the path in segments.toml, SEGMENTS_* variables or the command line")
    if not path.is_file():
        raise InputError("the path is not a file", path=path, expected="a CSV file")
    try:
        with path.open("rb") as fh:
            head = fh.read(HEAD_BYTES)
    except OSError as err:
        raise InputError(f"the file cannot be read ({err.strerror or err})", path=path,
                         hint="Check that the file is readable by you") from None
    if not head:
        raise InputError("the file is empty", path=path,
                         expected="a semicolon-separated table with a header line of attribute names")
    if b"\x00" in head:
        raise InputError("the file is not plain text (it contains NUL bytes)", path=path,
                         expected="a semicolon-separated text file in UTF-8 or Latin-1",
                         hint="If it is a spreadsheet, a compressed file or a UTF-16 ('Unicode text') "
                              "export, save it as CSV with ';' as the separator")
    return head


def _encoding(path: Path) -> str:
    """``utf-8``, or ``latin-1`` when some byte is not valid UTF-8.

    Deciding before reading keeps UTF-8 files on pyarrow's fast path and their non-ASCII names
    intact (read as Latin-1 they would be garbled). The check decodes the whole file once,
    which costs a fraction of a second on the full data; a chunk of plain ASCII (the codes, and
    usually everything) is only scanned, not decoded: 0.08 instead of 0.2-0.3 s on the population.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    buffer = bytearray(SCAN_CHUNK)  # one buffer, read into: a fresh chunk per read costs page faults
    try:
        with path.open("rb", buffering=0) as fh:
            while size := fh.readinto(buffer):
                chunk = buffer if size == len(buffer) else buffer[:size]
                if not (chunk.isascii() and not decoder.getstate()[0]):  # ASCII after a whole character: valid
                    decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8"


def _parse_header(path: Path, head: bytes, encoding: str) -> list[str]:
    """The column names of the first line: BOM, quotes and spaces around names removed."""
    text = head.removeprefix(codecs.BOM_UTF8).decode(encoding, errors="replace")
    line = text.partition("\n")[0].partition("\r")[0]
    if not line.strip():
        raise InputError("the first line is empty", path=path, line=1,
                         expected="a header line of attribute names separated by ';'",
                         hint="Remove the blank lines before the header")
    if ";" not in line:
        sep = next((s for s in (",", "\t", "|") if s in line), None)
        found = f"separated by {sep!r}" if sep else "a single field"
        raise InputError(f"the header line is {found}, not by semicolons", path=path, line=1,
                         expected="semicolon-separated columns, as in the original AZDIAS files",
                         hint="Re-export the file with ';' as the separator")
    return [cell.strip().strip('"').strip() for cell in line.split(";")]


def _check_header(path: Path, header: list[str], names: list[str]) -> list[str]:
    """The extra columns, after checking every feature is there once."""
    if not set(names) & set(header):
        raise InputError("the first line holds none of the expected column names", path=path, line=1,
                         expected=f"a header line of attribute names, starting {';'.join(names[:3])}",
                         hint="Check that this is the right file and that its header line was not removed")
    duplicated = sorted(name for name, count in Counter(header).items() if count > 1)
    if duplicated:
        raise InputError(f"the header repeats {', '.join(map(_show, duplicated))}", path=path, line=1,
                         expected="each column once")
    missing = [n for n in names if n not in header]
    if missing:
        raise _missing_column(path, header, names, missing)
    return [h for h in header if h not in names]


def _missing_column(path: Path, header: list[str], names: list[str], missing: list[str]) -> InputError:
    first = missing[0]
    close = difflib.get_close_matches(first, [h for h in header if h not in names], n=1)
    hint = (f"Is {close[0]!r} the column {first} renamed? Rename it back" if close else
            "Every file needs all columns of the feature summary: export the full table again")
    more = f" (and {len(missing) - 1} more: {', '.join(missing[1:6])})" if len(missing) > 1 else ""
    return InputError(f"the column {first} is missing{more}", path=path, column=first, line=1,
                      expected=f"the {len(names)} columns listed in the feature summary", hint=hint)


def _batches(path: Path, header: list[str], codes: list[str], texts: list[str],
             encoding: str, span: Span | None = None) -> Iterator[pa.RecordBatch]:
    """Record batches of the ``codes`` and ``texts`` columns (of the whole file, or of ``span``);
    any parse problem becomes an InputError."""
    handler = _RowError(path, span)
    try:
        yield from _open(path if span is None else pa.BufferReader(_span_bytes(path, span)),
                         header, codes, texts, encoding, handler, skip_rows=int(span is None))
    except pa.ArrowInvalid as err:
        if handler.row is not None:
            raise handler.error() from None
        raise InputError(f"the file cannot be parsed ({_arrow_reason(err)})", path=path,
                         expected="semicolon-separated text with one line per person",
                         hint="Check that the file is a CSV export of the AZDIAS table") from None
    except OSError as err:
        raise InputError(f"the file cannot be read ({_arrow_reason(err)})", path=path) from None


def _span_bytes(path: Path, span: Span) -> bytes:
    with path.open("rb") as fh:
        fh.seek(span.start)
        return fh.read(span.stop - span.start)


def _open(path: Path | pa.BufferReader, header: list[str], codes: list[str], texts: list[str], encoding: str,
          handler: _RowError, skip_rows: int = 1) -> pacsv.CSVStreamingReader:
    """A serial streaming reader using our (cleaned) header names: it numbers the rows it rejects."""
    return pacsv.open_csv(path, **_options(header, codes, texts, encoding, handler, skip_rows, threads=False))


def _options(header: list[str], codes: list[str], texts: list[str], encoding: str, handler: _RowError,
             skip_rows: int, threads: bool, numbers: Sequence[str] = ()) -> dict:
    """pyarrow's options: codes as dictionary-encoded text (``numbers`` of them as float32), ``texts``
    as exact strings, blanks as null."""
    types = {name: _TEXT for name in codes} | {name: pa.float32() for name in numbers} | {
        name: pa.string() for name in texts}
    return dict(
        read_options=pacsv.ReadOptions(block_size=BLOCK_SIZE, use_threads=threads, column_names=header,
                                       skip_rows=skip_rows, encoding=encoding),
        parse_options=pacsv.ParseOptions(delimiter=";", invalid_row_handler=handler),
        convert_options=pacsv.ConvertOptions(include_columns=[*codes, *texts], column_types=types,
                                             strings_can_be_null=True, null_values=[""]),
    )


class _RowError:
    """pyarrow calls this for a line with the wrong number of fields; remember it and stop.

    Raising inside the handler is swallowed by pyarrow, so the bad row is kept here and turned
    into an InputError by ``_batches``.
    """

    def __init__(self, path: Path, span: Span | None = None) -> None:
        self.path, self.span = path, span
        self.row: pacsv.InvalidRow | None = None

    def __call__(self, row: pacsv.InvalidRow) -> str:
        self.row = row
        return "error"

    def error(self) -> InputError:
        row = self.row
        return InputError(f"the line has {row.actual_columns} fields instead of {row.expected_columns}",
                          path=self.path, line=_line(self.path, row.number, self.span),
                          expected="every line to have as many fields as the header",
                          hint=_field_count_hint(row))


def _field_count_hint(row: pacsv.InvalidRow) -> str:
    if '"' in row.text:
        return 'A quote (") in it opens a quoted field that runs on into the following lines: remove it'
    if row.actual_columns < row.expected_columns:
        return ("The line is incomplete: the file may be cut off here (copy or export it again), "
                "or the line uses another separator than ';'")
    return "The line has a stray ';' or a value containing ';': correct or remove it"


def _line(path: Path, record: int, span: Span | None) -> int:
    """The physical line of pyarrow's record ``record``: in the whole file (header = 1) or in ``span``
    (its first non-blank line = 1)."""
    if span is None:
        return _physical_line(path, record)
    return span.first_line - 1 + _physical_line(path, record, span.start)


def _physical_line(path: Path, record: int, start: int = 0) -> int:
    """The 1-based line on which record ``record`` (pyarrow's numbering, header = 1) starts.

    pyarrow skips blank lines when numbering records, so the two differ after a blank line.
    Only called to word an error, so reading the file again is fine; numpy keeps it fast.
    With ``start``, lines and records are counted from that byte on (a span's first line = 1).
    """
    lines = nonblank = partial = 0  # partial: content bytes of a line running into the next chunk
    with path.open("rb") as fh:
        fh.seek(start)
        for chunk in iter(lambda: fh.read(SCAN_CHUNK), b""):
            data = np.frombuffer(chunk, np.uint8)
            content = np.cumsum((data != ord("\n")) & (data != ord("\r")))
            ends = np.flatnonzero(data == ord("\n"))
            counted = nonblank + np.cumsum(np.diff(content[ends], prepend=-partial) > 0)
            hit = np.flatnonzero(counted == record)
            if hit.size:
                return lines + int(hit[0]) + 1
            if ends.size:
                lines, nonblank = lines + ends.size, int(counted[-1])
                partial = int(content[-1] - content[ends[-1]])
            else:
                partial += int(content[-1])
    return lines + 1 if partial and nonblank + 1 == record else record


def _arrow_reason(err: Exception) -> str:
    return str(err).splitlines()[0].rstrip(".")


def _convert(column: pa.Array, feature: Feature, path: Path, offset: int,
             span: Span | None = None) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Dictionary-encoded text -> float32 codes (numeric features), or for text features the
    normalised strings as (positions in their sorted distinct values, -1 = blank; those values).

    ``offset`` is the number of data rows before this block (in the file, or in ``span``), to
    report the line of a bad value.
    """
    values = [normalise_code(v) for v in column.dictionary.to_pylist()]
    blank = [v in MISSING_MARKERS for v in values]
    valid = ~np.asarray(column.is_null())
    indices = np.where(valid, column.indices.fill_null(0).to_numpy(zero_copy_only=False), len(values))
    if feature.is_text:
        known = [i for i, b in enumerate(blank) if not b]
        distinct, position = np.unique(np.array([values[i] for i in known], dtype=object), return_inverse=True)
        lookup = np.full(len(values) + 1, -1, dtype=np.int32)
        lookup[known] = position
        return lookup[indices], distinct
    numbers = np.full(len(values) + 1, np.nan, dtype=np.float64)
    for i, text in enumerate(values):
        if not blank[i]:
            numbers[i] = _number(text, i, indices, feature, path, offset, span)
    with np.errstate(over="ignore"):  # a huge value becomes inf, counted as out of range by cleaning
        return numbers.astype(np.float32)[indices]


def _number(text: str, code: int, indices: np.ndarray, feature: Feature, path: Path, offset: int,
            span: Span | None = None) -> float:
    """``text`` as a number, or an InputError at the first line holding it."""
    try:
        return float(text)
    except ValueError:
        row = int(np.flatnonzero(indices == code)[0])
        examples = ", ".join(list(feature.codes)[:4])
        raise InputError(f"the value {text!r} is not a number", path=path, column=feature.name,
                         line=_line(path, offset + row + (2 if span is None else 1), span),
                         expected=f"numeric codes such as {examples}" if examples else "a number",
                         hint=_number_hint(text)) from None


def _number_hint(text: str) -> str:
    if text.replace(",", ".", 1).lstrip("-").replace(".", "", 1).isdigit():
        return "Write decimals with '.', not ',' (or export the codes as whole numbers)"
    return "Check that the column was not exported as text labels instead of codes"
