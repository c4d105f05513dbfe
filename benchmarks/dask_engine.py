"""Benchmark: the dask engine on a LocalCluster, per-stage wall time and peak memory of all processes.

    .venv/bin/python benchmarks/dask_engine.py --population 3000000 --customers 600000
    .venv/bin/python benchmarks/dask_engine.py --population 30000000 --customers 3000000 --data /big/disk

Memory is the resident set size of this process and all its children (the local cluster's
scheduler, nannies and workers), summed and sampled every 0.2 s by a background thread; the
figure per stage is the peak of that total while the stage ran, and the last line the peak
over the whole run. The data is generated once into ``--data`` (default: a temporary folder)
and reused when it is already there.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from analysis.constants import RESULTS_FILE
from analysis.demo.synthetic import DemoPaths, generate
from analysis.pipeline import run
from analysis.settings import AnalysisSettings, Settings
from analysis.shell.progress import Stages


class TotalRss:
    """Peak summed RSS of this process and its descendants, sampled in a daemon thread."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval, self.peak, self.overall, self._stop = interval, 0, 0, threading.Event()
        self.me = psutil.Process()
        threading.Thread(target=self._loop, daemon=True).start()

    def total(self) -> int:
        total = self.me.memory_info().rss
        for child in self.me.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:  # a process that just ended
                pass
        return total

    def _loop(self) -> None:
        while not self._stop.is_set():
            now = self.total()
            self.peak, self.overall = max(self.peak, now), max(self.overall, now)
            time.sleep(self.interval)

    def reset(self) -> None:
        self.peak = self.total()


PIECE_ROWS = 3_000_000  # population rows generated at a time (~3 GB): larger files are pieces appended


def generate_in_pieces(data: Path, population: int, customers: int) -> DemoPaths:
    """Demo data of any size in bounded memory: pieces of at most ``PIECE_ROWS`` population rows,
    each generated with its own seed (0, 1, ...) and appended (header once). One piece is exactly
    ``generate(data, population, customers, seed=0)``."""
    pieces = max(1, -(-population // PIECE_ROWS))
    if pieces == 1:
        return generate(data, population=population, customers=customers, seed=0)
    data.mkdir(parents=True, exist_ok=True)
    final = DemoPaths.in_folder(data)
    partial = {role: getattr(final, role).with_suffix(".partial") for role in ("population", "customers")}
    for piece in range(pieces):
        pop_rows = population // pieces + (piece < population % pieces)
        cust_rows = customers // pieces + (piece < customers % pieces)
        part = generate(data / f"piece-{piece}", population=pop_rows, customers=cust_rows, seed=piece)
        for role, target in partial.items():
            with getattr(part, role).open("rb") as source, target.open("ab" if piece else "wb") as out:
                if piece:
                    source.readline()  # the header is written once
                shutil.copyfileobj(source, out, 16 << 20)
        if piece == 0:
            shutil.copy(part.feature_summary, final.feature_summary)
        shutil.rmtree(part.directory)
        print(f"piece {piece + 1}/{pieces}: {pop_rows:,} + {cust_rows:,} rows", flush=True)
    for role, source in partial.items():
        source.rename(getattr(final, role))
    return final


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=3_000_000)
    parser.add_argument("--customers", type=int, default=600_000)
    parser.add_argument("--workers", type=int, help="worker processes (default: one per core)")
    parser.add_argument("--worker-memory", type=float, help="GB per worker before it spills to disk")
    parser.add_argument("--data", type=Path, help="folder for the generated data (kept)")
    parser.add_argument("--engine", default="dask", choices=("dask", "local"))
    parser.add_argument("--results", type=Path, help="results folder to keep (default: a temporary one)")
    parser.add_argument("--generate-only", action="store_true", help="only generate the data into --data")
    args = parser.parse_args()
    sampler = TotalRss()
    with tempfile.TemporaryDirectory(prefix="segments-dask-bench-") as tmp:
        data = args.data or Path(tmp) / "data"
        paths = DemoPaths.in_folder(data)
        if not paths.population.is_file():
            start = time.perf_counter()
            generate_in_pieces(data, args.population, args.customers)
            print(f"generated {args.population:,} + {args.customers:,} rows in {time.perf_counter() - start:.0f} s")
        if args.generate_only:
            return 0
        rows: dict[str, list[float]] = {}
        started: dict[str, float] = {}

        def on_start(name: str) -> None:
            sampler.reset()
            started[name] = time.perf_counter()

        def on_end(name: str) -> None:
            rows[name] = [time.perf_counter() - started.pop(name), sampler.peak]
            # printed as it ends, so a run stopped part-way still shows its stages
            print(f"  {name:32s} {rows[name][0]:9.1f} s {rows[name][1] / 2**20:9.0f} MB", flush=True)

        settings = Settings(population=paths.population, customers=paths.customers,
                            feature_summary=paths.feature_summary, results=args.results or Path(tmp) / "results",
                            analysis=AnalysisSettings(), engine=args.engine, workers=args.workers,
                            worker_memory=args.worker_memory)
        begin = time.perf_counter()
        results = run(settings, Stages(on_start=on_start, on_end=on_end), force=True)
        wall = time.perf_counter() - begin
        summary = json.loads((results / RESULTS_FILE).read_text(encoding="utf-8"))
    sampler._stop.set()
    print(f"\n{args.engine} engine, {args.population:,} + {args.customers:,} rows")
    print(f"{'stage':32s} {'seconds':>9s} {'peak MB (all processes)':>24s}")
    for name, (seconds, peak) in rows.items():
        print(f"{name:32s} {seconds:9.1f} {peak / 2**20:24.0f}")
    print(f"{'total (wall, incl. cluster start/stop)':32s} {wall:9.1f} {sampler.overall / 2**20:24.0f}")
    print(f"k = {summary['k_selection']['k']}, {summary['pca']['n_components']} components; "
          f"engine: {json.dumps(summary.get('engine', 'local'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
