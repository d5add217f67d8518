"""Every per-participant operator state survives a snapshot / pickle round trip.

Recovery restores what ``snapshot()`` returned (Bytewax pickles it). For each
state: feed realistic input, take the snapshot and round-trip it through pickle,
then feed the original and the copy the SAME further input; their outputs must be
identical. A ``__getstate__`` that drops or corrupts anything the state still
needs makes the copy's output differ (or raise).

Input: a simulated participant (the cohort simulator's raw events, decoded from
its files), hourly records from the real hourly operator, WHO-5 surveys, and
reconstruction errors shaped like the shipped model's.
"""

from __future__ import annotations

import pickle
from datetime import date, timedelta
from typing import Any, Callable

import msgspec
import numpy as np
import pytest

from phenoflow.core.config import load_settings
from phenoflow.core.contract import Event, HourlyFeatures, Location, ScoreDaily, Survey
from phenoflow.core.state import OperatorState
from phenoflow.flows.logic import OperatorLogic
from phenoflow.flows.score_stage import _HourlyDays, _ParticipantScoring, _SurveyState, load_scorer
from phenoflow.flows.stages import _LazyRhythm
from phenoflow.offline.features import read_cohort_events
from phenoflow.operators.hourly.aggregator import FEATURE_NAMES, HourlyAggregator, HourlyConfig
from phenoflow.operators.hourly.imputation import HourOfDayMeans
from phenoflow.operators.places.clusters import PlaceTracker
from phenoflow.operators.rhythm.rolling import RhythmState
from phenoflow.operators.scoring.calibration import CalibrationConfig, ParticipantScorer
from phenoflow.operators.scoring.reconstruction import DayErrors, OnnxScorer
from phenoflow.operators.stepup.passive import PassiveRisk
from phenoflow.operators.stepup.who5 import SurveyStepUp
from phenoflow.simulate.simulator import simulate_cohort

DAYS = 5
#: The study secret keying the hourly stage's private place frame; never pickled, re-attached on restore.
KEY = b"unit-test-frame-key"


def roundtrip(state: Any) -> Any:
    """What recovery restores: the snapshot, pickled and unpickled."""
    snap = state.snapshot() if hasattr(state, "snapshot") else state
    return pickle.loads(pickle.dumps(snap, protocol=pickle.HIGHEST_PROTOCOL))


def canon(out: Any) -> bytes:
    """Outputs as comparable bytes (NaN-safe; contract Structs, numpy arrays, lists, None)."""
    return msgspec.json.encode(out, enc_hook=lambda x: x.tolist() if isinstance(x, np.ndarray) else repr(x))


def same_after(a: Any, b: Any, step: Callable[[Any], Any]) -> Any:
    """Apply ``step`` to both states; assert equal outputs; return the original's (for non-triviality checks)."""
    out_a = step(a)
    assert canon(out_a) == canon(step(b))
    return out_a


@pytest.fixture(scope="module")
def raw_events(tmp_path_factory: pytest.TempPathFactory) -> list[Event]:
    cohort = tmp_path_factory.mktemp("cohort")
    simulate_cohort(cohort, participants=1, days=DAYS, seed=4, accel_hz=0.5)
    return [e for e in read_cohort_events(cohort) if isinstance(e, Event)]


@pytest.fixture(scope="module")
def hourly(raw_events: list[Event]) -> list[HourlyFeatures]:
    agg = HourlyAggregator(config=HourlyConfig(), frame_key=KEY)
    records = list(agg.update_batch(raw_events).records) + agg.flush()
    assert len(records) >= 24 * (DAYS - 1)
    return records


def surveys(participant: str = "p1") -> list[Survey]:
    """Weekly-ish WHO-5 raw scores that fall, recover and fall again (several step-ups)."""
    scores = [20, 18, 11, 16, 7, 19, 12, 6, 3, 15]
    t0 = 1_717_200_000.0
    return [Survey(participant=participant, utc_offset_min=60, ts=t0 + 3 * 86400.0 * i, instrument="who5",
                   score=s) for i, s in enumerate(scores)]


def day_errors(scorer: OnnxScorer, n: int, seed: int = 0, participant: str = "p1") -> list[DayErrors]:
    """Rhythm-model-shaped daily errors: (p,) absolute errors with feature-specific scales, last days worse."""
    rng = np.random.default_rng(seed)
    p = len(scorer.feature_names)
    scale = np.linspace(0.2, 2.0, p)
    out = []
    for i in range(n):
        e = np.abs(rng.normal(0.0, 1.0, p)) * scale * (3.0 if i >= n - 4 else 1.0)
        out.append(DayErrors(participant, (date(2024, 3, 1) + timedelta(days=i)).isoformat(), 60, e, 1.0))
    return out


# --- operator classes ----------------------------------------------------------------------


@pytest.mark.parametrize("cut", [0.3, 0.6])
def test_hourly_aggregator(raw_events: list[Event], cut: float) -> None:
    k = int(len(raw_events) * cut)
    a = HourlyAggregator(config=HourlyConfig(), frame_key=KEY)
    first = a.update_batch(raw_events[:k])
    assert first.records  # the state holds closed days and open hours at the cut
    b = roundtrip(a)
    assert b.frame_salt == a.frame_salt is not None  # the frame's fixes are in the state, its key is not
    b.attach_frame_key(KEY)  # as the flow's build() does on resume
    step, flushed = same_after(a, b, lambda s: [s.update_batch(raw_events[k:]), s.flush()])
    assert step.records and flushed


def test_rhythm_state(hourly: list[HourlyFeatures]) -> None:
    k = len(hourly) // 2 + 5
    a = RhythmState(hourly[0].participant, min_coverage=0.1)
    assert a.update_batch(hourly[:k])
    b = roundtrip(a)
    days, flushed = same_after(a, b, lambda s: [s.update_batch(hourly[k:]), s.flush()])
    assert len(days + flushed) >= 2


@pytest.mark.parametrize("cut", [3, 9])  # in the fit phase; after τ is set
def test_participant_scorer(cut: int) -> None:
    scorer = load_scorer(load_settings())
    days = day_errors(scorer, 20)
    a = ParticipantScorer("p1", scorer.error_space(), CalibrationConfig(calibration_days=5, threshold_days=3))
    for d in days[:cut]:
        a.update_day(d)
    b = roundtrip(a)
    assert b._space is None  # the shared error space is not pickled; it is looked up again
    outcomes = same_after(a, b, lambda s: [s.update_day(d) for d in days[cut:]])
    assert sum(o.score.score is not None for o in outcomes) >= 20 - max(cut, 8)  # scored after calibration
    assert any(o.anomaly is not None for o in outcomes)  # the worse last days


def test_passive_risk() -> None:
    flags = [False, True, False, True, True, False, True, True, True, False, False, True, True, True, True]
    day = [(date(2024, 3, 1) + timedelta(days=i)).isoformat() for i in range(len(flags))]
    a = PassiveRisk()
    for d, f in zip(day[:6], flags[:6], strict=True):
        a.update("p1", d, f)
    b = roundtrip(a)
    events = same_after(a, b, lambda s: [s.update("p1", d, f) for d, f in zip(day[6:], flags[6:], strict=True)])
    assert "high_risk" in [e.to_level for e in events if e is not None]


def test_survey_stepup() -> None:
    s = surveys()
    a = SurveyStepUp()
    for x in s[:4]:
        a.update(x)
    b = roundtrip(a)
    events = same_after(a, b, lambda st: [st.update(x) for x in s[3:]])  # s[3] is a replay: ignored by both
    assert events[0] is None and sum(e is not None for e in events) >= 2


def test_place_tracker(raw_events: list[Event]) -> None:
    fixes = [e for e in raw_events if isinstance(e, Location)]
    assert len(fixes) > 20
    ts = np.array([f.ts for f in fixes])
    lat, lon = np.array([f.lat for f in fixes]), np.array([f.lon for f in fixes])
    labels = (np.arange(ts.size) % 3).astype(np.int8)
    hours = np.floor(ts / 3600.0).astype(np.int64)
    cut_hour = int(hours[ts.size // 2])
    first, later = hours < cut_hour, hours >= cut_hour
    h0, h1 = int(hours[0]), int(hours[-1]) + 1

    def attribute(t: PlaceTracker, sel: np.ndarray, start: int, stop: int) -> Any:
        return t.attribute(start, stop - start, ts[sel], lat[sel], lon[sel], labels[sel], 12 * 3600.0, 50.0)

    a = PlaceTracker()
    attribute(a, first, h0, cut_hour)
    assert a.last_ts is not None
    b = roundtrip(a)
    place_s, distance = pickle.loads(pickle.dumps(attribute(a, later, cut_hour, h1)))
    assert canon([place_s, distance]) == canon(attribute(b, later, cut_hour, h1))
    assert distance.sum() > 0


def test_hour_of_day_means(hourly: list[HourlyFeatures]) -> None:
    vec = [np.array([r.features.get(n) or 0.0 for n in FEATURE_NAMES], dtype=float) for r in hourly]
    seen = [np.array([n in r.features for n in FEATURE_NAMES]) for r in hourly]  # observed features
    hours = [r.local_hour for r in hourly]
    a = HourOfDayMeans(len(FEATURE_NAMES))
    for h, v, o in zip(hours[:30], vec[:30], seen[:30], strict=True):
        a.update(h, v, o)
    b = roundtrip(a)

    def more(m: HourOfDayMeans) -> list[np.ndarray]:
        for h, v, o in zip(hours[30:], vec[30:], seen[30:], strict=True):
            m.update(h, v, o)
        return [m.mean(h) for h in range(24)]

    means = same_after(a, b, more)
    assert all(m.any() for m in means)  # every hour of day has history by then


# --- the states the flows hold (flows/stages.py, flows/score_stage.py) ---------------------------


def drive(a: OperatorState, first: list[Any], rest: list[Any],
          emit: Callable[[Any], Any] | None = None,
          restore: Callable[[Any], None] | None = None) -> tuple[Any, list[Any]]:
    """Feed ``first`` through an OperatorLogic, restore its snapshot, feed ``rest`` + EOF to both.

    ``restore`` does to the restored state what the flow's ``build(resume)`` does
    (give back what is never pickled). Returns the restored state and the
    original's outputs after the snapshot.
    """
    logic = OperatorLogic(a, emit)
    logic.on_batch(first)
    b = roundtrip(logic)
    if restore is not None:
        restore(b)
    assert isinstance(b, OperatorState) and type(b) is type(a)
    restored = OperatorLogic(b, emit)
    out = [[*lg.on_batch(rest)[0], *lg.on_eof()[0]] for lg in (logic, restored)]
    assert canon(out[0]) == canon(out[1])
    return b, out[0]


def test_flow_states_are_operator_states() -> None:
    scorer = load_scorer(load_settings())
    states = [HourlyAggregator(), RhythmState("p1"), _LazyRhythm(0.5), _HourlyDays(), _SurveyState(),
              _ParticipantScoring(scorer, CalibrationConfig(), {})]
    for s in states:
        assert isinstance(s, OperatorState), type(s).__name__
        assert type(s.snapshot()) is type(s) and s.snapshot() is not s


def test_flow_hourly_aggregator(raw_events: list[Event]) -> None:
    k = len(raw_events) // 2
    _, out = drive(HourlyAggregator(config=HourlyConfig(), frame_key=KEY), raw_events[:k], raw_events[k:],
                   lambda step: [*step.records, *step.late],  # as flows/stages.hourly_stage emits
                   restore=lambda b: b.attach_frame_key(KEY))
    assert any(isinstance(r, HourlyFeatures) for r in out)


def test_flow_lazy_rhythm(hourly: list[HourlyFeatures]) -> None:
    k = len(hourly) // 2
    b, out = drive(_LazyRhythm(0.1), hourly[:k], hourly[k:])
    assert b.inner is not None and len(out) >= 2


def test_flow_hourly_days(hourly: list[HourlyFeatures]) -> None:
    k = len(hourly) // 2 + 7  # mid-day: the restored buffer holds part of a day
    _, days = drive(_HourlyDays(), hourly[:k], hourly[k:])
    # the day open at the snapshot is emitted whole: its hours from before the cut came from the snapshot
    assert sum(len(d) for d in days) > len(hourly) - k


def test_flow_survey_state() -> None:
    s = surveys()
    _, out = drive(_SurveyState(), s[:5], s[5:])
    assert out and all(e.source == "survey" for e in out)


def test_flow_participant_scoring() -> None:
    scorer = load_scorer(load_settings())
    days = day_errors(scorer, 16, seed=2)
    a = _ParticipantScoring(scorer, CalibrationConfig(calibration_days=5, threshold_days=3), {})
    logic = OperatorLogic(a)
    logic.on_batch(days[:7])
    b = roundtrip(logic)
    assert b.space is None  # dropped on pickling; the flow's build() sets it from the loaded model
    b.space = scorer.error_space()
    out = [list(OperatorLogic(s).on_batch(days[7:])[0]) for s in (a, b)]
    assert canon(out[0]) == canon(out[1])
    scores = [x for x in out[0] if isinstance(x, ScoreDaily)]
    assert len(scores) == 9 and scores[-1].threshold is not None



def test_kafka_source_partition_state() -> None:
    # The source's recovery state is its next offset per topic; a partition built from the
    # restored snapshot resumes at the same offsets (topics it no longer reads are dropped).
    from phenoflow.connectors.kafka.source import _GroupPartition

    config: dict[str, object] = {"bootstrap.servers": "127.0.0.1:9", "group.id": "unused"}  # never contacted
    a = _GroupPartition(config, ["t.a", "t.b"], 0, {"t.a": 5, "gone": 3}, 10, tail=False)
    try:
        snap = a.snapshot()
        assert snap == {"t.a": 5, "t.b": 0}
        restored = pickle.loads(pickle.dumps(snap))
        b = _GroupPartition(config, ["t.a", "t.b"], 0, restored, 10, tail=False)
        try:
            assert b.snapshot() == snap
            a._offsets["t.a"] = 9  # a later read does not change an earlier snapshot
            assert snap["t.a"] == 5
        finally:
            b.close()
    finally:
        a.close()
