"""Offline rhythm days and their scores: the score stage's operators without Kafka.

Used where a whole cohort is scored at once (held-out checks, detection
benchmarks, training from hourly dumps): one :class:`RhythmState` and one
:class:`ParticipantScorer` per participant, exactly as the streaming stages
hold them, so offline figures describe what the stream would emit.
"""

from __future__ import annotations

from typing import Iterable, Iterator

from phenoflow.core.contract import HourlyFeatures, RhythmDaily
from phenoflow.operators.rhythm.rolling import RhythmState
from phenoflow.operators.scoring.calibration import CalibrationConfig, ParticipantScorer, ScoreOutcome
from phenoflow.operators.scoring.reconstruction import DayErrors, OnnxScorer

__all__ = ["rhythm_from_hourly", "score_days"]


def rhythm_from_hourly(hourly: Iterable[HourlyFeatures]) -> list[RhythmDaily]:
    """HourlyFeatures (per participant in hour order) → RhythmDaily records, one state per participant."""
    states: dict[str, RhythmState] = {}
    out: list[RhythmDaily] = []
    for rec in hourly:
        state = states.get(rec.participant)
        if state is None:
            state = states[rec.participant] = RhythmState(rec.participant)
        out.extend(state.update(rec))
    for state in states.values():
        out.extend(state.flush())
    return out


def score_days(records: Iterable[object], scorer: OnnxScorer,
               config: CalibrationConfig | None = None) -> Iterator[tuple[DayErrors, ScoreOutcome]]:
    """Each participant-day's errors and outcome, with the stage's per-participant calibration."""
    config = config or CalibrationConfig()
    scorers: dict[str, ParticipantScorer] = {}
    for day in scorer.day_errors(list(records)):
        ps = scorers.get(day.participant)
        if ps is None:
            ps = scorers[day.participant] = ParticipantScorer(day.participant, scorer.error_space(), config)
        yield day, ps.update_day(day)
