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

from phenoflow import metrics
from phenoflow.config import Settings
from phenoflow.contract import AnomalyEvent, Event, RhythmDaily, ScoreDaily, StepUpEvent
from phenoflow.errors import UserError
from phenoflow.flows.stages import OperatorLogic
from phenoflow.operators.calibration import CalibrationConfig, ParticipantScorer, load_thresholds
from phenoflow.operators.scoring import DayErrors, OnnxScorer
from phenoflow.operators.stepup import SurveyStepUp


def default_model_path() -> Path:
    """The model shipped in the package (``models/default.onnx``)."""
    return Path(str(resources.files("phenoflow.models").joinpath("default.onnx")))


class _ParticipantScoring:
    """Operator-state adapter: a ParticipantScorer created on the participant's first day."""

    def __init__(self, scorer: OnnxScorer, config: CalibrationConfig, thresholds: dict[str, float]) -> None:
        self.space = scorer.error_space()
        self.config = config
        self.thresholds = thresholds
        self.inner: ParticipantScorer | None = None

    def __getstate__(self) -> dict[str, Any]:
        # The error space is rebuilt from the loaded model on restore (it holds feature names).
        return {**self.__dict__, "space": None}

    def update(self, day: DayErrors) -> list[Any]:
        if self.inner is None:
            self.inner = ParticipantScorer(day.participant, self.space, self.config,
                                           threshold=self.thresholds.get(day.participant))
            metrics.CALIBRATING.inc()
        was_calibrating = self.inner.calibrating
        outcome = self.inner.update_day(day)
        if was_calibrating and not self.inner.calibrating:
            metrics.CALIBRATING.dec()
        return [x for x in (outcome.score, outcome.anomaly, outcome.stepup) if x is not None]

    def flush(self) -> list[Any]:
        return []


class _SurveyState:
    def __init__(self) -> None:
        self.inner = SurveyStepUp()

    def update(self, survey: Event) -> list[StepUpEvent]:
        event = self.inner.update(survey)  # type: ignore[arg-type]
        return [] if event is None else [event]

    def flush(self) -> list[StepUpEvent]:
        return []


def load_scorer(settings: Settings) -> OnnxScorer:
    path = Path(settings.model_path) if settings.model_path else default_model_path()
    scorer = OnnxScorer(path)
    if scorer.input_kind != "rhythm":
        raise UserError(f"model {path} takes {scorer.input_kind} input; the score stage scores rhythm.daily — "
                        "train one with `phenoflow train COHORT --input rhythm` (hourly models: `phenoflow evaluate --compare`)")
    return scorer


def score_streams(rhythm: Stream[RhythmDaily], surveys: Stream[Event], settings: Settings) -> dict[str, Stream[Any]]:
    """rhythm.daily + raw.survey → {short topic: stream} for scores.daily, events.anomaly, events.stepup."""
    scorer = load_scorer(settings)
    thresholds = load_thresholds(settings.thresholds_path) if settings.thresholds_path else {}
    config = CalibrationConfig(calibration_days=settings.calibration_days)

    def errors(batch: list[RhythmDaily]) -> list[tuple[str, DayErrors]]:
        t0 = time.perf_counter()
        out = [(d.participant, d) for d in scorer.day_errors(batch)]
        metrics.SCORING_LATENCY.observe(time.perf_counter() - t0)
        return out

    def build(resume: Optional[_ParticipantScoring]) -> OperatorLogic[_ParticipantScoring]:
        if resume is not None:
            resume.space = scorer.error_space()
            return OperatorLogic(resume)
        return OperatorLogic(_ParticipantScoring(scorer, config, thresholds))

    keyed = op.flat_map_batch("model", rhythm, errors)
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
