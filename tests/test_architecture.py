"""The import rules of docs/architecture.md, read from its table and checked on every module.

Each ``analysis/**.py`` file is parsed with :mod:`ast` (nothing is imported to check it). A
module belongs to the part named in the table's first column (a subpackage ``inputs/`` or a
top-level module ``pipeline.py``); every ``analysis.*`` import it makes must name its own part or
one the table's last column allows. The first row of the table is "base".
"""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "analysis"
DOC = ROOT / "docs" / "architecture.md"



@dataclass(frozen=True)
class Import:
    module: str  # file path inside analysis/, e.g. "shell/sources.py"
    target: str  # part imported, e.g. "demo" or "constants.py"
    line: int
    in_function: bool


def part_of(name: str) -> str | None:
    """The table part of a dotted module name: 'analysis.inputs.loading' -> 'inputs'."""
    pieces = name.split(".")
    if pieces[0] != "analysis":
        return None
    if len(pieces) == 1:
        return "__init__.py"
    if (PACKAGE / pieces[1]).is_dir():
        return pieces[1]
    return pieces[1] + ".py"


def submodule(module: str, name: str) -> str:
    """``from module import name``: the module ``module.name`` when it is one, else ``module``."""
    inside = PACKAGE.parent.joinpath(*module.split("."), name)
    return f"{module}.{name}" if inside.is_dir() or inside.with_suffix(".py").is_file() else module


def file_part(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.name


def imports(path: Path) -> list[Import]:
    """Every run-time ``analysis`` import of a file (``if TYPE_CHECKING:`` blocks skipped)."""
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for other in child.orelse:
                    visit(other, in_function)
                continue
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            names: list[str] = []
            if isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
                # "from analysis.present import words" imports analysis.present.words
                names = [submodule(child.module, alias.name) for alias in child.names]
            for name in names:
                target = part_of(name)
                if target:
                    found.append(Import(path.relative_to(PACKAGE).as_posix(), target, child.lineno, inner))
            visit(child, inner)

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return found


def all_imports() -> list[Import]:
    return [i for path in sorted(PACKAGE.rglob("*.py")) for i in imports(path)]


def rules() -> tuple[dict[str, set[str]], dict[str, str]]:
    """From the table: part -> parts it may import (its own included), and each part's cell text."""
    rows = [line for line in DOC.read_text(encoding="utf-8").splitlines() if line.startswith("| `")]
    parts = [re.findall(r"`([^`]+)`", row.split("|")[1]) for row in rows]
    base = set(parts[0])
    everything = {p.rstrip("/") for group in parts for p in group}
    allowed: dict[str, set[str]] = {}
    cells: dict[str, str] = {}
    above: set[str] = set()
    for group, row in zip(parts, rows):
        cell = row.split("|")[3]
        may = {name.split(".")[0].rstrip("/") for name in re.findall(r"`([^`]+)`", cell)}
        may = {m if (PACKAGE / m).is_dir() else m if m.endswith(".py") else m + ".py" for m in may}
        if re.search(r"\bbase\b", cell):
            may |= base
        if "everything above" in cell:
            may |= above
        if cell.strip().startswith("anything"):
            may |= everything
        for part in group:
            part = part.rstrip("/")
            allowed[part] = may | {p.rstrip("/") for p in group}
            cells[part] = cell
        above |= {p.rstrip("/") for p in group}
    return allowed, cells


def test_the_table_covers_every_part_of_the_package():
    allowed, _ = rules()
    parts = {file_part(path) for path in PACKAGE.rglob("*.py")}
    assert parts <= set(allowed), sorted(parts - set(allowed))
    assert set(allowed) <= parts, sorted(set(allowed) - parts)  # no row for a part that is gone


def test_every_import_follows_the_table():
    allowed, cells = rules()
    broken = []
    for found in all_imports():
        part = found.module.split("/")[0] if "/" in found.module else found.module
        if found.target in allowed[part]:
            continue
        broken.append(f"analysis/{found.module}:{found.line} imports {found.target} "
                      f"({part} may import: {cells[part].strip()})")
    assert not broken, "\n".join(broken)


def test_demo_is_imported_only_inside_functions():
    at_module_level = [f"{i.module}:{i.line}" for i in all_imports()
                       if i.target == "demo" and not i.in_function and not i.module.startswith("demo/")]
    assert not at_module_level


def test_the_checker_sees_a_forbidden_import(tmp_path):
    """The parser and the table catch what they should: a fake analysis module importing the
    command line is reported, a function-level demo import is seen as one."""
    allowed, _ = rules()
    assert "shell" not in allowed["inputs"] and "present" not in allowed["prepare"]
    assert "demo" in allowed["shell"] and "pipeline.py" in allowed["shell"]
    assert {"inputs", "prepare", "segment", "compare", "profile"} <= allowed["pipeline.py"]
    assert allowed["results.py"] == allowed["constants.py"] | {"results.py"}
    sample = PACKAGE / "shell" / "sources.py"
    demo = [i for i in imports(sample) if i.target == "demo"]
    assert demo and all(i.in_function for i in demo)


PROBE = """
import sys
for step in sys.argv[1:]:
    for module in step.split(","):
        __import__(module)
    print(" ".join(sorted(sys.modules)))
"""


@pytest.fixture(scope="module")
def loaded() -> dict[str, set[str]]:
    """Modules loaded in one fresh interpreter after each step: reading results, then running."""
    steps = ["analysis.results,analysis.present.words", "analysis.pipeline,analysis.shell.cli"]
    done = subprocess.run([sys.executable, "-c", PROBE, *steps], capture_output=True, text=True, check=True,
                          cwd=ROOT)
    return dict(zip(["read", "run"], (set(line.split()) for line in done.stdout.splitlines())))


def test_reading_results_loads_neither_scikit_learn_nor_joblib(loaded):
    assert {"analysis.results", "analysis.present.words"} <= loaded["read"]  # the probe itself works
    heavy = {name for name in loaded["read"] if name.split(".")[0] in ("sklearn", "joblib")}
    assert not heavy, sorted(heavy)[:5]


def test_the_run_path_does_not_load_the_demo_generator(loaded):
    assert {"analysis.pipeline", "analysis.shell.cli", "sklearn"} <= loaded["run"]
    assert "analysis.demo.synthetic" not in loaded["run"]
