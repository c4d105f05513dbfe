"""Small valid input files as bytes, and helpers to damage and write them (shared by the CLI,
bad-input and fault tests)."""
from __future__ import annotations

from pathlib import Path

from analysis.demo.synthetic import generate

Files = dict[str, bytes]


def valid_files(folder: Path, population: int, customers: int, seed: int) -> Files:
    """Generated population, customers and summary files, as bytes keyed by role."""
    paths = generate(folder, population=population, customers=customers, seed=seed)
    return {"population": paths.population.read_bytes(), "customers": paths.customers.read_bytes(),
            "summary": paths.feature_summary.read_bytes()}


def write_files(folder: Path, files: Files) -> dict[str, Path]:
    """Write each role's bytes to ``folder/<role>.csv``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {role: folder / f"{role}.csv" for role in files}
    for role, path in paths.items():
        path.write_bytes(files[role])
    return paths


def set_field(data: bytes, line: int, column: str, value: bytes) -> bytes:
    """``data`` with the field ``column`` of 1-based ``line`` replaced by ``value``."""
    lines = data.split(b"\n")
    position = lines[0].split(b";").index(column.encode())
    fields = lines[line - 1].split(b";")
    fields[position] = value
    lines[line - 1] = b";".join(fields)
    return b"\n".join(lines)
