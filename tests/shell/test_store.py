"""Fingerprints, cache keys and all-or-nothing writes."""
from __future__ import annotations

import hashlib
import random

import pytest

from analysis.shell import store
from analysis.shell.store import atomic_file, atomic_folder, cache_key, file_fingerprint, file_fingerprints


def test_fingerprint_changes_with_content(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("A;B\n1;2\n")
    first = file_fingerprint(path)
    path.write_text("A;B\n1;3\n")
    assert file_fingerprint(path)["blake2b"] != first["blake2b"]
    assert first["bytes"] == 8


def test_fingerprints_side_by_side_are_the_blake2b_of_each_whole_file(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "CHUNK", 1000)  # several reads per file, the last one short
    rng = random.Random(0)
    contents = {role: bytes(rng.randrange(256) for _ in range(size))
                for role, size in (("population", 5_500), ("customers", 2_000), ("mailing", 0))}
    paths = {}
    for role, content in contents.items():
        paths[role] = tmp_path / f"{role}.csv"
        paths[role].write_bytes(content)
    expected = {role: {"path": str(paths[role]), "bytes": len(content),
                       "blake2b": hashlib.blake2b(content, digest_size=16).hexdigest()}
                for role, content in contents.items()}
    assert file_fingerprints(paths) == expected
    assert file_fingerprints(paths, workers=1) == expected
    assert list(file_fingerprints(paths, workers=3)) == list(paths)  # roles in the order given


def test_cache_key_is_stable_and_sensitive():
    assert cache_key({"a": 1, "b": 2}, "v1") == cache_key({"b": 2, "a": 1}, "v1")
    assert cache_key({"a": 1}, "v1") != cache_key({"a": 1}, "v2")


def test_atomic_folder_replaces_on_success(tmp_path):
    target = tmp_path / "results"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_folder(target) as work:
        (work / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_atomic_folder_keeps_old_results_on_failure(tmp_path, error):
    target = tmp_path / "results"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(error):
        with atomic_folder(target) as work:
            (work / "half.txt").write_text("half")
            raise error()
    assert [p.name for p in target.iterdir()] == ["old.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_atomic_file(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("before")
    with pytest.raises(ValueError):
        with atomic_file(target) as work:
            work.write_text("partial")
            raise ValueError
    assert target.read_text() == "before"
    with atomic_file(target) as work:
        work.write_text("after")
    assert target.read_text() == "after"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]
