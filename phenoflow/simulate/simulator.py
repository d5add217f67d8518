"""Simulated CrossCheck-style cohort in the replay format (``phenoflow simulate``).

Writes a cohort directory (README.md, "Historical logs (replay format)"): one JSON-lines file
per raw topic — ``accelerometer.jsonl`` (or ``.jsonl.gz``), ``screen.jsonl``,
``call.jsonl``, ``sms.jsonl``, ``location.jsonl``, ``ambient.jsonl``,
``survey.jsonl`` — each line one contract value, every file sorted by ``ts``
(participants interleaved), plus ``participants.csv`` (participant, age_band,
gender, employment) and ``labels.csv`` (participant, relapse_date; one row per
relapse, participants without relapse are absent), ``life_events.csv``
(participant, kind, start, end, detail; see :mod:`phenoflow.simulate.life_events`)
and ``simulation.json`` (the parameters, including ``signature_strength``; 0 is
the null cohort). Same seed → byte-identical files.

What is simulated (per participant; local time drives behaviour, every event
carries the participant's constant ``utc_offset_min``):

* a nightly sleep episode (phone off, still, dark, quiet) whose timing follows
  a personal circadian phase, later and longer on Fri/Sat nights;
* 2–4 significant places (home, work/school, leisure places ≥ 1.5 km apart),
  GPS fixes every 10 min with 20–50 m jitter, trips between places;
* activity as the SD of dynamic acceleration: near sensor noise when the
  phone lies still, bouts of handling with a personal amplitude peaking in
  the afternoon, walking/transit during trips;
* screen sessions (on → unlock → off), calls (incoming/outgoing/missed/
  rejected/blocked with durations and hashed peers), SMS threads;
* light and sound following day/night and place, ``voice`` during
  conversations; WHO-5 (``who5``, 0–25) every ~14 days;
* missing data: type 2 — whole hours and whole days with nothing at all
  (each participant's share drawn from ``missing_share``); type 1 — each
  sensor silent in an hour with probability ``sensor_dropout``;
* relapses for ``relapse_share`` of participants (1–3 each, day ≥ 35,
  ≥ 45 days apart) preceded by a 30-day ramp of a personal signature (2–4 of
  later/longer sleep, less activity, fewer or more social contacts, collapsed
  mobility, night-time screen use) and a WHO-5 decline, scaled by
  ``signature_strength``. :func:`cohort_truth` returns this ground truth;
* with ``life_events=True``: holidays, travel across time zones, illness, a
  new phone, daylight saving, seasonal drift, data thinning before relapse and
  single-modality signatures (:mod:`phenoflow.simulate.life_events`); events
  then carry the phone's ``utc_offset_min`` at that moment.

Accelerometer default (a demo-sized load): real phones sampled 50–100 Hz; here
the phone is duty-cycled like Beiwe's accelerometer — a 10-s burst at 1 Hz
every 5 min, one chunk of 10 samples per burst (288 chunks, 2,880 samples per
participant-day). A 20 × 60 cohort then writes ≈0.3 M chunks and takes a few
seconds. ``accel_hz``, ``accel_burst_s`` and ``accel_period_s`` raise the load
(≤ 10,000 samples per chunk).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from phenoflow.core.contract import MAX_CHUNK, TS_MAX, TS_MIN
from phenoflow.core.errors import UserError
from phenoflow.simulate import life_events as life
from phenoflow.simulate import sensors
from phenoflow.simulate.behaviour import build_timeline
from phenoflow.simulate.profiles import (
    ParticipantTruth,
    draw_participant,
    signature_ramp,
)
from phenoflow.simulate.write import FILES, write_stream

DEFAULT_START = date(2024, 1, 1)
DEFAULT_ACCEL_HZ = 1.0
DEFAULT_ACCEL_BURST_S = 10.0
DEFAULT_ACCEL_PERIOD_S = 300.0
DEFAULT_SENSOR_DROPOUT = 0.08
#: Seeds ≥ this are the benchmark set (benchmarks/bench_detection.py): never use them
#: for tuning a model, a threshold or the simulator itself (docs/evaluation.md).
BENCHMARK_SEED_MIN = 1000

_COHORT_NAMES = frozenset({f"{f}.jsonl" for f in FILES} | {"accelerometer.jsonl.gz",
                                                           "participants.csv", "labels.csv",
                                                           "life_events.csv", "simulation.json"})


@dataclass(frozen=True)
class SimulationSummary:
    """What :func:`simulate_cohort` wrote: lines per file (``accelerometer`` counts
    chunks), accelerometer samples, relapses, realised share of fully missing
    hours, and wall time in seconds."""

    out: Path
    participants: int
    days: int
    seed: int
    lines: Mapping[str, int]
    accel_samples: int
    relapses: int
    relapsing_participants: int
    missing_hour_share: float
    seconds: float

    @property
    def events(self) -> int:
        """Total lines over all topic files."""
        return sum(self.lines.values())

    def __str__(self) -> str:
        per_file = ", ".join(f"{k} {v:,}" for k, v in self.lines.items())
        return (f"{self.participants} participant{'s' * (self.participants != 1)} × {self.days} "
                f"day{'s' * (self.days != 1)}, {self.events:,} events "
                f"({per_file}; {self.accel_samples:,} accelerometer samples), "
                f"{self.relapses} relapses in {self.relapsing_participants} participants, "
                f"{100 * self.missing_hour_share:.1f} % of hours missing, {self.seconds:.1f} s")


def _check_params(participants: int, days: int, seed: int, relapse_share: float,
                  missing_share: tuple[float, float], accel_hz: float, accel_burst_s: float,
                  accel_period_s: float, start: date, signature_strength: float,
                  sensor_dropout: float) -> None:
    """Raise UserError (cause — fix) for any parameter outside its valid range."""
    if participants < 1:
        raise UserError(f"--participants must be at least 1, got {participants} — pass a positive number")
    if days < 1:
        raise UserError(f"--days must be at least 1, got {days} — pass a positive number of days")
    if seed < 0:
        raise UserError(f"--seed must be a non-negative integer, got {seed} — pass e.g. --seed 0")
    if not 0.0 <= relapse_share <= 1.0:
        raise UserError(f"relapse share must be within 0–1, got {relapse_share} — pass e.g. 0.3")
    lo, hi = missing_share
    if not (0.0 <= lo <= hi <= 0.9):
        raise UserError(f"missing share range must satisfy 0 ≤ low ≤ high ≤ 0.9, got {missing_share}"
                        " — pass e.g. (0.1, 0.3)")
    if not (0.0 <= sensor_dropout <= 0.5):
        raise UserError(f"sensor dropout must be within 0–0.5, got {sensor_dropout} — pass e.g. 0.08")
    if not (math.isfinite(accel_hz) and 0 < accel_hz <= 1000):
        raise UserError(f"--accel-hz must be within (0, 1000], got {accel_hz} — pass e.g. 1 or 50")
    if not (math.isfinite(accel_burst_s) and accel_burst_s > 0
            and math.isfinite(accel_period_s) and accel_burst_s <= accel_period_s):
        raise UserError(f"accelerometer burst ({accel_burst_s} s) must be positive and no longer than "
                        f"its period ({accel_period_s} s) — shorten the burst or lengthen the period")
    n = round(accel_burst_s * accel_hz)
    if not 1 <= n <= MAX_CHUNK:
        raise UserError(f"a burst of {accel_burst_s} s at {accel_hz} Hz is {n} samples; a chunk holds "
                        f"1–{MAX_CHUNK:,} — change --accel-hz or the burst length")
    if not (math.isfinite(signature_strength) and 0.0 <= signature_strength <= 10.0):
        raise UserError(f"signature strength must be within 0–10, got {signature_strength} — "
                        "pass e.g. 1.0 (0 = no relapse signature)")
    first = sensors.utc_origin(start, 840)
    last = sensors.utc_origin(start + timedelta(days=days), -840)
    if first < TS_MIN or last > TS_MAX:
        raise UserError(f"cohort {start} + {days} days falls outside the contract's time range "
                        "2000-01-01 … 2100-01-01 — choose another start date or fewer days")


def _prepare_out(out: Path) -> None:
    """Create ``out`` or accept an empty dir / an earlier cohort (its files are replaced)."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file — pass a directory path for the cohort")
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir() if p.name not in _COHORT_NAMES)
        if foreign:
            raise UserError(f"--out {out} is not empty and is not a cohort directory (it holds "
                            f"{foreign[0]!r}{' …' if len(foreign) > 1 else ''}) — pass a new or "
                            "empty directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create --out {out} ({exc.strerror}) — pass a writable path") from None


def _rng(seed: int, *key: int) -> np.random.Generator:
    """Independent stream per (purpose, participant, sensor): changing one sensor's
    settings (e.g. accel_hz) leaves every other file unchanged."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def cohort_truth(participants: int = 20, days: int = 60, seed: int = 0, *,
                 relapse_share: float = 0.3, missing_share: tuple[float, float] = (0.1, 0.3),
                 start: date = DEFAULT_START, life_events: bool = False) -> list[ParticipantTruth]:
    """The ground truth :func:`simulate_cohort` uses for the same arguments.

    round(relapse_share · participants) participants relapse; see
    :class:`~phenoflow.simulate.profiles.ParticipantTruth` for the fields
    (relapse days and dates, signature modalities and directions, places, …).
    Per-day signature intensity: ``signature_ramp(t.relapse_days, days) × signature_strength``.
    With ``life_events`` the signatures are the ones actually simulated (some cut
    to one modality; see :func:`life_plans`).
    """
    n_relapsing = int(round(relapse_share * participants))
    chosen = set(_rng(seed, 2).choice(participants, size=n_relapsing, replace=False).tolist())
    truths = [draw_participant(_rng(seed, 0, i), i, participants, days, start, i in chosen,
                               missing_share) for i in range(participants)]
    if life_events:
        plans = life_plans(truths, days, seed, start)
        truths = [replace(t, signature=dict(p.signature)) for t, p in zip(truths, plans, strict=True)]
    return truths


def life_plans(truths: list[ParticipantTruth], days: int, seed: int, start: date = DEFAULT_START,
               signature_strength: float = 1.0) -> list[life.LifePlan]:
    """Each participant's life events (:func:`~phenoflow.simulate.life_events.draw_life_plan`),
    drawn from a stream of their own so they change nothing else. Pass the truths
    of :func:`cohort_truth` *without* ``life_events``."""
    return [life.draw_life_plan(_rng(seed, 3, t.index), t, days, start, signature_strength)
            for t in truths]


def simulate_cohort(
    out: Path,
    participants: int = 20,
    days: int = 60,
    seed: int = 0,
    *,
    relapse_share: float = 0.3,
    missing_share: tuple[float, float] = (0.1, 0.3),
    accel_hz: float = DEFAULT_ACCEL_HZ,
    start: date = DEFAULT_START,
    gzip_accelerometer: bool = False,
    signature_strength: float = 1.0,
    accel_burst_s: float = DEFAULT_ACCEL_BURST_S,
    accel_period_s: float = DEFAULT_ACCEL_PERIOD_S,
    sensor_dropout: float = DEFAULT_SENSOR_DROPOUT,
    life_events: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> SimulationSummary:
    """Write a simulated cohort of ``participants`` × ``days`` to directory ``out``.

    ``start`` is local day 0 (every participant's local midnight);
    ``missing_share`` bounds each participant's share of hours with no data;
    ``signature_strength`` scales relapse signatures and the WHO-5 decline
    (0 = none, 1 = default, visible to an anomaly model); ``life_events``
    adds healthy routine changes, clock changes and harder relapses
    (:mod:`phenoflow.simulate.life_events`). ``progress(done,
    total)`` is called after each participant and after each file written.
    Raises UserError for bad parameters or an ``out`` that is a file or a
    non-empty directory other than a cohort.
    """
    t_start = time.perf_counter()
    out = Path(out)
    missing_share = (float(missing_share[0]), float(missing_share[1]))
    _check_params(participants, days, seed, relapse_share, missing_share, accel_hz, accel_burst_s,
                  accel_period_s, start, signature_strength, sensor_dropout)
    _prepare_out(out)
    truths = cohort_truth(participants, days, seed, relapse_share=relapse_share,
                          missing_share=missing_share, start=start)
    plans = life_plans(truths, days, seed, start, signature_strength) if life_events else None
    total = participants + len(FILES)
    weekday0 = start.weekday()
    parts: dict[str, list[tuple[int, dict[str, np.ndarray]]]] = {f: [] for f in FILES}
    missing_hours = 0
    for i, t in enumerate(truths):
        plan = plans[i] if plans is not None else None
        if plan is not None:
            t = replace(t, signature=dict(plan.signature))
        tl = build_timeline(t, days, weekday0, signature_strength, _rng(seed, 1, i, 0), plan)
        t0 = sensors.utc_origin(start, t.utc_offset_min)
        ramp = signature_ramp(t.relapse_days, days) * signature_strength
        if plan is not None:
            tl.hour_missing = tl.hour_missing | life.extra_missing(plan, ramp, _rng(seed, 3, i, 1))
        missing_hours += int(tl.hour_missing.sum())
        streams = {
            "accelerometer": sensors.accelerometer(tl, t0, accel_hz, accel_burst_s, accel_period_s,
                                                   sensor_dropout, _rng(seed, 1, i, 1)),
            "screen": sensors.screen(t, tl, t0, sensor_dropout, _rng(seed, 1, i, 2)),
            "call": sensors.calls(t, tl, t0, _rng(seed, 1, i, 3)),
            "sms": sensors.sms(t, tl, t0, _rng(seed, 1, i, 4)),
            "location": sensors.location(tl, t0, sensor_dropout, _rng(seed, 1, i, 5)),
            "ambient": sensors.ambient(tl, t0, sensor_dropout, _rng(seed, 1, i, 6)),
            "survey": sensors.survey(t, tl, t0, ramp, _rng(seed, 1, i, 7)),
        }
        for name, cols in streams.items():
            if plan is not None:
                cols = life.apply_clock(life.new_phone(name, cols, t0, plan), t0, t.utc_offset_min, plan)
            parts[name].append((i, cols))
        if progress is not None:
            progress(i + 1, total)

    ids = [t.participant for t in truths]
    offsets = [t.utc_offset_min for t in truths]
    stale = "accelerometer.jsonl" if gzip_accelerometer else "accelerometer.jsonl.gz"
    (out / stale).unlink(missing_ok=True)
    lines: dict[str, int] = {}
    for k, name in enumerate(FILES):
        gz = gzip_accelerometer and name == "accelerometer"
        path = out / (f"{name}.jsonl.gz" if gz else f"{name}.jsonl")
        lines[name] = write_stream(path, name, parts.pop(name), ids, offsets, gz=gz)
        if progress is not None:
            progress(participants + k + 1, total)
    accel_samples = lines["accelerometer"] * round(accel_burst_s * accel_hz)
    _write_csvs(out, truths)
    rows = ["participant,kind,start,end,detail"]
    if plans is not None:
        rows += [r for t, p in zip(truths, plans, strict=True) for r in life.manifest_rows(t.participant, p, start)]
    (out / "life_events.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    params = {"participants": participants, "days": days, "seed": seed, "start": start.isoformat(),
              "relapse_share": relapse_share, "missing_share": list(missing_share),
              "signature_strength": signature_strength, "null_cohort": signature_strength == 0,
              "life_events": life_events, "sensor_dropout": sensor_dropout, "accel_hz": accel_hz,
              "accel_burst_s": accel_burst_s, "accel_period_s": accel_period_s,
              "benchmark_seed": seed >= BENCHMARK_SEED_MIN}
    (out / "simulation.json").write_text(json.dumps(params, indent=1) + "\n", encoding="utf-8")
    n_relapses = sum(len(t.relapse_days) for t in truths)
    return SimulationSummary(
        out=out, participants=participants, days=days, seed=seed, lines=lines,
        accel_samples=accel_samples, relapses=n_relapses,
        relapsing_participants=sum(1 for t in truths if t.relapse_days),
        missing_hour_share=missing_hours / (participants * days * 24),
        seconds=time.perf_counter() - t_start,
    )


def _write_csvs(out: Path, truths: list[ParticipantTruth]) -> None:
    """participants.csv and labels.csv (ids and attributes contain no commas or quotes)."""
    rows = ["participant,age_band,gender,employment"]
    rows += [f"{t.participant},{t.age_band},{t.gender},{t.employment}" for t in truths]
    (out / "participants.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    labels = ["participant,relapse_date"]
    labels += [f"{t.participant},{d.isoformat()}" for t in truths for d in t.relapse_dates]
    (out / "labels.csv").write_text("\n".join(labels) + "\n", encoding="utf-8")


__all__ = ["SimulationSummary", "simulate_cohort", "cohort_truth", "life_plans", "BENCHMARK_SEED_MIN",
           "signature_ramp",
           "ParticipantTruth", "DEFAULT_START", "DEFAULT_ACCEL_HZ"]
