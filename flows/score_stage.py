"""Score stage wiring: ONNX inference per batch, then per-participant calibration and events.

Inference runs on whole Bytewax batches (one ONNX Runtime call for many
participant-days); the per-participant Mahalanobis calibration, threshold and
passive step-up run in a keyed ``stateful`` step. WHO-5 surveys feed a second
keyed step for survey step-ups.
"""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path
from typing import Any, Optional

import bytewax.operators as op
from bytewax.dataflow import Stream

from phenoflow.core import telemetry as metrics
from phenoflow.core.config import Settings
from phenoflow.core.contract import AnomalyEvent, Event, HourlyFeatures, ScoreDaily, StepUpEvent, Survey
from phenoflow.core.state import PickleSnapshot
from phenoflow.core.timebase import local_day_hour
from phenoflow.evaluation.provenance import file_hash
from phenoflow.flows.logic import OperatorLogic
from phenoflow.operators.scoring.calibration import CalibrationConfig, ParticipantScorer, load_thresholds
from phenoflow.operators.scoring.reconstruction import DayErrors, OnnxScorer
from phenoflow.operators.stepup.who5 import SurveyStepUp

__all__ = ["default_model_path", "load_scorer", "score_streams"]


def default_model_path() -> Path:
    """The model shipped in the package (``models/default.onnx``)."""
    return Path(str(resources.files("phenoflow.models").joinpath("default.onnx")))


class _ParticipantScoring(PickleSnapshot):
    """Operator-state adapter: a ParticipantScorer created on the participant's first day."""

    def __init__(self, scorer: OnnxScorer, config: CalibrationConfig, thresholds: dict[str, float],
                 threshold_source: str = "calibration") -> None:
        self.space = scorer.error_space()
        self.config = config
        self.thresholds = thresholds
        self.threshold_source = threshold_source
        self.inner: ParticipantScorer | None = None

    def __getstate__(self) -> dict[str, Any]:
        # The error space is rebuilt from the loaded model on restore (it holds feature names).
        return {**super().__getstate__(), "space": None}

    def update_batch(self, days: list[DayErrors], now: float | None = None) -> list[Any]:
        return [x for day in days for x in self.update(day)]

    def update(self, day: DayErrors) -> list[Any]:
        """Score one participant-day: its score record, and an anomaly or passive step-up event."""
        if self.inner is None:
            self.inner = ParticipantScorer(day.participant, self.space, self.config,
                                           threshold=self.thresholds.get(day.participant),
                                           threshold_source=getattr(self, "threshold_source", "calibration"))
            metrics.CALIBRATING.inc()
        was_calibrating = self.inner.calibrating
        outcome = self.inner.update_day(day)
        if was_calibrating and not self.inner.calibrating:
            metrics.CALIBRATING.dec()
        return [x for x in (outcome.score, outcome.anomaly, outcome.stepup) if x is not None]

    def flush(self) -> list[Any]:
        return []


class _HourlyDays(PickleSnapshot):
    """Collects one participant's hourly records into whole local days (hourly-input models).

    The hourly stage emits a participant's hours in order, a local day at a time,
    so a record of a later local day closes the buffered one.
    """

    def __init__(self) -> None:
        self.day: int | None = None
        self.hours: list[HourlyFeatures] = []

    def update_batch(self, records: list[HourlyFeatures], now: float | None = None) -> list[list[HourlyFeatures]]:
        return [day for record in records for day in self.update(record)]

    def update(self, record: HourlyFeatures) -> list[list[HourlyFeatures]]:
        """Buffer one hour; return the previous local day once a later day starts."""
        day, _ = local_day_hour(record.hour_start, record.utc_offset_min)
        out = []
        if self.day is not None and day != self.day and self.hours:
            out.append(self.hours)
            self.hours = []
        self.day = day
        self.hours.append(record)
        return out

    def flush(self) -> list[list[HourlyFeatures]]:
        out, self.hours = ([self.hours] if self.hours else []), []
        return out


class _SurveyState(PickleSnapshot):
    def __init__(self) -> None:
        self.inner = SurveyStepUp()

    def update_batch(self, surveys: list[Survey], now: float | None = None) -> list[StepUpEvent]:
        events = (self.inner.update(survey) for survey in surveys)
        return [e for e in events if e is not None]

    def flush(self) -> list[StepUpEvent]:
        return []


def load_scorer(settings: Settings) -> OnnxScorer:
    """The configured model (``model_path``) or the shipped default; UserError if unusable."""
    return OnnxScorer(Path(settings.model_path) if settings.model_path else default_model_path())


def score_streams(days: Stream[Any], surveys: Stream[Event], settings: Settings,
                  scorer: OnnxScorer | None = None) -> dict[str, Stream[Any]]:
    """Model input + raw.survey → {short topic: stream} for scores.daily, events.anomaly, events.stepup.

    ``days`` holds rhythm.daily records for rhythm models, features.hourly records
    for hourly models (grouped here into local days; the hourly scores of a day
    are averaged as in Adler et al. 2020).
    """
    scorer = scorer or load_scorer(settings)
    thresholds = load_thresholds(settings.thresholds_path) if settings.thresholds_path else {}
    # scores.daily names the file τ came from (sha256 prefix), so evaluate can check its provenance
    source = file_hash(Path(settings.thresholds_path)) if settings.thresholds_path else "calibration"
    config = CalibrationConfig(calibration_days=settings.calibration_days)
    if scorer.input_kind == "hourly":
        days = op.key_rm("days_unkey", op.stateful_batch(
            "hours_to_days", op.key_on("days_key", days, lambda r: r.participant),
            lambda resume: OperatorLogic(resume if resume is not None else _HourlyDays())))

    def errors(batch: list[Any]) -> list[tuple[str, DayErrors]]:
        t0 = time.perf_counter()
        records = [r for item in batch for r in (item if isinstance(item, list) else (item,))]
        out = [(d.participant, d) for d in scorer.day_errors(records)]
        metrics.SCORING_LATENCY.observe(time.perf_counter() - t0)
        return out

    def build(resume: Optional[_ParticipantScoring]) -> OperatorLogic[_ParticipantScoring]:
        if resume is not None:
            resume.space = scorer.error_space()
            return OperatorLogic(resume)
        return OperatorLogic(_ParticipantScoring(scorer, config, thresholds, source))

    keyed = op.flat_map_batch("model", days, errors)
    scored = op.key_rm("score_unkey", op.stateful_batch("score", keyed, build))
    survey_events = op.key_rm("survey_unkey", op.stateful_batch(
        "survey", op.key_on("survey_key", surveys, lambda e: e.participant),
        lambda resume: OperatorLogic(resume if resume is not None else _SurveyState())))
    return {
        "scores.daily": op.filter("scores", scored, lambda x: isinstance(x, ScoreDaily)),
        "events.anomaly": op.filter("anomalies", scored, lambda x: isinstance(x, AnomalyEvent)),
        "events.stepup": op.merge("stepups", op.filter("passive", scored, lambda x: isinstance(x, StepUpEvent)),
                                  survey_events),
    }
