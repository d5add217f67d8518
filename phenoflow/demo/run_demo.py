"""``phenoflow demo``: embedded broker, simulated cohort, replay, every stage, a summary.

Everything runs for real: the Tansu broker on a free loopback port, the
replay producer, the Bytewax dataflow (in this process, one worker, until the
end of the input) and topic dumps written with the same code as
``phenoflow subscribe --out``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Callable

import msgspec

from phenoflow.connectors.broker import EmbeddedBroker
from phenoflow.connectors.cohort import read_labels
from phenoflow.connectors.kafka.clients import ensure_topics
from phenoflow.connectors.replay import ReplaySummary, replay
from phenoflow.connectors.subscribe import subscribe
from phenoflow.core.config import Settings, load_settings
from phenoflow.core.contract import ALL_TOPICS

__all__ = ["OUTPUT_TOPICS", "ParticipantSummary", "DemoResult", "summarise", "run_demo"]

#: Topics dumped to ``<out>/outputs/<topic>.jsonl`` after the run.
OUTPUT_TOPICS = ("features.hourly", "rhythm.daily", "scores.daily", "events.anomaly", "events.stepup", "deadletter")


@dataclass
class ParticipantSummary:
    """Per-participant demo outcome: relapses, scored days, alerts and their lead times."""

    participant: str
    relapses: list[date] = field(default_factory=list)
    days_scored: int = 0
    anomalous_days: list[date] = field(default_factory=list)
    lead_days: list[int | None] = field(default_factory=list)  # per relapse: days before it of the first alert
    stepups: dict[str, int] = field(default_factory=lambda: {"survey": 0, "passive": 0})


@dataclass
class DemoResult:
    """What the demo did: output folder, replay summary, stage timings, topic counts, participants."""

    out: Path
    replay: ReplaySummary
    seconds: dict[str, float]
    counts: dict[str, int]
    participants: list[ParticipantSummary]


def _read_dump(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [msgspec.json.decode(line) for line in path.read_bytes().splitlines() if line.strip()]


def summarise(cohort: Path, outputs: Path, nr_days: int = 30) -> list[ParticipantSummary]:
    """Per participant: relapses, anomalous days, lead time of the first alert, step-ups."""
    labels = read_labels(cohort)
    people: dict[str, ParticipantSummary] = {}

    def get(p: str) -> ParticipantSummary:
        return people.setdefault(p, ParticipantSummary(p, labels.get(p, [])))

    for p in labels:
        get(p)
    for rec in _read_dump(outputs / "scores.daily.jsonl"):
        if not rec["calibrating"] and rec["score"] is not None:
            get(rec["participant"]).days_scored += 1
    for ev in _read_dump(outputs / "events.anomaly.jsonl"):
        get(ev["participant"]).anomalous_days.append(date.fromisoformat(ev["day"]))
    for ev in _read_dump(outputs / "events.stepup.jsonl"):
        get(ev["participant"]).stepups[ev["source"]] += 1
    for s in people.values():
        s.anomalous_days = sorted(set(s.anomalous_days))
        for r in s.relapses:
            window = [d for d in s.anomalous_days if r - timedelta(days=nr_days) <= d < r]
            s.lead_days.append((r - window[0]).days if window else None)
    return sorted(people.values(), key=lambda s: s.participant)


def run_demo(
    out: Path,
    *,
    participants: int = 12,
    days: int = 90,
    seed: int = 7,
    stages: tuple[str, ...] = ("hourly", "rhythm", "score"),
    status: Callable[[str], None] = lambda _msg: None,
    then: Callable[[Settings, DemoResult], None] | None = None,
) -> DemoResult:
    """Run the whole pipeline on a simulated cohort; outputs go under ``out``.

    ``then(settings, result)`` runs before the broker stops (``demo --dashboard``)."""
    from bytewax.testing import run_main

    from phenoflow.flows.pipeline import build_flow
    from phenoflow.simulate.simulator import simulate_cohort

    seconds: dict[str, float] = {}
    cohort, outputs = out / "cohort", out / "outputs"
    outputs.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    status(f"simulating {participants} participants × {days} days")
    simulate_cohort(cohort, participants, days, seed, relapse_share=0.5)
    seconds["simulate"] = time.perf_counter() - t
    with EmbeddedBroker(port=0, log_file=out / "broker.log") as broker:
        # The demo's own key (place frame) beside its outputs: never a study's key file, never the working directory.
        settings: Settings = load_settings(bootstrap=broker.bootstrap, topic_prefix="phenoflow.",
                                           pseudonym_key_file=str(out / "pseudonym.key"))
        ensure_topics(settings, ALL_TOPICS)
        t = time.perf_counter()
        status("replaying the cohort onto the raw topics")
        summary = replay(cohort, settings)
        seconds["replay"] = time.perf_counter() - t
        t = time.perf_counter()
        status(f"running stages {','.join(stages)} until the end of the input")
        done = threading.Event()
        ticker = threading.Thread(target=_tick, args=(status, done), daemon=True)
        ticker.start()
        try:
            run_main(build_flow(settings, stages, until_end=True))
        finally:
            done.set()
        seconds["flows"] = time.perf_counter() - t
        t = time.perf_counter()
        counts = {}
        for topic in OUTPUT_TOPICS:
            status(f"collecting {topic}")
            with open(outputs / f"{topic}.jsonl", "wb") as fh:
                counts[topic] = subscribe(settings, topic, fh, from_beginning=True, timeout=1.0).messages
        seconds["collect"] = time.perf_counter() - t
        result = DemoResult(out, summary, seconds, counts, summarise(cohort, outputs))
        if then is not None:
            then(settings, result)
    return result


def _tick(status: Callable[[str], None], done: threading.Event) -> None:
    from phenoflow.cli.progress import describe, in_process

    while not done.wait(0.5):
        status(f"dataflow: {describe(in_process())}")
