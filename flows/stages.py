"""Feature stage builders (hourly, rhythm): each wraps pure operators from ``phenoflow.operators`` into Bytewax steps.

Per-participant state lives in ``op.stateful`` steps keyed by participant id;
the state objects are the operators' own classes (picklable, so Bytewax
recovery snapshots them as they are). ``on_eof`` flushes open windows, which
is what ``run --until-end`` relies on to close the last hours and days.
"""

from __future__ import annotations

from typing import Any, Optional

import bytewax.operators as op
from bytewax.dataflow import Stream
from bytewax.operators import KeyedStream

from phenoflow.core.config import Settings
from phenoflow.core.contract import DeadLetter, Event, HourlyFeatures, RhythmDaily
from phenoflow.core.pseudonym import study_secret
from phenoflow.core.state import PickleSnapshot
from phenoflow.flows.logic import OperatorLogic
from phenoflow.flows.wiring import late_letter
from phenoflow.operators.hourly.aggregator import STREAMS, HourlyAggregator, HourlyConfig
from phenoflow.operators.rhythm.rolling import RhythmState

__all__ = ["SOURCE_BATCH", "hourly_config", "hourly_stage", "rhythm_stage"]

#: Most messages one source partition (partition i of every input topic) returns per poll.
SOURCE_BATCH = 1000

def _participant(e: Event) -> str:
    return e.participant


def hourly_config(settings: Settings) -> HourlyConfig:
    """The hourly operator's tunables taken from the run settings."""
    return HourlyConfig(
        allowed_lateness_s=settings.allowed_lateness_s,
        idle_timeout_s=settings.idle_timeout_s,
        place_eps_m=settings.place_eps_m,
        place_min_samples=settings.place_min_samples,
    )


def hourly_stage(raw: KeyedStream[Event], settings: Settings
                 ) -> tuple[Stream[HourlyFeatures], Stream[DeadLetter]]:
    """(participant, raw event) pairs → (features.hourly records, late events as dead letters).

    GPS fixes go into each participant's private frame keyed with the study's
    pseudonym secret (:func:`~phenoflow.core.pseudonym.study_secret`). The key is
    never in a snapshot: every state built here, new or resumed, gets it from the
    settings, so a restart continues in the same frame (and a restart under another
    key is refused by the resumed state).
    """
    config = hourly_config(settings)
    frame_key, _ = study_secret(settings)  # `phenoflow run` creates a missing key file before the flow starts

    def emit(step: Any) -> list[Any]:
        out: list[Any] = list(step.records)
        for ev in step.late:
            short = f"raw.{STREAMS[type(ev)]}"
            out.append(late_letter(short, ev, f"event time older than this participant's watermark "
                                              f"(allowed lateness {config.allowed_lateness_s:.0f} s); "
                                              "its hour was already emitted"))
        return out

    def build(resume: Optional[HourlyAggregator]) -> OperatorLogic[HourlyAggregator]:
        if resume is None:
            return OperatorLogic(HourlyAggregator(config=config, frame_key=frame_key), emit, wall_clock=True)
        resume.attach_frame_key(frame_key)
        return OperatorLogic(resume, emit, wall_clock=True)

    out = op.key_rm("hourly_unkey", op.stateful_batch("hourly", raw, build))
    split = op.branch("hourly_split", out, lambda x: isinstance(x, HourlyFeatures))
    return split.trues, split.falses


def rhythm_stage(hourly: Stream[HourlyFeatures], settings: Settings) -> Stream[RhythmDaily]:
    """features.hourly records → rhythm.daily records (one per participant-day)."""

    def build(resume: Optional[_LazyRhythm]) -> OperatorLogic[_LazyRhythm]:
        if resume is not None:
            return OperatorLogic(resume)
        return OperatorLogic(_LazyRhythm(settings.rhythm_min_coverage))

    keyed = op.key_on("rhythm_key", hourly, _participant)
    return op.key_rm("rhythm_unkey", op.stateful_batch("rhythm", keyed, build))


class _LazyRhythm(PickleSnapshot):
    """RhythmState needs the participant id; create it on the first record."""

    def __init__(self, min_coverage: float) -> None:
        self.min_coverage = min_coverage
        self.inner: RhythmState | None = None

    def update_batch(self, records: list[HourlyFeatures], now: float | None = None) -> list[RhythmDaily]:
        if self.inner is None and records:
            self.inner = RhythmState(records[0].participant, min_coverage=self.min_coverage)
        return [] if self.inner is None else self.inner.update_batch(records)

    def flush(self) -> list[RhythmDaily]:
        return [] if self.inner is None else self.inner.flush()
