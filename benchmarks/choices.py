"""Measure the algorithm choices behind the pipeline: CSV parser, PCA solver, k-means variant.

    .venv/bin/python benchmarks/choices.py                 # real population size
    .venv/bin/python benchmarks/choices.py --population 200000

Prints wall time for each candidate and, for clustering, the adjusted Rand index of its
partition against a full-batch Lloyd k-means on all rows (the answer the cheaper variants must
keep).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.cluster import BisectingKMeans, KMeans, MiniBatchKMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score

from analysis.prepare.cleaning import fit_cleaning
from analysis.prepare.reduce import fit_reducer
from analysis.settings import AnalysisSettings
from analysis.segment.kselect import fit_final
from analysis.inputs.loading import load_table
from analysis.inputs.schema import load_features
from analysis.constants import REAL_POPULATION
from analysis.demo.synthetic import generate


def timed(label: str, action):
    start = time.perf_counter()
    result = action()
    print(f"  {label:48s} {time.perf_counter() - start:7.1f} s", flush=True)
    return result


def parsers(path: Path) -> None:
    print("CSV parsing (population file)")
    features = load_features(None)
    timed("pandas read_csv, default C parser", lambda: pd.read_csv(path, sep=";", low_memory=False))
    timed("pandas read_csv, engine='pyarrow'", lambda: pd.read_csv(path, sep=";", engine="pyarrow"))
    timed("analysis.inputs.loading (pyarrow stream, validated)", lambda: load_table(path, features))


def pca_solvers(matrix: np.ndarray) -> None:
    print(f"PCA on {matrix.shape[0]:,} x {matrix.shape[1]} standardised rows")
    for solver in ("covariance_eigh", "full", "randomized"):
        options = {"n_components": 60} if solver == "randomized" else {}
        timed(f"PCA(svd_solver={solver!r})", lambda: PCA(svd_solver=solver, random_state=0, **options).fit(matrix))


def kmeans_variants(scores: np.ndarray, k: int) -> None:
    print(f"k-means at k = {k} on {scores.shape[0]:,} x {scores.shape[1]} scores (ARI vs full-batch Lloyd)")
    reference = timed("KMeans lloyd, all rows, n_init=3 (reference)",
                      lambda: KMeans(k, n_init=3, random_state=0).fit(scores).labels_)
    candidates = {
        "MiniBatchKMeans, all rows": lambda: MiniBatchKMeans(k, n_init=3, random_state=0).fit(scores).labels_,
        "BisectingKMeans, all rows": lambda: BisectingKMeans(k, random_state=0).fit(scores).labels_,
        "KMeans on a 25k sample, predict all": lambda: KMeans(k, n_init=3, random_state=0).fit(
            scores[np.random.default_rng(0).choice(len(scores), 25_000, replace=False)]).predict(scores),
        "analysis.kselect.fit_final": lambda: fit_final(scores, k).labels_,
    }
    for label, action in candidates.items():
        labels = timed(label, action)
        print(f"  {'':48s} ARI {adjusted_rand_score(reference, labels):.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=REAL_POPULATION)
    parser.add_argument("--k", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="segments-choices-") as tmp:
        paths = generate(Path(tmp) / "data", population=args.population, customers=1_000, seed=0)
        parsers(paths.population)
        features = load_features(None)
        plan, table = fit_cleaning(load_table(paths.population, features).data, features, AnalysisSettings())
        reducer, scores = fit_reducer(table.matrix, table.kept, 0.8, seed=0)
        standardised = reducer.pipeline[:2].transform(table.matrix.to_numpy()[table.kept])
        pca_solvers(standardised)
        kmeans_variants(scores, args.k)
    return 0


if __name__ == "__main__":
    sys.exit(main())
