"""Detection on the reserved benchmark cohorts (seeds ≥ 1000), at strength 1 and the null strength 0.

Issue 14, item 8. For each of ``--cohorts`` cohorts (seed 1000 + k; never used
for tuning, see docs/evaluation.md) of ``--participants`` × ``--days`` with
30 % relapsing and the simulator's life events on (``--no-life-events`` to
drop them), at each ``--strengths`` value (same seed, so the strength-0 cohort
has the same people, life events and relapse labels, but no relapse signal):

simulate → offline hourly features (phenoflow/offline/features.py) →
``RhythmState`` → shipped model (``OnnxScorer``) and one default-calibrated
``ParticipantScorer`` per participant, exactly as the score stage does; WHO-5
surveys → ``SurveyStepUp``. No Kafka (that path is tested elsewhere).

Per participant (docs/evaluation.md, "Definitions"): sensitivity = flagged
NR30 days / NR30 days, specificity = unflagged DRH days / DRH days, on the
evaluated (non-calibrating, scored) days. Per cohort: median sensitivity,
median specificity and TPR/FPR = median sensitivity / (1 − median
specificity) — the seed's form, 0.25 / 0.12 ≈ 2.08 — each with a 95 %
participant-level percentile bootstrap interval (participants resampled with
replacement, ``--boot`` resamples, seeded). Alert burden = anomaly + step-up
events (passive and survey) per participant-month (30 days of data), healthy
vs relapsing participants.

Prints a table per cohort and strength, then the pooled summary. Figures go to
benchmarks/README.md, "Detection", as they come out.

    .venv/bin/python benchmarks/bench_detection.py --cohorts 5 --participants 30 --days 180
"""

from __future__ import annotations

import argparse
import math
import shutil
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from importlib import resources
from pathlib import Path

import msgspec
import numpy as np

from phenoflow.connectors.cohort import read_labels
from phenoflow.core.contract import Survey
from phenoflow.evaluation.detection import Confusion, confusion, quantile
from phenoflow.offline.day_scores import rhythm_from_hourly, score_days
from phenoflow.offline.features import hourly_features_from_cohort
from phenoflow.operators.scoring.reconstruction import OnnxScorer
from phenoflow.operators.stepup.who5 import SurveyStepUp
from phenoflow.simulate.simulator import BENCHMARK_SEED_MIN, simulate_cohort


def default_model_path() -> Path:
    """The shipped model (as flows/score_stage.py loads it)."""
    return Path(str(resources.files("phenoflow.models").joinpath("default.onnx")))


#: The seed's result on real CrossCheck data (Adler et al. 2020; docs/evaluation.md).
SEED_REAL = {"sensitivity": 0.25, "specificity": 0.88, "tpr_fpr": 2.08}


@dataclass
class Participant:
    """One participant's evaluated days and alerts."""

    conf: Confusion
    relapsing: bool
    alerts: int
    days_with_data: int


def run_cohort(cohort: Path, scorer: OnnxScorer) -> dict[str, Participant]:
    """Features → rhythm → scores → per-participant confusion and alert counts."""
    rhythm = rhythm_from_hourly(hourly_features_from_cohort(cohort))
    labels = read_labels(cohort / "labels.csv")
    flags: dict[str, list[tuple[date, bool]]] = defaultdict(list)
    alerts: dict[str, int] = defaultdict(int)
    days_seen: dict[str, set[str]] = defaultdict(set)
    for d, out in score_days(rhythm, scorer):
        days_seen[d.participant].add(d.day)
        alerts[d.participant] += (out.anomaly is not None) + (out.stepup is not None)
        if not out.score.calibrating and out.score.score is not None:
            flags[d.participant].append((date.fromisoformat(d.day), out.anomaly is not None))
    dec = msgspec.json.Decoder(Survey)
    who5: dict[str, SurveyStepUp] = defaultdict(SurveyStepUp)
    for line in (cohort / "survey.jsonl").read_bytes().splitlines():
        s = dec.decode(line)
        alerts[s.participant] += who5[s.participant].update(s) is not None
    out: dict[str, Participant] = {}
    for pid in sorted(days_seen):
        rel = labels.get(pid, [])
        days = flags.get(pid, [])
        nr = np.array([any(r - timedelta(days=30) <= d < r for r in rel) for d, _ in days], bool)
        fl = np.array([f for _, f in days], bool)
        out[pid] = Participant(confusion(fl, nr), bool(rel), alerts[pid], len(days_seen[pid]))
    return out


def _stats(parts: list[Participant]) -> tuple[float, float, float]:
    """(median sensitivity, median specificity, median sens / (1 − median spec))."""
    sens = [p.conf.sensitivity for p in parts if p.conf.sensitivity is not None]
    spec = [p.conf.specificity for p in parts if p.conf.specificity is not None]
    ms = float(np.median(sens)) if sens else math.nan
    mp = float(np.median(spec)) if spec else math.nan
    ratio = ms / (1 - mp) if mp < 1 else (math.inf if ms > 0 else math.nan)
    return ms, mp, ratio


def bootstrap(parts: list[Participant], n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, 3) statistics of participant resamples (with replacement)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(parts), size=(n_boot, len(parts)))
    return np.array([_stats([parts[i] for i in row]) for row in idx])


def burden(parts: list[Participant], relapsing: bool) -> float:
    """Alerts per participant-month (30 days with a scorer record)."""
    sel = [p for p in parts if p.relapsing == relapsing]
    days = sum(p.days_with_data for p in sel)
    return 30 * sum(p.alerts for p in sel) / days if days else math.nan


def _ci(values: np.ndarray) -> tuple[float, float]:
    v = values[~np.isnan(values)]  # resamples without a relapsing participant have no sensitivity
    if not v.size:
        return math.nan, math.nan
    return quantile(v, 0.025), quantile(v, 0.975)  # accepts ∞ (median specificity 1)


def report(name: str, parts: list[Participant], n_boot: int, seed: int) -> dict[str, object]:
    """One row of the results table (point estimates, 95 % intervals, burden)."""
    ms, mp, ratio = _stats(parts)
    boot = bootstrap(parts, n_boot, seed)
    row = {"cohort": name, "sens": ms, "sens_ci": _ci(boot[:, 0]), "spec": mp, "spec_ci": _ci(boot[:, 1]),
           "ratio": ratio, "ratio_ci": _ci(boot[:, 2]), "burden_healthy": burden(parts, False),
           "burden_relapsing": burden(parts, True),
           "n_rel": sum(p.conf.sensitivity is not None for p in parts), "n": len(parts)}
    lo, hi = row["ratio_ci"]
    row["excludes_1"] = lo > 1 or hi < 1
    return row


def _fmt(row: dict[str, object]) -> str:
    def ci(k: str) -> str:
        lo, hi = row[k]
        return f"[{lo:.2f}, {hi:.2f}]"
    return (f"| {row['cohort']} | {row['n']} ({row['n_rel']}) | {row['sens']:.2f} {ci('sens_ci')} | "
            f"{row['spec']:.2f} {ci('spec_ci')} | {row['ratio']:.2f} {ci('ratio_ci')} | "
            f"{'yes' if row['excludes_1'] else 'no'} | {row['burden_healthy']:.2f} / "
            f"{row['burden_relapsing']:.2f} |")


HEADER = ("| cohort | participants (with NR30 days) | median sensitivity [95 % CI] | "
          "median specificity [95 % CI] | TPR/FPR [95 % CI] | CI excludes 1 | "
          "alerts / participant-month healthy / relapsing |\n|---|---|---|---|---|---|---|")


def main() -> None:
    """Run the benchmark (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cohorts", type=int, default=5)
    ap.add_argument("--participants", type=int, default=30)
    ap.add_argument("--days", type=int, default=180)
    ap.add_argument("--strengths", default="1,0", help="comma-separated signature strengths")
    ap.add_argument("--first-seed", type=int, default=BENCHMARK_SEED_MIN)
    ap.add_argument("--relapse-share", type=float, default=0.3)
    ap.add_argument("--boot", type=int, default=2000, help="bootstrap resamples")
    ap.add_argument("--life-events", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--workdir", type=Path, default=None, help="keep cohorts here (default: temp, deleted)")
    args = ap.parse_args()
    if args.first_seed < BENCHMARK_SEED_MIN:
        ap.error(f"--first-seed must be ≥ {BENCHMARK_SEED_MIN}: seeds below are for development")
    strengths = [float(s) for s in args.strengths.split(",")]
    scorer = OnnxScorer(default_model_path())
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_detection_"))
    print(f"# bench_detection: {args.cohorts} cohorts × {args.participants} participants × {args.days} days, "
          f"relapse share {args.relapse_share}, life events {'on' if args.life_events else 'off'}, "
          f"strengths {strengths}, {args.boot} bootstrap resamples; model {default_model_path().name}")
    rows: dict[float, list[dict[str, object]]] = defaultdict(list)
    pooled: dict[float, list[Participant]] = defaultdict(list)
    print(HEADER)
    try:
        for k in range(args.cohorts):
            seed = args.first_seed + k
            for s in strengths:
                d = work / f"seed{seed}_s{s:g}"
                t0 = time.perf_counter()
                simulate_cohort(d, args.participants, args.days, seed, relapse_share=args.relapse_share,
                                signature_strength=s, life_events=args.life_events)
                t1 = time.perf_counter()
                parts = list(run_cohort(d, scorer).values())
                t2 = time.perf_counter()
                row = report(f"seed {seed}, strength {s:g}", parts, args.boot, seed)
                rows[s].append(row)
                pooled[s] += parts
                print(_fmt(row) + f"  (simulate {t1 - t0:.0f} s, pipeline {t2 - t1:.0f} s)", flush=True)
                if args.workdir is None:
                    shutil.rmtree(d, ignore_errors=True)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    print("\n## Pooled over cohorts (participant-level bootstrap over all cohorts' participants)")
    print(HEADER)
    for s in strengths:
        print(_fmt(report(f"all, strength {s:g}", pooled[s], args.boot, 7)))
        ex = sum(bool(r["excludes_1"]) for r in rows[s])
        spec_ok = sum(r["spec"] >= 0.85 for r in rows[s])
        print(f"strength {s:g}: TPR/FPR interval excludes 1 in {ex}/{len(rows[s])} cohorts; "
              f"median specificity ≥ 0.85 in {spec_ok}/{len(rows[s])}")
    print(f"| seed, real CrossCheck data (Adler et al. 2020) | – | {SEED_REAL['sensitivity']:.2f} | "
          f"{SEED_REAL['specificity']:.2f} | {SEED_REAL['tpr_fpr']:.2f} | – | – |")


if __name__ == "__main__":
    main()
