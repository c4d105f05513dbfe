"""Where the input files come from: the user's configuration, or the embedded synthetic dataset.

The synthetic dataset is generated once per (generator version, seed, sizes) into a cache
folder (``SEGMENTS_CACHE_DIR``, default ``~/.cache/customer-segments``) and reused after that.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from analysis.settings import Settings
from analysis.errors import InputError
from analysis.shell.progress import Stages

if TYPE_CHECKING:
    from analysis.demo.synthetic import DemoPaths


@dataclass(frozen=True)
class Inputs:
    population: Path
    customers: Path
    feature_summary: Path | None  # None: the package's own copy of the published summary
    demo: bool

    def paths(self) -> dict[str, Path]:
        paths = {"population": self.population, "customers": self.customers,
                 "feature_summary": self.feature_summary}
        return {role: path for role, path in paths.items() if path is not None}


def cache_dir() -> Path:
    return Path(os.environ.get("SEGMENTS_CACHE_DIR", Path.home() / ".cache" / "customer-segments"))


def demo_folder(population: int, customers: int, seed: int) -> Path:
    from analysis.demo.synthetic import GENERATOR_VERSION  # the generator stays off the run path
    return cache_dir() / f"demo-v{GENERATOR_VERSION}-seed{seed}-{population}x{customers}"


def resolve_inputs(settings: Settings, stages: Stages) -> Inputs:
    """The files to analyse, generating the demo dataset first if it is needed and not cached."""
    if not settings.uses_demo_data:
        inputs = Inputs(settings.population, settings.customers, settings.feature_summary, demo=False)
        for role, path in inputs.paths().items():
            if not path.is_file():
                problem = "the path is a folder, not a file" if path.is_dir() else "the file does not exist"
                raise InputError(problem, path=path,
                                 hint=f"Check the {role} path in segments.toml, SEGMENTS_{role.upper()} "
                                      "or the command line")
        return inputs
    folder = demo_folder(settings.demo_population, settings.demo_customers, settings.analysis.seed)
    paths = ensure_demo(folder, settings.demo_population, settings.demo_customers, settings.analysis.seed, stages)
    stages.say("no data configured: using the synthetic demonstration dataset")
    return Inputs(paths.population, paths.customers, paths.feature_summary, demo=True)


def ensure_demo(folder: Path, population: int, customers: int, seed: int, stages: Stages) -> DemoPaths:
    """Generate the demo files into ``folder`` unless a complete copy is already there."""
    from analysis.demo.synthetic import DemoPaths, generate  # only when the demo data is used
    paths = DemoPaths.in_folder(folder)
    if not all(p.is_file() for p in (paths.population, paths.customers, paths.feature_summary, paths.truth)):
        with stages.stage(f"generate synthetic data ({population:,} + {customers:,} rows)"):
            generate(folder, population=population, customers=customers, seed=seed)
    return paths
