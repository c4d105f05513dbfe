"""Settings precedence: defaults < segments.toml < SEGMENTS_* environment < CLI flags."""
from __future__ import annotations

from pathlib import Path

import pytest

from analysis.settings import load_settings
from analysis.errors import InputError


def write_config(folder: Path, text: str) -> None:
    (folder / "segments.toml").write_text(text, encoding="utf-8")


def test_defaults_use_demo_data(tmp_path):
    settings = load_settings(cwd=tmp_path, environ={})
    assert settings.uses_demo_data
    assert settings.analysis.k is None
    assert settings.results == tmp_path / "_results"


def test_file_then_environment_then_flags(tmp_path):
    write_config(tmp_path, '[data]\npopulation = "p.csv"\ncustomers = "c.csv"\n[analysis]\nk = 5\nseed = 3\n')
    from_file = load_settings(cwd=tmp_path, environ={})
    assert (from_file.population, from_file.analysis.k, from_file.analysis.seed) == (tmp_path / "p.csv", 5, 3)
    from_env = load_settings(cwd=tmp_path, environ={"SEGMENTS_K": "7"})
    assert (from_env.analysis.k, from_env.analysis.seed) == (7, 3)
    from_flags = load_settings({"k": 9, "seed": None}, cwd=tmp_path, environ={"SEGMENTS_K": "7"})
    assert (from_flags.analysis.k, from_flags.analysis.seed) == (9, 3)


def test_config_paths_are_relative_to_the_config_file(tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "my.toml").write_text('[data]\npopulation = "a.csv"\ncustomers = "b.csv"\n')
    settings = load_settings(cwd=tmp_path, environ={"SEGMENTS_CONFIG": "conf/my.toml"})
    assert settings.population == tmp_path / "conf" / "a.csv"


@pytest.mark.parametrize("text, message", [
    ("[data\n", "not valid TOML"),
    ("[colours]\nred = 1\n", "unknown section [colours]"),
    ("[analysis]\nkay = 3\n", "unknown key 'kay' in [analysis]"),
    ("[analysis]\nk = 1\n", "the setting k is out of range"),
    ("[analysis]\nvariance_target = 1.5\n", "the setting variance_target is out of range"),
    ('[data]\npopulation = "p.csv"\n', "only one data file is configured; the customers file is missing"),
])
def test_bad_config_is_a_clear_error(tmp_path, text, message):
    write_config(tmp_path, text)
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_settings(cwd=tmp_path, environ={})


def test_bad_environment_value(tmp_path):
    with pytest.raises(InputError, match="the setting seed is 'abc'. Expected an integer"):
        load_settings(cwd=tmp_path, environ={"SEGMENTS_SEED": "abc"})


def test_named_config_must_exist(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_settings(cwd=tmp_path, environ={"SEGMENTS_CONFIG": "nope.toml"})


def test_engine_from_file_environment_and_flags(tmp_path):
    assert load_settings(cwd=tmp_path, environ={}).engine == "local"
    write_config(tmp_path, '[engine]\nengine = "dask"\nscheduler = "tcp://host:8786"\nworkers = 3\n')
    from_file = load_settings(cwd=tmp_path, environ={})
    assert (from_file.engine, from_file.scheduler, from_file.workers) == ("dask", "tcp://host:8786", 3)
    assert load_settings(cwd=tmp_path, environ={"SEGMENTS_ENGINE": "local"}).engine == "local"
    assert load_settings({"engine": "local", "scheduler": None}, cwd=tmp_path, environ={}).engine == "local"
    with pytest.raises(InputError, match="engine"):
        load_settings(cwd=tmp_path, environ={"SEGMENTS_ENGINE": "spark"})
    assert load_settings(cwd=tmp_path, environ={"SEGMENTS_WORKER_MEMORY": "2.5"}).worker_memory == 2.5
    with pytest.raises(InputError, match="worker_memory is out of range"):
        load_settings(cwd=tmp_path, environ={"SEGMENTS_WORKER_MEMORY": "0"})


def test_lookalike_settings_from_file_and_environment(tmp_path):
    write_config(tmp_path, "[analysis]\nlookalike_sample = 5000\nlookalike_indicators = true\n")
    settings = load_settings(cwd=tmp_path, environ={})
    assert (settings.analysis.lookalike_sample, settings.analysis.lookalike_indicators) == (5000, True)
    env = load_settings(cwd=tmp_path, environ={"SEGMENTS_LOOKALIKE_INDICATORS": "no"})
    assert env.analysis.lookalike_indicators is False
    with pytest.raises(InputError, match="lookalike_indicators is 'maybe'. Expected true or false"):
        load_settings(cwd=tmp_path, environ={"SEGMENTS_LOOKALIKE_INDICATORS": "maybe"})
    with pytest.raises(InputError, match="lookalike_sample is out of range"):
        load_settings(cwd=tmp_path, environ={"SEGMENTS_LOOKALIKE_SAMPLE": "10"})
