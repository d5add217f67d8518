"""Separation of near-relapse days on held-out simulated cohorts (issue 13 before/after figures).

For each cohort (seed, participants × days, signature strength S): simulate with
``relapse_share=0.5``, hourly features offline, ``RhythmState``, the shipped
``models/default.onnx`` (or ``--model``), one ``ParticipantScorer`` per participant with
the default calibration; per participant TPR = share of the 30 days before a relapse
flagged, FPR = share of the other scored days flagged (Adler et al. 2020). Prints per
cohort median TPR, median FPR, their ratio, and the median sensitivity / specificity
(= 1 − FPR). Not a test: it measures, it asserts nothing.

Run: ``.venv/bin/python benchmarks/heldout_separation.py [--cohorts 99:10:110:1.0,...]``.
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
from phenoflow.offline.features import hourly_features_from_cohort
from phenoflow.operators.rhythm.rolling import RhythmState
from phenoflow.operators.scoring.calibration import CalibrationConfig, ParticipantScorer
from phenoflow.operators.scoring.reconstruction import OnnxScorer
from phenoflow.simulate.simulator import simulate_cohort

DEFAULT = "99:10:110:1.0,99:10:110:2.0,123:12:120:1.0,123:12:120:2.0"


def evaluate(model: Path, seed: int, n: int, days: int, strength: float) -> tuple[dict, dict]:
    """(per-participant TPR, per-participant FPR) of one simulated cohort."""
    with tempfile.TemporaryDirectory() as tmp:
        cohort = Path(tmp) / "cohort"
        simulate_cohort(cohort, n, days, seed, relapse_share=0.5, signature_strength=strength)
        states: dict[str, RhythmState] = {}
        rhythm = []
        for rec in hourly_features_from_cohort(cohort):
            rhythm += states.setdefault(rec.participant, RhythmState(rec.participant)).update(rec)
        for st in states.values():
            rhythm += st.flush()
        labels = read_labels(cohort / "labels.csv")
    scorer = OnnxScorer(model)
    scorers: dict[str, ParticipantScorer] = {}
    scored: dict[str, list[tuple[date, bool]]] = {}
    for d in scorer.day_errors(rhythm):
        ps = scorers.setdefault(d.participant, ParticipantScorer(d.participant, scorer.error_space(),
                                                                 CalibrationConfig()))
        out = ps.update_day(d)
        if not out.score.calibrating and out.score.score is not None:
            scored.setdefault(d.participant, []).append((date.fromisoformat(d.day), out.anomaly is not None))
    tpr, fpr = {}, {}
    for pid, ds in scored.items():
        rel = labels.get(pid, [])
        near = [f for day, f in ds if any(r - timedelta(days=30) <= day < r for r in rel)]
        other = [f for day, f in ds if not any(r - timedelta(days=30) <= day < r for r in rel)]
        if near:
            tpr[pid] = float(np.mean(near))
        if other:
            fpr[pid] = float(np.mean(other))
    return tpr, fpr


def main() -> None:
    """Print the separation figures of every cohort."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--cohorts", default=DEFAULT, help="seed:participants:days:strength, comma-separated")
    ap.add_argument("--model", type=Path, default=None)
    args = ap.parse_args()
    model = args.model or Path(str(resources.files("phenoflow.models").joinpath("default.onnx")))
    print(f"model {model}")
    for spec in args.cohorts.split(","):
        seed, n, days, s = spec.split(":")
        t0 = time.perf_counter()
        tpr, fpr = evaluate(model, int(seed), int(n), int(days), float(s))
        mt, mf = float(np.median(list(tpr.values()))), float(np.median(list(fpr.values())))
        print(f"seed {seed} {n}x{days} S {s}: median TPR {mt:.2f} / median FPR {mf:.2f} / "
              f"ratio {mt / max(mf, 1e-9):.2f}; median sensitivity {mt:.2f}, specificity {1 - mf:.2f}; "
              f"{len(tpr)} relapsing, {len(fpr)} scored ({time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
