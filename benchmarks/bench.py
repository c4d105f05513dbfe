"""Benchmark: wall time and peak memory per stage, for this pipeline and the usual notebook approach.

    .venv/bin/python benchmarks/bench.py                       # real sizes, 891,211 + 191,652 rows
    .venv/bin/python benchmarks/bench.py --population 100000 --customers 20000 --no-reference
    .venv/bin/python benchmarks/bench.py --population 10000000 --customers 2000000 --no-reference
    .venv/bin/python benchmarks/bench.py --no-reference --data /tmp/full --repeat 2   # reuse files, 2 runs

Memory is the process's resident set size, sampled every 20 ms by a background thread; the
figure per stage is the peak reached while that stage ran (it includes what earlier stages
still hold). The reference implementation is what public notebooks for this data do: pandas'
default CSV parser, missing codes replaced column by column, get_dummies, and a full-batch
KMeans for every k of the elbow plot. It runs k = 2..``--reference-k-max`` and extrapolates the
remaining k up to 20 linearly from the measured per-k times (k-means cost grows about linearly
in k), and says so in the output.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.settings import AnalysisSettings, Settings
from analysis.pipeline import run
from analysis.shell.progress import Stages
from analysis.inputs.schema import load_schema
from analysis.constants import REAL_CUSTOMERS, REAL_POPULATION
from analysis.demo.synthetic import generate

PAGE = os.sysconf("SC_PAGE_SIZE")


class RssSampler:
    """Peak resident memory between marks, sampled from /proc in a daemon thread."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        threading.Thread(target=self._loop, daemon=True).start()

    @staticmethod
    def rss() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * PAGE

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(self.interval)

    def reset(self) -> None:
        self.peak = self.rss()

    def stop(self) -> None:
        self._stop.set()


class Table:
    """Rows of (stage, seconds, peak MB, CPU seconds), printed at the end.

    CPU seconds are the process's (all threads): on a shared machine they move less with other
    people's load than wall time does, so before/after comparisons can use them.
    """

    def __init__(self, sampler: RssSampler) -> None:
        self.sampler, self.rows, self._start = sampler, {}, {}
        self.whole: tuple[float, float] | None = None  # (wall, CPU) of the whole run, when timed as one

    def start(self, name: str) -> None:
        self.sampler.reset()
        self._start[name] = (time.perf_counter(), time.process_time())

    def end(self, name: str) -> None:
        wall, cpu = self._start.pop(name)
        seconds, cpu = time.perf_counter() - wall, time.process_time() - cpu
        old = self.rows.get(name, (0.0, 0, 0.0))
        self.rows[name] = (old[0] + seconds, max(old[1], self.sampler.peak), old[2] + cpu)

    @contextmanager
    def stage(self, name: str):
        self.start(name)
        yield
        self.end(name)

    def total(self) -> tuple[float, int]:
        """Seconds of the whole run (the stages and what runs between them) and the peak memory."""
        peak = max((r[1] for r in self.rows.values()), default=0)
        return (self.whole[0] if self.whole else sum(r[0] for r in self.rows.values())), peak

    def cpu(self) -> float:
        return self.whole[1] if self.whole else sum(r[2] for r in self.rows.values())

    def between(self) -> tuple[float, float] | None:
        """Wall and CPU seconds spent outside every stage (None when the run was not timed as one)."""
        if self.whole is None:
            return None
        return (self.whole[0] - sum(r[0] for r in self.rows.values()),
                self.whole[1] - sum(r[2] for r in self.rows.values()))


def ours(data: Path, results: Path, table: Table) -> float:
    stages = Stages(stream=None, on_start=table.start, on_end=table.end)
    settings = Settings(population=data / "Udacity_AZDIAS_Subset.csv",
                        customers=data / "Udacity_CUSTOMERS_Subset.csv",
                        feature_summary=data / "AZDIAS_Feature_Summary.csv",
                        results=results, analysis=AnalysisSettings())
    wall, cpu = time.perf_counter(), time.process_time()
    run(settings, stages)
    table.whole = (time.perf_counter() - wall, time.process_time() - cpu)
    start = time.perf_counter()
    run(settings, Stages(stream=None))
    return time.perf_counter() - start


def lookalike_figures(results: Path) -> None:
    """The lookalike model's measured quality, for the benchmark's record (the temporary results go)."""
    import json
    facts = json.loads((results / "results.json").read_text())["lookalike"]
    print(f"\nlookalike: {facts['chosen_model']}, CV AUC {facts['auc']:.3f} "
          f"[{facts['auc_ci'][0]:.3f}, {facts['auc_ci'][1]:.3f}], held-out AUC {facts['held_out_auc']}")
    print(f"{'depth':>6s} {'look':>6s} {'+flags':>6s} {'-flags':>6s} {'kept':>6s} {'segm':>6s} {'miss':>6s} {'aside':>6s}")
    for row in facts["at_depth"]:
        print(f"{row['depth']:6.1%} {row['lookalike']:6.1%} {row['lookalike_with_indicators']:6.1%} "
              f"{row['lookalike_without_indicators']:6.1%} {row['lookalike_kept_rows']:6.1%} "
              f"{row['segments']:6.1%} {row['missing_share_only']:6.1%} {row['set_aside_share_of_mailed']:6.1%}")
    print()


def reference(data: Path, table: Table, k_max: int) -> dict[int, float]:
    """The usual notebook approach, timed stage by stage; returns seconds per k."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler

    schema = load_schema()
    with table.stage("load"):
        population = pd.read_csv(data / "Udacity_AZDIAS_Subset.csv", sep=";")
        customers = pd.read_csv(data / "Udacity_CUSTOMERS_Subset.csv", sep=";")
    with table.stage("clean"):
        frames = []
        for frame in (population, customers):
            for name, feature in schema.items():  # column-by-column code replacement
                codes = [c if not c.lstrip("-").isdigit() else int(c) for c in feature.missing]
                frame[name] = frame[name].replace(codes + [str(c) for c in codes], np.nan)
            frame = frame.drop(columns=["TITEL_KZ", "AGER_TYP", "KK_KUNDENTYP", "KBA05_BAUMAX",
                                        "GEBURTSJAHR", "ALTER_HH", "CAMEO_DEU_2015",
                                        "LP_LEBENSPHASE_FEIN", "LP_LEBENSPHASE_GROB"])
            frame = frame[frame.isna().sum(axis=1) <= 20]
            frame["OST_WEST_KZ"] = frame["OST_WEST_KZ"].map({"W": 1, "O": 0})
            for name in ("CAMEO_DEUG_2015", "CAMEO_INTL_2015"):
                frame[name] = pd.to_numeric(frame[name], errors="coerce")
            frames.append(pd.get_dummies(frame, columns=["CJT_GESAMTTYP", "FINANZTYP", "GFK_URLAUBERTYP",
                                                          "LP_FAMILIE_GROB", "LP_STATUS_GROB", "NATIONALITAET_KZ",
                                                          "SHOPPER_TYP", "ZABEOTYP", "GEBAEUDETYP"], dtype=float))
        population, customers = frames
        customers = customers.reindex(columns=population.columns, fill_value=0)
    with table.stage("impute/scale"):
        imputer, scaler = SimpleImputer(), StandardScaler()
        x = scaler.fit_transform(imputer.fit_transform(population))
    with table.stage("PCA"):
        pca = PCA(30).fit(x)
        scores = pca.transform(x)
    per_k = {}
    with table.stage("k selection"):
        for k in range(2, k_max + 1):
            start = time.perf_counter()
            KMeans(k, n_init=10, random_state=0).fit(scores)
            per_k[k] = time.perf_counter() - start
    with table.stage("final fit"):
        model = KMeans(8, n_init=10, random_state=0).fit(scores)
    with table.stage("customer comparison"):
        labels = model.predict(pca.transform(scaler.transform(imputer.transform(customers))))
        np.bincount(labels, minlength=8) / len(labels)
    return per_k


def extrapolate(per_k: dict[int, float], k_max: int = 20) -> float:
    """Seconds for k = 2..k_max, measured where available, else a linear fit in k."""
    ks, secs = np.array(list(per_k)), np.array(list(per_k.values()))
    slope, intercept = np.polyfit(ks, secs, 1) if len(ks) > 1 else (secs[0] / ks[0], 0.0)
    return float(secs.sum() + sum(max(slope * k + intercept, 0.0) for k in range(max(ks) + 1, k_max + 1)))


def show(title: str, table: Table) -> None:
    print(f"\n{title}   (load average {os.getloadavg()[0]:.2f} at the end)")
    print(f"{'stage':32s} {'seconds':>9s} {'peak MB':>9s} {'CPU s':>9s}")
    for name, (seconds, peak, cpu) in table.rows.items():
        print(f"{name:32s} {seconds:9.1f} {peak / 2**20:9.0f} {cpu:9.1f}")
    if between := table.between():
        print(f"{'(between stages)':32s} {between[0]:9.1f} {'':9s} {between[1]:9.1f}")
    seconds, peak = table.total()
    print(f"{'total':32s} {seconds:9.1f} {peak / 2**20:9.0f} {table.cpu():9.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=REAL_POPULATION)
    parser.add_argument("--customers", type=int, default=REAL_CUSTOMERS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-reference", action="store_true", help="skip the notebook-style reference")
    parser.add_argument("--data", type=Path, help="folder for the synthetic files: reused when they are "
                        "there (same sizes and seed assumed), written there otherwise")
    parser.add_argument("--repeat", type=int, default=1, help="run the pipeline this many times")
    parser.add_argument("--reference-k-max", type=int, default=6,
                        help="largest k the reference really fits (the rest up to 20 is extrapolated)")
    args = parser.parse_args()
    sampler = RssSampler()
    with tempfile.TemporaryDirectory(prefix="segments-bench-") as tmp:
        data = args.data or Path(tmp) / "data"
        if not (data / "Udacity_AZDIAS_Subset.csv").is_file():
            # In a child process: the generator's freed memory would otherwise stay in this
            # process's resident size (about 100 MB) and be counted in every stage's peak.
            start = time.perf_counter()
            with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
                pool.submit(generate, data, population=args.population, customers=args.customers,
                            seed=args.seed).result()
            print(f"\nData: {args.population:,} + {args.customers:,} rows generated in "
                  f"{time.perf_counter() - start:.1f} s (in a child process)")
        for repeat in range(args.repeat):
            mine = Table(sampler)
            cached = ours(data, Path(tmp) / f"results{repeat}", mine)
            show(f"customer-segments pipeline (run {repeat + 1} of {args.repeat})", mine)
            print(f"{'cached re-run':32s} {cached:9.1f}")
        lookalike_figures(Path(tmp) / f"results{args.repeat - 1}")
        if args.no_reference:
            return 0
        ref = Table(sampler)
        per_k = reference(data, ref, args.reference_k_max)
        show(f"reference notebook approach (KMeans fitted for k = 2..{args.reference_k_max})", ref)
        measured = ref.total()[0]
        full = measured - sum(per_k.values()) + extrapolate(per_k)
        print(f"{'reference, k = 2..20 (extrapolated)':32s} {full:9.1f}")
        print(f"\nspeed-up: {measured / mine.total()[0]:.1f}x measured, "
              f"{full / mine.total()[0]:.1f}x against the extrapolated k = 2..20 elbow")
    sampler.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
