"""Reading population files: what real exports look like, and exact line numbers in errors.

Line numbers are 1-based with the header as line 1. They are checked across pyarrow block
boundaries (a tiny BLOCK_SIZE gives a block every dozen rows) and around blank lines, which
pyarrow skips without counting.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.inputs import loading
from analysis.errors import InputError
from analysis.inputs.loading import load_table
from analysis.inputs.schema import load_schema
from analysis.demo.synthetic import generate

ROWS = 400
SMALL_BLOCK = 4096  # holds the ~1.9 KB header and about 8 rows of ~260 bytes


@pytest.fixture(scope="module")
def features():
    return list(load_schema().values())


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> bytes:
    paths = generate(tmp_path_factory.mktemp("loading") / "data", population=ROWS, customers=10, seed=1)
    return paths.population.read_bytes()


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks, ranges and groups of a few rows: every boundary the readers have falls inside the file."""
    monkeypatch.setattr(loading, "BLOCK_SIZE", SMALL_BLOCK)
    monkeypatch.setattr(loading, "RANGE_BYTES", SMALL_BLOCK)
    monkeypatch.setattr(loading, "GROUP_ROWS", 1)


def serial_only(monkeypatch):
    """Make the threaded parser fail at once, as it does on a damaged file: the serial one reads."""
    def fail(*args, **kwargs):
        raise loading._Reread
        yield  # a generator, like the real one

    monkeypatch.setattr(loading, "_ranges", fail)


def lines_of(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def set_field(data: bytes, line: int, column: str, value: bytes) -> bytes:
    """``data`` with the field ``column`` of 1-based ``line`` replaced by ``value``."""
    lines = lines_of(data)
    position = lines[0].split(b";").index(column.encode())
    fields = lines[line - 1].split(b";")
    fields[position] = value
    lines[line - 1] = b";".join(fields)
    return b"\n".join(lines)


def load(tmp_path, data: bytes, features, **kwargs):
    path = tmp_path / "population.csv"
    path.write_bytes(data)
    return load_table(path, features, **kwargs)


def test_reads_codes_as_numbers_and_text_codes_as_categories(tmp_path, original, features):
    table = load(tmp_path, original, features)
    assert table.rows == ROWS and table.extra_columns == () and table.encoding == "utf-8"
    assert table.data["FINANZTYP"].dtype == np.float32
    assert set(table.data["OST_WEST_KZ"].dropna().unique()) <= {"O", "W"}
    assert table.notes() == []


@pytest.fixture
def edges(tmp_path, original, features, small_blocks) -> list[int]:
    """Lines either side of the first three block boundaries, plus the first and last data lines."""
    rows: list[int] = []
    load(tmp_path, original, features, progress=rows.append)
    assert len(rows) > 10, "BLOCK_SIZE should give many blocks"
    return [2, *(edge + offset for edge in rows[:3] for offset in (1, 2)), ROWS + 1]


def test_line_of_a_non_number_is_exact_across_blocks(tmp_path, original, features, edges):
    for line in edges:
        with pytest.raises(InputError) as caught:
            load(tmp_path, set_field(original, line, "FINANZTYP", b"Sparer"), features)
        assert (caught.value.line, caught.value.column) == (line, "FINANZTYP")
        assert "'Sparer' is not a number" in caught.value.message


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
def test_threaded_and_serial_readers_give_the_same_table(tmp_path, original, features, small_blocks,
                                                         monkeypatch, ending):
    lines = lines_of(original)
    lines[7:7] = [b"", b""]  # blank lines, which both parsers skip
    data = ending.join(lines)
    with monkeypatch.context() as patch:  # the threaded parser must not need the serial one here
        patch.setattr(loading, "_batches", lambda *args, **kwargs: pytest.fail("fell back to the serial reader"))
        threaded = load(tmp_path, data, features)
    serial_only(monkeypatch)
    serial = load(tmp_path, data, features)
    assert threaded.rows == serial.rows == ROWS
    pd.testing.assert_frame_equal(threaded.data, serial.data)


def test_plain_ranges_are_parsed_as_floats_and_a_range_with_other_text_as_text(tmp_path, original, features,
                                                                             small_blocks, monkeypatch):
    """The fast float parse and the text parse it falls back to give the same table."""
    kinds: list[str] = []
    parse = loading._parse_range

    def recorded(*args, **kwargs):
        table = parse(*args, **kwargs)
        kinds.append(str(table.schema.field("FINANZTYP").type))
        return table

    monkeypatch.setattr(loading, "_parse_range", recorded)
    plain = load(tmp_path, set_field(set_field(original, 30, "FINANZTYP", b"3"), 31, "ANREDE_KZ", b""),
                 features).data
    assert set(kinds) == {"float"}, "plain numbers and blanks should parse as floats"
    kinds.clear()
    odd = load(tmp_path, set_field(set_field(original, 30, "FINANZTYP", b" 3 "), 31, "ANREDE_KZ", b"NA"),
               features).data
    assert kinds.count("float") == len(kinds) - 1, "only the range holding ' 3 ' and 'NA' should be text"
    pd.testing.assert_frame_equal(odd, plain)


def test_line_of_a_short_row_is_exact_across_blocks(tmp_path, original, features, edges):
    for line in edges:
        lines = lines_of(original)
        lines[line - 1] = lines[line - 1].rsplit(b";", 3)[0]
        with pytest.raises(InputError) as caught:
            load(tmp_path, b"\n".join(lines), features)
        assert caught.value.line == line
        assert "82 fields instead of 85" in caught.value.message


@pytest.mark.parametrize("blank", [b"", b"\r"])
def test_blank_lines_are_skipped_and_do_not_shift_line_numbers(tmp_path, original, features,
                                                               small_blocks, blank):
    lines = lines_of(original)
    lines[5:5] = [blank, blank]  # two blank lines after line 5
    data = b"\n".join(lines)
    assert load(tmp_path, data, features).rows == ROWS
    with pytest.raises(InputError) as caught:
        load(tmp_path, set_field(data, 300, "SEMIO_REL", b"oft"), features)
    assert caught.value.line == 300
    damaged = lines_of(data)
    damaged[199] += b";1"
    with pytest.raises(InputError) as caught:
        load(tmp_path, b"\n".join(damaged), features)
    assert caught.value.line == 200


def reference_line(lines: list[bytes], record: int) -> int:
    """The naive answer: count non-blank lines until the record-th."""
    seen = 0
    for number, line in enumerate(lines, start=1):
        seen += bool(line.strip(b"\r"))
        if seen == record:
            return number
    raise AssertionError("record beyond the file")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([b"", b"\r", b"x", b"1;2", b"a;b\r"]), min_size=1, max_size=30),
       st.integers(1, 12), st.data())
def test_physical_line_matches_a_naive_count(tmp_path_factory, lines, chunk, data):
    if not any(line.strip(b"\r") for line in lines):
        lines = [*lines, b"x"]
    records = sum(bool(line.strip(b"\r")) for line in lines)
    record = data.draw(st.integers(1, records))
    path = tmp_path_factory.mktemp("lines") / "f.csv"
    path.write_bytes(b"\n".join(lines) + data.draw(st.sampled_from([b"", b"\n"])))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loading, "SCAN_CHUNK", chunk)
        assert loading._physical_line(path, record) == reference_line(lines, record)


def test_latin1_file_is_read_transparently(tmp_path, original, features):
    lines = lines_of(original)
    names = [f"Müller {i}".encode("latin-1") for i in range(len(lines) - 2)]
    data = b"\n".join([lines[0] + b";NAME", *(l + b";" + n for l, n in zip(lines[1:-1], names)), b""])
    table = load(tmp_path, data, features, keep_extra=True)
    assert table.encoding == "latin-1"
    assert table.extra["NAME"].iloc[0] == "Müller 0"
    assert table.notes() == ["extra columns ignored: NAME", "not valid UTF-8, read as latin-1"]


def test_utf8_names_are_not_garbled(tmp_path, original, features):
    lines = lines_of(original)
    data = b"\n".join([b"\xef\xbb\xbf" + lines[0] + b";NAME",
                       *(l + ";Jürgen".encode() for l in lines[1:-1]), b""])
    table = load(tmp_path, data, features, keep_extra=True)
    assert table.encoding == "utf-8" and set(table.extra["NAME"]) == {"Jürgen"}
    assert "AGER_TYP" in table.data


def test_extra_columns_are_copied_as_exact_text(tmp_path, original, features):
    lines = lines_of(original)
    data = b"\n".join([b"ID;" + lines[0], *(f"{i:06d};".encode() + l for i, l in enumerate(lines[1:-1])), b""])
    table = load(tmp_path, data, features, keep_extra=True)
    assert table.extra_columns == ("ID",)
    assert table.extra["ID"].tolist()[:3] == ["000000", "000001", "000002"]
    assert load(tmp_path, data, features).extra is None


@pytest.mark.parametrize("marker", [b"NA", b"NULL", b"nan", b"#N/A", b""])
def test_missing_markers_of_other_tools_are_blanks(tmp_path, original, features, marker):
    data = set_field(set_field(original, 2, "FINANZTYP", marker), 3, "CAMEO_DEU_2015", marker)
    table = load(tmp_path, data, features)
    assert np.isnan(table.data["FINANZTYP"].iloc[0])
    assert table.data["CAMEO_DEU_2015"].isna().iloc[1]


def test_float_written_codes_quotes_and_crlf_are_accepted(tmp_path, original, features):
    plain = load(tmp_path, original, features).data
    data = set_field(original, 2, "FINANZTYP", b"2.0")
    data = set_field(data, 3, "CAMEO_DEUG_2015", b'"4"')
    data = data.replace(b"AGER_TYP;", b'"AGER_TYP";', 1).replace(b"\n", b"\r\n")
    table = load(tmp_path, data, features).data
    assert table["FINANZTYP"].iloc[0] == 2.0
    assert table["CAMEO_DEUG_2015"].iloc[1] == "4"
    assert table["AGER_TYP"].equals(plain["AGER_TYP"])


def test_huge_values_become_infinite_without_a_warning(tmp_path, original, features):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = load(tmp_path, set_field(original, 2, "GEBURTSJAHR", b"1e60"), features)
    assert np.isinf(table.data["GEBURTSJAHR"].iloc[0])


def test_decimal_comma_gets_its_own_hint(tmp_path, original, features):
    with pytest.raises(InputError) as caught:
        load(tmp_path, set_field(original, 4, "FINANZTYP", b"2,0"), features)
    assert "Write decimals with '.'" in caught.value.message


def test_duplicate_rows_are_counted(tmp_path, original, features):
    lines = lines_of(original)
    table = load(tmp_path, b"\n".join([*lines[:-1], *lines[1:4], b""]), features)
    assert table.rows == ROWS + 3
    assert table.duplicate_rows >= 3
    assert table.facts()["duplicate_rows"] == table.duplicate_rows


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_row_hashes_in_blocks_are_pandas_row_hashes(workers, monkeypatch):
    monkeypatch.setattr(loading, "HASH_ROWS", 7)  # many blocks, the last one short
    rng = np.random.default_rng(0)
    rows = 50
    codes = rng.integers(1, 4, size=rows).astype(np.float32)
    codes[rng.random(rows) < 0.2] = np.nan
    frame = pd.DataFrame({"A": codes, "B": rng.integers(0, 2, size=rows).astype(np.float32),
                          "C": pd.Categorical(rng.choice(["8A", "XX", None], size=rows))})
    frame = pd.concat([frame, frame.iloc[[3, 3, 40]]], ignore_index=True)  # three repeated rows
    expected = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    hashes = loading.row_hashes(frame, workers)
    assert hashes.dtype == np.uint64 and np.array_equal(hashes, expected)
    assert int(pd.Series(hashes).duplicated().sum()) == int(frame.duplicated().sum()) >= 3


@pytest.mark.parametrize("blocks", [
    [["8A", None, "XX"], ["1A", "8A"], [None, None]],
    [[None, None], []],
    [],
])
def test_text_blocks_join_into_the_categorical_of_their_strings(blocks):
    """Joining (codes, distinct values) blocks gives what pandas builds from all the strings."""
    parts = []
    for strings in blocks:
        distinct = np.unique(np.array([s for s in strings if s is not None], dtype=object))
        parts.append((np.array([-1 if s is None else int(np.searchsorted(distinct, s)) for s in strings],
                               dtype=np.int32), distinct))
    expected = pd.Categorical(np.array([s for strings in blocks for s in strings], dtype=object))
    joined = loading._categorical(parts)
    pd.testing.assert_series_equal(pd.Series(joined), pd.Series(expected))


@pytest.mark.parametrize(("tail", "expected"), [
    ("ä".encode(), "utf-8"),  # a whole character split across two chunks
    (b"\xc3", "latin-1"),  # the first byte of a character, then plain ASCII: not UTF-8
    (b"\xe4", "latin-1"),  # a Latin-1 byte
    (b"\xc3" + b"5" * 8 + b"\xa4", "latin-1"),  # a character's two bytes with a chunk of ASCII between
])
def test_encoding_is_decided_across_chunk_boundaries(tmp_path, monkeypatch, tail, expected):
    monkeypatch.setattr(loading, "SCAN_CHUNK", 8)
    path = tmp_path / "names.csv"
    path.write_bytes(b"a;b\n123" + tail + b"5;6\n" + b"7;8\n" * 5)  # the tail starts at the first chunk's last byte
    assert loading._encoding(path) == expected
