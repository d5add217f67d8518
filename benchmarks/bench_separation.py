"""Held-out separation of the shipped model: the figures of models/README.md ("Measured").

Run: ``.venv/bin/python benchmarks/bench_separation.py [--cohorts 99:10x110 ...] [--strengths 1.0 2.0]``.

Each cohort is simulated (``simulate_cohort(..., relapse_share=0.5,
signature_strength=S)``; never the training cohort, seed 7), its hourly features
computed offline, ``RhythmState`` rolls them into ``rhythm.daily``, and the
shipped ``models/default.onnx`` scores every participant with one
``ParticipantScorer`` and the default calibration — the same operators as the
streaming stages. Evaluation as Adler et al. (2020): per participant, TPR = share
of the 30 days before a relapse (NR30) flagged, FPR = share of the other scored
days flagged; ratio = median TPR / median FPR. ``tests/unit/models/test_separation.py``
checks one of these cohorts (seed 99, 10 × 110, S 2.0) against fixed bounds.

Printed per cohort and strength: TPR / FPR / ratio, anomalies raised during
calibration (must be 0); then per strength over all cohorts (participants
pooled), and the FPR of the participants without a relapse.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date, timedelta
from importlib import resources
from pathlib import Path

import numpy as np

from phenoflow.connectors.cohort import read_labels
from phenoflow.offline.day_scores import rhythm_from_hourly, score_days
from phenoflow.offline.features import hourly_features_from_cohort
from phenoflow.operators.scoring.reconstruction import OnnxScorer
from phenoflow.simulate.simulator import simulate_cohort

#: The cohorts of the models/README.md table: seed, participants, days.
TABLE = ("99:10x110", "123:12x120", "123:10x110")


def participant_rates(cohort: Path, model: Path) -> tuple[dict[str, float], dict[str, float], set[str], int]:
    """Per-participant TPR and FPR, the participants with a relapse, anomalies while calibrating."""
    rhythm = rhythm_from_hourly(hourly_features_from_cohort(cohort))
    scorer = OnnxScorer(model)
    flagged: dict[str, list[tuple[date, bool]]] = {}
    calibrating_alarms = 0
    for d, out in score_days(rhythm, scorer):
        if out.score.calibrating:
            calibrating_alarms += out.anomaly is not None
        elif out.score.score is not None:
            flagged.setdefault(d.participant, []).append((date.fromisoformat(d.day), out.anomaly is not None))
    labels = read_labels(cohort / "labels.csv")
    tpr: dict[str, float] = {}
    fpr: dict[str, float] = {}
    for pid, days in flagged.items():
        rel = labels.get(pid, [])
        near = [any(r - timedelta(days=30) <= d < r for r in rel) for d, _ in days]
        nr = [f for (_, f), n in zip(days, near, strict=True) if n]
        drh = [f for (_, f), n in zip(days, near, strict=True) if not n]
        if nr:
            tpr[pid] = float(np.mean(nr))
        if drh:
            fpr[pid] = float(np.mean(drh))
    return tpr, fpr, set(labels), calibrating_alarms


def _ratio(tpr: list[float], fpr: list[float]) -> str:
    mt, mf = float(np.median(tpr)), float(np.median(fpr))
    return f"{mt:.2f} / {mf:.2f} / {mt / max(mf, 1e-9):.2f}"


def main() -> None:
    """Simulate, score and print the separation table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cohorts", nargs="+", default=list(TABLE), help="seed:PARTICIPANTSxDAYS")
    ap.add_argument("--strengths", nargs="+", type=float, default=[1.0, 2.0])
    ap.add_argument("--model", type=Path, default=Path(str(resources.files("phenoflow.models") / "default.onnx")))
    args = ap.parse_args()
    per_strength: dict[float, tuple[list[float], list[float]]] = {}
    healthy: list[float] = []
    print("| cohort (seed, participants × days, S) | TPR / FPR / ratio | anomalies while calibrating | s |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="phenoflow-sep-") as tmp:
        for spec in args.cohorts:
            seed, _, size = spec.partition(":")
            n, _, days = size.partition("x")
            for s in args.strengths:
                t0 = time.perf_counter()
                path = Path(tmp) / f"{seed}-{n}-{days}-{s}"
                simulate_cohort(path, int(n), int(days), int(seed), relapse_share=0.5, signature_strength=s)
                tpr, fpr, relapsing, alarms = participant_rates(path, args.model)
                pool = per_strength.setdefault(s, ([], []))
                pool[0].extend(tpr.values())
                pool[1].extend(fpr.values())
                healthy.extend(v for p, v in fpr.items() if p not in relapsing)
                print(f"| {seed}, {n} × {days}, {s} | {_ratio(list(tpr.values()), list(fpr.values()))} | {alarms} "
                      f"| {time.perf_counter() - t0:.0f} |", flush=True)
    for s, (tp, fp) in sorted(per_strength.items()):
        print(f"all cohorts, S {s}: TPR / FPR / ratio {_ratio(tp, fp)} ({len(tp)} / {len(fp)} participants)")
    if healthy:
        h = np.asarray(healthy)
        print(f"participants without a relapse ({h.size}), FPR: median {np.median(h):.2f}, mean {h.mean():.2f}, "
              f"p90 {np.quantile(h, 0.9):.2f}, max {h.max():.2f}")


if __name__ == "__main__":
    main()
