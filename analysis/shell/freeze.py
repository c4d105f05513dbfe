"""Quarto's frozen page outputs, kept only while they belong to the same results and code.

``_quarto.yml`` sets ``freeze: auto``: Quarto re-executes a page only when its source changed,
and otherwise reuses the output stored in ``_freeze/``. The page sources do not change when the
data does, so on its own that would serve the previous data's numbers after a refresh. Here
the frozen outputs are tied to a key: the results file plus the code that turns results into
pages (the whole ``analysis`` package). Before a render, a different key (or none) removes
``_freeze/``, so every page runs again; after a successful render the key is stored with it.
"""
from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import analysis

FREEZE = "_freeze"
KEY_FILE = "results-key.txt"
RESULTS_FILE = "results.json"
# Chart files a page writes beside itself and references from its (frozen) markdown.
CHART_FILE = re.compile(r"[\w-]+_files/[\w./-]+?\.png")
CODE = ("**/*.py", "**/*.csv", "**/*.toml", "**/*.j2", "**/*.jinja", "**/*.md")


def render_key(results: Path) -> str | None:
    """Hash of the results file and of every source file of the installed ``analysis`` package
    (None without a results file: nothing frozen is then kept)."""
    digest = hashlib.blake2b(digest_size=16)
    try:
        digest.update((Path(results) / RESULTS_FILE).read_bytes())
    except OSError:
        return None
    package = Path(analysis.__file__).parent
    for path in sorted({p for pattern in CODE for p in package.glob(pattern) if "__pycache__" not in p.parts}):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def forget_stale(root: Path, key: str | None) -> bool:
    """Remove ``_freeze/`` unless it was made from the same key; True when it was kept."""
    folder = root / FREEZE
    try:
        if key and (folder / KEY_FILE).read_text(encoding="utf-8").strip() == key and not _missing_charts(root):
            return True
    except OSError:
        pass
    shutil.rmtree(folder, ignore_errors=True)
    return False


def remember(root: Path, key: str | None) -> None:
    """After a successful render: mark the frozen outputs as made from ``key``."""
    folder = root / FREEZE
    if key and folder.is_dir():
        (folder / KEY_FILE).write_text(key + "\n", encoding="utf-8")


def _missing_charts(root: Path) -> list[str]:
    """Chart files named in frozen outputs that are gone from beside their page (so re-run it)."""
    folder = root / FREEZE
    missing = []
    for stored in folder.glob("**/execute-results/*.json"):
        page_dir = root.joinpath(*stored.relative_to(folder).parts[:-3])
        text = stored.read_text(encoding="utf-8")
        missing += [name for name in set(CHART_FILE.findall(text)) if not (page_dir / name).is_file()]
    return missing
