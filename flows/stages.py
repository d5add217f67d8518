"""Stage builders: each wraps pure operators from ``phenoflow.operators`` into Bytewax steps.

Per-participant state lives in ``op.stateful`` steps keyed by participant id;
the state objects are the operators' own classes (picklable, so Bytewax
recovery snapshots them as they are). ``on_eof`` flushes open windows, which
is what ``run --until-end`` relies on to close the last hours and days.
"""

from __future__ import annotations

import pickle
import time
from typing import Any, Callable, Generic, Iterable, Optional, Tuple, TypeVar

import bytewax.operators as op
from bytewax.dataflow import Stream
from bytewax.operators import KeyedStream, StatefulBatchLogic

from phenoflow.config import Settings
from phenoflow.contract import DeadLetter, Event, HourlyFeatures, RhythmDaily
from phenoflow.flows.wiring import late_letter
from phenoflow.operators.hourly import STREAMS, HourlyAggregator, HourlyConfig
from phenoflow.operators.rhythm_daily import RhythmState

#: Most messages one source partition (partition i of every input topic) returns per poll.
SOURCE_BATCH = 1000

S = TypeVar("S")


class OperatorLogic(StatefulBatchLogic[Any, Any, Any], Generic[S]):
    """Bytewax adapter for an operator state with ``update(x)`` (or ``update_batch(xs)``) and ``flush()``.

    Works on whole Bytewax batches: an operator with ``update_batch`` gets the
    batch at once (one watermark check per batch instead of per event).
    ``emit`` turns what an update returned into output items; ``wall_clock``
    passes ``now=time.time()`` (see HourlyAggregator.watermark).
    """

    def __init__(self, state: S, emit: Callable[[Any], Iterable[Any]] | None = None,
                 *, wall_clock: bool = False) -> None:
        self.state = state
        self.emit = emit or (lambda result: result)
        self.wall_clock = wall_clock

    def on_batch(self, values: list[Any]) -> Tuple[Iterable[Any], bool]:
        kw = {"now": time.time()} if self.wall_clock else {}
        batch = getattr(self.state, "update_batch", None)
        if batch is not None:
            return list(self.emit(batch(values, **kw))), StatefulBatchLogic.RETAIN
        out: list[Any] = []
        for value in values:
            out.extend(self.emit(self.state.update(value, **kw)))  # type: ignore[attr-defined]
        return out, StatefulBatchLogic.RETAIN

    def on_eof(self) -> Tuple[Iterable[Any], bool]:
        return list(self.state.flush()), StatefulBatchLogic.RETAIN  # type: ignore[attr-defined]

    def snapshot(self) -> S:
        # Bytewax needs an immutable snapshot; a pickle round trip is ~4× cheaper than deepcopy.
        return pickle.loads(pickle.dumps(self.state, protocol=pickle.HIGHEST_PROTOCOL))


def _participant(e: Event) -> str:
    return e.participant


def hourly_config(settings: Settings) -> HourlyConfig:
    return HourlyConfig(
        allowed_lateness_s=settings.allowed_lateness_s,
        idle_timeout_s=settings.idle_timeout_s,
        place_eps_m=settings.place_eps_m,
        place_min_samples=settings.place_min_samples,
    )


def hourly_stage(raw: KeyedStream[Event], settings: Settings
                 ) -> tuple[Stream[HourlyFeatures], Stream[DeadLetter]]:
    """(participant, raw event) pairs → (features.hourly records, late events as dead letters)."""
    config = hourly_config(settings)

    def emit(step: Any) -> list[Any]:
        out: list[Any] = list(step.records)
        for ev in step.late:
            short = f"raw.{STREAMS[type(ev)]}"
            out.append(late_letter(short, ev, f"event time older than this participant's watermark "
                                              f"(allowed lateness {config.allowed_lateness_s:.0f} s); "
                                              "its hour was already emitted"))
        return out

    def build(resume: Optional[HourlyAggregator]) -> OperatorLogic[HourlyAggregator]:
        return OperatorLogic(resume if resume is not None else HourlyAggregator(config=config), emit,
                             wall_clock=True)

    out = op.key_rm("hourly_unkey", op.stateful_batch("hourly", raw, build))
    split = op.branch("hourly_split", out, lambda x: isinstance(x, HourlyFeatures))
    return split.trues, split.falses


def rhythm_stage(hourly: Stream[HourlyFeatures], settings: Settings) -> Stream[RhythmDaily]:
    """features.hourly records → rhythm.daily records (one per participant-day)."""

    def build(resume: Optional[RhythmState]) -> OperatorLogic[RhythmState]:
        if resume is not None:
            return OperatorLogic(resume)
        return OperatorLogic(_LazyRhythm(settings.rhythm_min_coverage))

    keyed = op.key_on("rhythm_key", hourly, _participant)
    return op.key_rm("rhythm_unkey", op.stateful_batch("rhythm", keyed, build))


class _LazyRhythm:
    """RhythmState needs the participant id; create it on the first record."""

    def __init__(self, min_coverage: float) -> None:
        self.min_coverage = min_coverage
        self.inner: RhythmState | None = None

    def update(self, record: HourlyFeatures) -> list[RhythmDaily]:
        if self.inner is None:
            self.inner = RhythmState(record.participant, min_coverage=self.min_coverage)
        return self.inner.update(record)

    def flush(self) -> list[RhythmDaily]:
        return [] if self.inner is None else self.inner.flush()


def score_stage(days: Stream[Any], surveys: Stream[Event], settings: Settings, scorer: Any = None) -> dict[str, Stream[Any]]:
    """rhythm.daily or features.hourly (per the model) + raw.survey → scores.daily, events.*"""
    from phenoflow.flows.scoring import score_streams

    return score_streams(days, surveys, settings, scorer)
