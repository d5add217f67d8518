"""Synthetic cohort directories with known answers, for tests, benchmarks and trying the reports.

Writes what ``phenoflow evaluate``/``audit`` read: ``labels.csv``,
``participants.csv`` and topic dumps in ``outputs/`` (every line a contract
value, encoded by :func:`phenoflow.core.contract.encode`). Near-relapse days get
higher anomaly scores and shifted values of the first ``shifted`` rhythm
features, so the evaluation and the Cohen's d explanation have something to
find. Not a behaviour simulator (that is ``phenoflow simulate``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from phenoflow.core.contract import (
    AnomalyEvent,
    FeatureValue,
    HourlyFeatures,
    RhythmDaily,
    ScoreDaily,
    StepUpEvent,
    encode,
)
from phenoflow.evaluation.dumps import days_before_relapse

__all__ = ["START", "SyntheticCohort", "write_synthetic_cohort"]

START = np.datetime64("2020-01-06", "D")


@dataclass
class SyntheticCohort:
    """What was written, for tests to compare against."""

    dir: Path
    participants: list[str]
    relapses: dict[str, list[np.datetime64]]
    attributes: dict[str, dict[str, str]]
    stepups: set[str] = field(default_factory=set)
    anomalous: set[str] = field(default_factory=set)


def write_synthetic_cohort(
    out: Path,
    *,
    participants: int = 20,
    days: int = 120,
    relapse_share: float = 0.4,
    calibration_days: int = 14,
    features: int = 12,
    shifted: int = 3,
    effect: float = 1.5,
    hourly_features: int = 0,
    stepup_bias: float = 0.0,
    seed: int = 0,
) -> SyntheticCohort:
    """Write a cohort directory; ``stepup_bias`` raises the step-up rate of gender = ``f``.

    Scores: N(0, 1) on healthy days, N(``effect``, 1) on NR30 days; threshold
    1.64 (≈ 5 % of healthy days flagged). Relapses fall on days ≥ 45, ≥ 35
    days apart. Hourly features (if any) are N(0,1) per hour, shifted on NR30.
    """
    rng = np.random.default_rng(seed)
    out = Path(out)
    dumps = out / "outputs"
    dumps.mkdir(parents=True, exist_ok=True)
    pids = [f"P{i:03d}" for i in range(1, participants + 1)]
    names = [f"act.m{j:02d}.w{2 + 2 * (j % 7)}" for j in range(features)]
    hnames = [f"h{j:02d}" for j in range(hourly_features)]
    cohort = SyntheticCohort(out, pids, {}, {})
    files = {t: open(dumps / f"{t}.jsonl", "wb") for t in ("scores.daily", "events.anomaly", "events.stepup", "rhythm.daily")}
    if hourly_features:
        files["features.hourly"] = open(dumps / "features.hourly.jsonl", "wb")
    try:
        for p, pid in enumerate(pids):
            attrs = {
                "age_band": ("18-29", "30-44", "45+")[p % 3],
                "gender": ("f", "m")[(p // 3) % 2],
                "employment": ("employed", "unemployed", "student", "retired")[p % 4] if p % 10 else "",
            }
            cohort.attributes[pid] = attrs
            rel: list[np.datetime64] = []
            if rng.random() < relapse_share:
                d = int(rng.integers(45, 75))
                while d < days and len(rel) < 3:
                    rel.append(START + d)
                    d += int(rng.integers(35, 80))
            cohort.relapses[pid] = rel
            day_arr = START + np.arange(days)
            rel_arr = np.array(rel, dtype="datetime64[D]")
            nr30 = days_before_relapse(day_arr, rel_arr) <= 30
            score = rng.normal(size=days) + effect * nr30
            X = rng.normal(size=(days, features)) + effect * nr30[:, None] * (np.arange(features) < shifted)
            for i in range(days):
                day = str(day_arr[i])
                cal = i < calibration_days
                files["scores.daily"].write(encode(ScoreDaily(participant=pid, day=day, score=None if cal else float(score[i]), threshold=None if cal else 1.64, calibrating=cal, model="synthetic-ae")) + b"\n")
                if not cal and score[i] > 1.64:
                    cohort.anomalous.add(pid)
                    files["events.anomaly"].write(encode(AnomalyEvent(participant=pid, event_id=f"{pid}-{day}", day=day, score=float(score[i]), threshold=1.64, contributors=[], model="synthetic-ae")) + b"\n")
                feats: dict[str, FeatureValue] = {n: float(v) for n, v in zip(names, X[i], strict=True)}
                if i % 17 == 5:
                    feats[names[-1]] = None
                files["rhythm.daily"].write(encode(RhythmDaily(participant=pid, day=day, features=feats, coverage={"w2": 1.0})) + b"\n")
                if hourly_features:
                    base = float(day_arr[i].astype(np.int64)) * 86400.0
                    H = rng.normal(size=(24, hourly_features)) + effect * nr30[i]
                    for h in range(24):
                        files["features.hourly"].write(
                            encode(HourlyFeatures(participant=pid, hour_start=base + 3600 * h, local_hour=h, weekday=int((day_arr[i].astype(int) + 3) % 7), features={n: float(v) for n, v in zip(hnames, H[h], strict=True)}, filled=0.0))
                            + b"\n"
                        )
            p_step = 0.25 + (stepup_bias if attrs["gender"] == "f" else 0.0)
            if rng.random() < p_step:
                cohort.stepups.add(pid)
                files["events.stepup"].write(encode(StepUpEvent(participant=pid, event_id=f"{pid}-s", from_level="regular", to_level="low", source="passive", evidence={"rate": 0.3}, day=str(day_arr[-1]))) + b"\n")
    finally:
        for dump in files.values():
            dump.close()
    with open(out / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["participant", "relapse_date"])
        for pid in pids:
            for rel_day in cohort.relapses[pid]:
                w.writerow([pid, str(rel_day)])
    with open(out / "participants.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["participant", "age_band", "gender", "employment"])
        for pid in pids:
            w.writerow([pid, *cohort.attributes[pid].values()])
    return cohort
