"""Survey step-ups: WHO-5 levels and moves to a worse level between assessments.

Survey step-up (Buda et al., Front. Digit. Health 2022): the WHO-5 raw score
(0–25) is multiplied by 4 to a 0–100 percentage. Levels: ``low`` [0, 28),
``regular`` [28, 50), ``high`` [50, 100]. A higher WHO-5 means BETTER well-being,
so deterioration runs high → regular → low; a step-up is a move to a worse level
between two consecutive assessments of a participant (high→regular,
regular→low, high→low). Raw scores are integers, so the boundaries in raw units
are 7 (=28 %, regular) vs 6 (=24 %, low) and 13 (=52 %, high) vs 12 (=48 %, regular).
The passive counterpart (risk tiers from anomalous days) is :mod:`.passive`.
"""

from __future__ import annotations

from phenoflow.core.contract import StepUpEvent, Survey
from phenoflow.core.event_ids import stepup_event_id

__all__ = [
    "WHO5_LEVELS", "WHO5_REGULAR_FROM", "WHO5_HIGH_FROM", "who5_percent", "who5_level", "is_worse", "SurveyStepUp"
]

#: WHO-5 levels from worst to best; a step-up moves toward index 0.
WHO5_LEVELS: tuple[str, ...] = ("low", "regular", "high")
#: Lower bounds (percent, inclusive) of ``regular`` and ``high``.
WHO5_REGULAR_FROM = 28
WHO5_HIGH_FROM = 50


def who5_percent(raw: int) -> int:
    """WHO-5 raw score (0–25) → percentage score (0–100), ×4 (WHO 1998 scoring)."""
    if not 0 <= raw <= 25:
        raise ValueError(f"WHO-5 raw score must be 0–25, got {raw}")
    return int(raw) * 4


def who5_level(raw: int) -> str:
    """Well-being level of a WHO-5 raw score: low [0, 28), regular [28, 50), high [50, 100]."""
    pct = who5_percent(raw)
    if pct < WHO5_REGULAR_FROM:
        return "low"
    if pct < WHO5_HIGH_FROM:
        return "regular"
    return "high"


def is_worse(from_level: str, to_level: str) -> bool:
    """True iff ``to_level`` is a worse well-being level than ``from_level``."""
    return WHO5_LEVELS.index(to_level) < WHO5_LEVELS.index(from_level)


class SurveyStepUp:
    """Per-participant WHO-5 state: the previous assessment's time, raw score and level.

    ``update`` returns a :class:`StepUpEvent` (source ``survey``, ``ts`` = the later
    survey's ts) when the level worsens between two consecutive assessments.
    Assessments at or before the previous one's ``ts`` (duplicates from a replay,
    late arrivals) are ignored, so re-delivery never yields a second event and
    "consecutive" always means consecutive in time.

    >>> from phenoflow.core.contract import Survey
    >>> t0 = 1_717_200_000.0
    >>> who5 = SurveyStepUp()
    >>> who5.update(Survey(participant="p1", utc_offset_min=60, ts=t0, instrument="who5", score=20)) is None
    True
    >>> event = who5.update(Survey(participant="p1", utc_offset_min=60, ts=t0 + 14 * 86400, instrument="who5", score=9))
    >>> event.from_level, event.to_level, event.evidence["score"]  # WHO-5 percentage = raw × 4
    ('high', 'regular', 36)
    """

    __slots__ = ("prev_ts", "prev_raw")

    def __init__(self) -> None:
        self.prev_ts: float | None = None
        self.prev_raw: int | None = None

    def update(self, survey: Survey) -> StepUpEvent | None:
        """Ingest one survey; return the step-up it causes, if any."""
        if survey.instrument != "who5":
            return None
        if self.prev_ts is not None and survey.ts <= self.prev_ts:
            return None
        prev_ts, prev_raw = self.prev_ts, self.prev_raw
        self.prev_ts, self.prev_raw = float(survey.ts), int(survey.score)
        if prev_raw is None or prev_ts is None:
            return None
        before, after = who5_level(prev_raw), who5_level(survey.score)
        if not is_worse(before, after):
            return None
        return StepUpEvent(
            participant=survey.participant,
            utc_offset_min=survey.utc_offset_min,
            event_id=stepup_event_id(survey.participant, "survey", float(survey.ts), before, after),
            from_level=before,
            to_level=after,
            source="survey",
            evidence={
                "prev_score": who5_percent(prev_raw),
                "score": who5_percent(survey.score),
                "prev_raw": prev_raw,
                "raw": int(survey.score),
                "prev_ts": prev_ts,
            },
            ts=float(survey.ts),
        )
