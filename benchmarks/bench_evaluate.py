"""Benchmark ``phenoflow evaluate`` at CrossCheck scale: 60 participants × 365 days, 100 Monte Carlo splits.

Goal (issue 6): under 2 minutes wall time for ``evaluate --protocol adler``
(reading the dumps, the protocol, explanations, HTML/Markdown/CSV report).

Baseline in the same run: the same Monte Carlo protocol with a plain
pure-Python threshold search (every candidate τ, TPR and FPR counted by
loops), swapped in for the vectorised :func:`best_threshold`; the ratio is
printed. ``--compare`` also times the model comparison (its own budget).

    .venv/bin/python benchmarks/bench_evaluate.py [--dir /tmp/pf-bench] [--features 2022]
        [--compare lof:hourly,hst:rhythm,ae:rhythm --compare-iterations 2]
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

import phenoflow.evaluation.evaluate as ev
import phenoflow.evaluation.protocol as protocol
from phenoflow.connectors.cohort import read_labels
from phenoflow.evaluation.detection import ThresholdChoice
from phenoflow.evaluation.dumps import load_cohort
from phenoflow.evaluation.synth import write_synthetic_cohort
from phenoflow.reports.evaluation_report import write_evaluation_report


def naive_best_threshold(nr30_scores: np.ndarray, drh_scores: np.ndarray) -> ThresholdChoice | None:
    """Plain Python: for every candidate τ count flagged NR30 and DRH days one by one."""
    pos, neg = [float(x) for x in nr30_scores], [float(x) for x in drh_scores]
    if not pos or not neg:
        return None
    best: tuple[float, float, float, float] | None = None
    for tau in [-math.inf] + sorted(set(pos + neg)):
        tp = sum(1 for s in pos if s > tau)
        fp = sum(1 for s in neg if s > tau)
        tpr, fpr = tp / len(pos), fp / len(neg)
        ratio = tpr / fpr if fpr else (math.inf if tpr else -1.0)
        if best is None or (ratio, tpr) > (best[0], best[1]):
            best = (ratio, tpr, fpr, tau)
    assert best is not None
    return ThresholdChoice(best[3], best[1], best[2], None if best[0] < 0 else best[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/phenoflow-bench-evaluate"))
    ap.add_argument("--participants", type=int, default=60)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--features", type=int, default=2022, help="rhythm features per day (the rhythm stage emits 2022)")
    ap.add_argument("--hourly-features", type=int, default=0, help="write features.hourly too (for hourly models)")
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--compare", default="")
    ap.add_argument("--compare-iterations", type=int, default=2)
    args = ap.parse_args()

    marker = args.dir / f".bench-{args.participants}x{args.days}x{args.features}x{args.hourly_features}"
    if not marker.exists():
        t = time.perf_counter()
        write_synthetic_cohort(
            args.dir, participants=args.participants, days=args.days, relapse_share=0.3,
            features=args.features, shifted=5, effect=0.8, hourly_features=args.hourly_features, seed=42,
        )
        marker.touch()
        print(f"wrote synthetic cohort to {args.dir} in {time.perf_counter() - t:.1f} s")
    size = sum(f.stat().st_size for f in (args.dir / "outputs").iterdir()) / 2**20
    print(f"cohort: {args.participants} participants × {args.days} days, {args.features} rhythm features; dumps {size:.0f} MiB")

    t = time.perf_counter()
    r = ev.evaluate_dir(args.dir, protocol="streaming")
    write_evaluation_report(r, args.dir / "report" / "streaming.html")
    print(f"evaluate (streaming, report):                  {time.perf_counter() - t:6.2f} s")
    t = time.perf_counter()
    r = ev.evaluate_dir(
        args.dir, protocol="adler", iterations=args.iterations,
        thresholds_out=args.dir / "thresholds.json",
    )
    write_evaluation_report(r, args.dir / "report" / "adler.html")
    wall = time.perf_counter() - t
    verdict = "meets" if wall < 120 else "MISSES"
    print(f"evaluate (adler, {args.iterations} splits, report):        {wall:6.2f} s  ({verdict} the 120 s goal)")
    def fmt(x: float | None, digits: int) -> str:
        return "n/a" if x is None else f"{x:.{digits}f}"  # a tiny cohort can leave a median undefined

    print(f"  median sensitivity {fmt(r.sensitivity.median, 3)}, specificity {fmt(r.specificity.median, 3)}, "
          f"TPR/FPR {fmt(r.tpr_fpr.median, 2)}")

    cohort = load_cohort(args.dir / "outputs", read_labels(args.dir / "labels.csv"))
    roles = protocol.make_splits(cohort, args.iterations, 0)
    t = time.perf_counter()
    fast = protocol.run_protocol(cohort, roles, lambda i: cohort.score)
    t_fast = time.perf_counter() - t
    original = protocol.best_threshold
    # run_protocol looks best_threshold up in its own module's globals at call time.
    protocol.best_threshold = naive_best_threshold
    try:
        t = time.perf_counter()
        slow = protocol.run_protocol(cohort, roles, lambda i: cohort.score)
        t_slow = time.perf_counter() - t
    finally:
        protocol.best_threshold = original
    same = np.array_equal(np.nan_to_num(fast.taus, nan=-1), np.nan_to_num(slow.taus, nan=-1))
    print(f"protocol only, vectorised τ search:            {t_fast:6.2f} s")
    print(f"protocol only, pure-Python τ search (baseline): {t_slow:6.2f} s  → {t_slow / t_fast:.1f}× slower; same τ: {same}")

    if args.compare:
        t = time.perf_counter()
        r = ev.evaluate_dir(args.dir, compare=args.compare, compare_iterations=args.compare_iterations)
        print(f"comparison ({args.compare_iterations} splits):                     {time.perf_counter() - t:6.2f} s")
        for m in r.comparison:
            per = m.seconds / max(m.iterations, 1)
            ratio = m.tpr_fpr.median
            shown = "n/a" if ratio is None else "inf" if math.isinf(ratio) else f"{ratio:.2f}"
            print(f"  {m.label:32s} {m.seconds:7.1f} s ({per:6.1f} s/split)  median TPR/FPR {shown:>6s}  {m.status}")


if __name__ == "__main__":
    main()
