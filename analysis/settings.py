"""Settings: defaults, then ``segments.toml``, then ``SEGMENTS_*`` environment variables, then CLI flags.

Each later source overrides the earlier ones key by key. With no data files configured the
embedded synthetic dataset is used, so every command works on a fresh checkout.

``segments.toml`` (in the current directory, or the file named by ``SEGMENTS_CONFIG``)::

    [data]
    population = "data/Udacity_AZDIAS_Subset.csv"
    customers = "data/Udacity_CUSTOMERS_Subset.csv"
    feature_summary = "data/AZDIAS_Feature_Summary.csv"   # optional: the packaged copy is used

    [analysis]
    k = 8                       # force the number of segments; omit to let the tool choose
    groups = 6                  # force the number of groups (default: k, kept within 4-9)
    types = 24                  # force the number of types (default: 3 per group, 12-40)
    seed = 0
    column_missing_threshold = 0.3
    row_missing_threshold = 0.25
    variance_target = 0.8
    k_min = 2
    k_max = 15
    lookalike_sample = 10000    # rows per table for the lookalike score
    lookalike_indicators = false

    [output]
    results = "_results"

    [refresh]
    keep_model = false          # true: score a new delivery with the previous model (no refit)
    history_keep = 12           # how many runs the results folder's history keeps

    [engine]
    engine = "dask"             # "local" (default): one process; "dask": a Dask cluster
    scheduler = "tcp://host:8786"  # an existing Dask cluster; omit for a local one
    workers = 4                 # worker processes of the local cluster (default: one per core)
    worker_memory = 3.0         # GB limit per local worker (default: 80% of RAM / workers)

Relative paths in the file are resolved against the file's folder.
"""
from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from analysis.errors import InputError
from analysis.constants import REAL_CUSTOMERS, REAL_POPULATION

CONFIG_NAME = "segments.toml"
ENV_PREFIX = "SEGMENTS_"
_SECTIONS = {
    "data": ("population", "customers", "feature_summary"),
    "analysis": ("k", "seed", "column_missing_threshold", "row_missing_threshold",
                 "variance_target", "k_min", "k_max", "demo_population", "demo_customers",
                 "groups", "types", "lookalike_sample", "lookalike_indicators"),
    "output": ("results",),
    "refresh": ("keep_model", "history_keep"),
    "engine": ("engine", "scheduler", "workers", "worker_memory"),
}
ENGINES = ("local", "dask")
_PATHS = ("population", "customers", "feature_summary", "results")


@dataclass(frozen=True)
class AnalysisSettings:
    """Choices that change the analysis result (and therefore the cache key)."""

    k: int | None = None
    seed: int = 0
    column_missing_threshold: float = 0.30  # drop a column missing in more than 30% of people
    row_missing_threshold: float = 0.25  # set aside a row missing more than 25% of kept columns
    variance_target: float = 0.80  # keep the PCA components that explain 80% of variance
    k_min: int = 2
    k_max: int = 15
    groups: int | None = None  # force the number of groups (analysis.segment.levels)
    types: int | None = None  # force the number of types
    lookalike_sample: int = 10_000  # rows drawn per table for the lookalike model (a quarter held out)
    lookalike_indicators: bool = False  # give the lookalike model "value missing" columns

    def __post_init__(self) -> None:
        share = "a share above 0 and at most 1 (0.3 means 30%)"
        checks = [
            (self.k is None or self.k >= 2, "k", self.k, "an integer of at least 2"),
            (self.seed >= 0, "seed", self.seed, "an integer of at least 0"),
            (0 < self.column_missing_threshold <= 1, "column_missing_threshold", self.column_missing_threshold, share),
            (0 < self.row_missing_threshold <= 1, "row_missing_threshold", self.row_missing_threshold, share),
            (0 < self.variance_target <= 1, "variance_target", self.variance_target, share),
            (self.k_min >= 2, "k_min", self.k_min, "an integer of at least 2"),
            (self.k_min < self.k_max, "k_min/k_max", f"{self.k_min}/{self.k_max}",
             "2 <= k_min < k_max: k_min smaller than k_max"),
            (self.groups is None or self.groups >= 2, "groups", self.groups, "an integer of at least 2"),
            (self.types is None or self.types >= 3, "types", self.types, "an integer of at least 3"),
            (self.groups is None or self.types is None or self.groups < self.types, "groups/types",
             f"{self.groups}/{self.types}", "fewer groups than types"),
            (self.lookalike_sample >= 100, "lookalike_sample", self.lookalike_sample, "an integer of at least 100"),
        ]
        for ok, name, value, expected in checks:
            if not ok:  # before any work: a run that would fail, or mislead, after minutes of loading
                raise InputError(f"the setting {name} is out of range: it is {value}", column=name,
                                 expected=expected)


@dataclass(frozen=True)
class Settings:
    """Where the data is, how to analyse it and where results go."""

    population: Path | None = None
    customers: Path | None = None
    feature_summary: Path | None = None
    results: Path = Path("_results")
    demo_population: int = REAL_POPULATION
    demo_customers: int = REAL_CUSTOMERS
    keep_model: bool = False  # score with the previous run's model instead of refitting
    history_keep: int = 12  # runs kept in <results>/history
    analysis: AnalysisSettings = field(default_factory=AnalysisSettings)
    # How the analysis runs, not what it computes: not part of the cache key.
    engine: str = "local"
    scheduler: str | None = None  # address of an existing Dask scheduler
    workers: int | None = None  # worker processes of a local Dask cluster (None: one per core)
    worker_memory: float | None = None  # GB per local worker (None: 80% of the machine's memory / workers)

    @property
    def uses_demo_data(self) -> bool:
        return self.population is None and self.customers is None


def project_root(start: Path | None = None) -> Path:
    """The folder holding ``_quarto.yml``: the current one or a parent."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_quarto.yml").is_file():
            return folder
    return here


def load_settings(overrides: Mapping[str, Any] | None = None, cwd: Path | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Merge defaults, the config file, the environment and ``overrides`` (CLI flags; None = unset)."""
    cwd = Path.cwd() if cwd is None else cwd
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {"results": Settings.results}
    values.update(_from_file(_config_path(cwd, environ)))
    values.update(_from_env(environ))
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return _build(values, cwd)


def _config_path(cwd: Path, environ: Mapping[str, str]) -> Path | None:
    named = environ.get(ENV_PREFIX + "CONFIG")
    if named:
        path = (cwd / named)
        if not path.is_file():
            raise InputError("the config file named by SEGMENTS_CONFIG does not exist", path=path)
        return path
    default = cwd / CONFIG_NAME
    return default if default.is_file() else None


def _from_file(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"the config file is not valid TOML ({err})", path=path) from None
    values: dict[str, Any] = {}
    for section, table in doc.items():
        allowed = _SECTIONS.get(section)
        if allowed is None or not isinstance(table, dict):
            raise InputError(f"unknown section [{section}]", path=path,
                             expected="sections " + ", ".join(f"[{s}]" for s in _SECTIONS))
        for key, value in table.items():
            if key not in allowed:
                raise InputError(f"unknown key {key!r} in [{section}]", path=path,
                                 expected="one of " + ", ".join(allowed))
            values[key] = path.parent / value if key in _PATHS else value
    return values


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    keys = [key for keys in _SECTIONS.values() for key in keys]
    return {key: environ[ENV_PREFIX + key.upper()] for key in keys if ENV_PREFIX + key.upper() in environ}


def _build(values: dict[str, Any], cwd: Path) -> Settings:
    analysis_keys = {f.name: f.type for f in fields(AnalysisSettings)}
    analysis = {k: _coerce(k, v, analysis_keys[k]) for k, v in values.items() if k in analysis_keys}
    top = {}
    for key, value in values.items():
        if key in _PATHS:
            top[key] = cwd / value
        elif key in ("demo_population", "demo_customers", "workers"):
            top[key] = _coerce(key, value, "int")
        elif key == "history_keep":
            top[key] = _coerce(key, value, "int")
            if top[key] < 1:
                raise InputError("the setting history_keep is out of range", column=key,
                                 expected="an integer of at least 1")
        elif key == "keep_model":
            top[key] = _flag(key, value)
        elif key in ("engine", "scheduler"):
            top[key] = str(value)
        elif key == "worker_memory":
            top[key] = _coerce(key, value, "float")
            if not top[key] > 0:
                raise InputError("the setting worker_memory is out of range", column=key,
                                 expected="a number of gigabytes above 0")
    if top.get("engine", "local") not in ENGINES:
        raise InputError(f"the setting engine is {top['engine']!r}", column="engine",
                         expected=" or ".join(ENGINES))
    settings = Settings(**top, analysis=AnalysisSettings(**analysis))
    if (settings.population is None) != (settings.customers is None):
        missing = "customers" if settings.customers is None else "population"
        raise InputError(f"only one data file is configured; the {missing} file is missing",
                         column=missing, hint="Set both population and customers, or neither to use the demo data")
    return settings


def _coerce(key: str, value: Any, kind: str) -> Any:
    """Turn strings from the environment or CLI into the setting's type."""
    if "bool" in str(kind):
        return _flag(key, value)
    target = int if "int" in str(kind) else float
    try:
        return target(value)
    except (TypeError, ValueError):
        raise InputError(f"the setting {key} is {value!r}", column=key,
                         expected="an integer" if target is int else "a number") from None


def _flag(key: str, value: Any) -> bool:
    """A yes/no setting from TOML (a boolean), the environment or a flag (1/0, true/false, yes/no)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise InputError(f"the setting {key} is {value!r}", column=key, expected="true or false")


def replace_analysis(settings: Settings, **changes: Any) -> Settings:
    """A copy of settings with some analysis settings changed (used by benchmarks and tests)."""
    return dataclasses.replace(settings, analysis=dataclasses.replace(settings.analysis, **changes))
