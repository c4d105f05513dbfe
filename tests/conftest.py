"""Shared fixtures: one small generated dataset and one analysis run for the whole session.

The analysis is run once (about half a minute) and reused by the pipeline, CLI and report
tests; tests must treat the folders as read-only (copy them when they need to change files).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from analysis.settings import AnalysisSettings, Settings
from analysis.pipeline import run
from analysis.shell.progress import Stages
from analysis.demo.synthetic import DemoPaths, generate

SMALL_POPULATION = 30_000
SMALL_CUSTOMERS = 8_000
# Fixtures that cost a full analysis (or its data): a test using one is slow wherever it lives.
SLOW_FIXTURES = {"small_data", "small_settings", "small_results"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs the session's analysis as slow, so ``pytest -m "not slow"`` is quick."""
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def small_data(tmp_path_factory) -> DemoPaths:
    """A small synthetic dataset (same generator and format as the full-size default)."""
    return generate(tmp_path_factory.mktemp("data") / "demo", population=SMALL_POPULATION,
                    customers=SMALL_CUSTOMERS, seed=0)


@pytest.fixture(scope="session")
def small_settings(small_data, tmp_path_factory) -> Settings:
    return Settings(population=small_data.population, customers=small_data.customers,
                    feature_summary=small_data.feature_summary,
                    results=tmp_path_factory.mktemp("results") / "_results",
                    analysis=AnalysisSettings(k_max=10))


@pytest.fixture(scope="session")
def small_results(small_settings) -> Path:
    """Results folder of one analysis of the small dataset."""
    return run(small_settings, Stages(stream=None))


@pytest.fixture
def cheap_k(monkeypatch):
    """Cheap CLI runs: only k = 2..4 are scanned, and no stray segments.toml is read."""
    monkeypatch.setenv("SEGMENTS_K_MAX", "4")
    monkeypatch.delenv("SEGMENTS_CONFIG", raising=False)
