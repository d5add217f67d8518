"""WHO-5 levels and survey step-ups (Buda et al. 2022); passive risk-tier step-ups."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from phenoflow.core.contract import Survey, decode, encode
from phenoflow.core.event_ids import stepup_event_id
from phenoflow.operators.stepup.passive import PassiveRisk, RiskTierConfig
from phenoflow.operators.stepup.who5 import SurveyStepUp, who5_level, who5_percent

T0 = 1_700_000_000.0


@pytest.mark.parametrize(
    ("raw", "percent", "level"),
    [
        (0, 0, "low"),
        (6, 24, "low"),  # 24 < 28
        (7, 28, "regular"),  # boundary 28 is regular (27 would be low)
        (12, 48, "regular"),  # 48 < 50
        (13, 52, "high"),  # 12.5 ×4 = 50 is not reachable with integer raw scores
        (25, 100, "high"),
    ],
)
def test_who5_levels_at_boundaries(raw: int, percent: int, level: str) -> None:
    assert who5_percent(raw) == percent
    assert who5_level(raw) == level


def test_who5_rejects_out_of_range() -> None:
    with pytest.raises(ValueError):
        who5_percent(26)


def survey(raw: int, ts: float, pid: str = "p1") -> Survey:
    return Survey(participant=pid, utc_offset_min=120, ts=ts, instrument="who5", score=raw)


# (previous raw, next raw, expected (from, to) or None). Worse = toward low:
# higher WHO-5 is better well-being.
TRANSITIONS = [
    (13, 12, ("high", "regular")),
    (7, 6, ("regular", "low")),
    (25, 0, ("high", "low")),
    (13, 7, ("high", "regular")),
    (12, 13, None),  # regular → high: improvement
    (6, 7, None),  # low → regular: improvement
    (0, 25, None),
    (20, 13, None),  # high → high, even if the score drops
    (12, 7, None),  # regular → regular
    (6, 0, None),  # low → low
]


@pytest.mark.parametrize(("prev", "nxt", "expected"), TRANSITIONS)
def test_survey_stepup_transitions(prev: int, nxt: int, expected: tuple[str, str] | None) -> None:
    state = SurveyStepUp()
    assert state.update(survey(prev, T0)) is None  # the first assessment has no predecessor
    event = state.update(survey(nxt, T0 + 86_400))
    if expected is None:
        assert event is None
        return
    assert event is not None
    assert (event.from_level, event.to_level) == expected
    assert event.source == "survey" and event.ts == T0 + 86_400 and event.day is None
    assert event.participant == "p1" and event.utc_offset_min == 120
    assert event.evidence["prev_score"] == 4 * prev and event.evidence["score"] == 4 * nxt
    assert event.evidence["prev_ts"] == T0
    assert event.event_id == stepup_event_id("p1", "survey", T0 + 86_400, *expected)
    assert decode("events.stepup", b"p1", encode(event)) == event  # meets the contract


def test_survey_stepup_compares_consecutive_assessments_only() -> None:
    state = SurveyStepUp()
    events = [state.update(survey(raw, T0 + i * 7 * 86_400)) for i, raw in enumerate([20, 10, 10, 3, 15, 4])]
    got = [(e.from_level, e.to_level) if e else None for e in events]
    assert got == [None, ("high", "regular"), None, ("regular", "low"), None, ("high", "low")]


def test_survey_duplicates_and_late_arrivals_are_ignored() -> None:
    state = SurveyStepUp()
    assert state.update(survey(20, T0)) is None
    first = state.update(survey(3, T0 + 100))
    assert first is not None
    assert state.update(survey(3, T0 + 100)) is None  # replayed duplicate
    assert state.update(survey(25, T0 + 50)) is None  # older than the last one
    assert state.prev_raw == 3  # the late one did not overwrite the state


def days(n: int, start: date = date(2024, 3, 1)) -> list[str]:
    return [(start + timedelta(days=i)).isoformat() for i in range(n)]


def run_passive(flags: list[bool], config: RiskTierConfig | None = None) -> list[tuple[str, str, str] | None]:
    risk = PassiveRisk(config)
    out = []
    for day, flag in zip(days(len(flags)), flags, strict=True):
        e = risk.update("p1", day, flag, model="m@1")
        out.append((day, e.from_level, e.to_level) if e else None)
    return out


def test_passive_tier_rises_at_the_configured_rates() -> None:
    # window 14: 3 anomalies = 0.214 (low), 4 = 0.286 (elevated), 7 = 0.5 (high).
    flags = [False] * 10 + [True] * 3
    assert all(e is None for e in run_passive(flags))
    ev = run_passive(flags + [True])
    assert ev[-1] == (days(14)[-1], "low_risk", "elevated_risk")
    ev = run_passive(flags + [True] * 4)
    assert [e for e in ev if e] == [
        (days(14)[13], "low_risk", "elevated_risk"),
        (days(17)[16], "elevated_risk", "high_risk"),
    ]


def test_passive_evidence_and_direct_jump() -> None:
    risk = PassiveRisk(RiskTierConfig(elevated=0.2, high=0.4, window_days=5))
    e1 = risk.update("p9", "2024-03-01", True, model="m@1", utc_offset_min=-300)
    assert e1 is not None and (e1.from_level, e1.to_level) == ("low_risk", "elevated_risk")
    assert e1.evidence == {"anomalous_days": 1, "window_days": 5, "rate": 0.2, "scored_days": 1}
    assert e1.source == "passive" and e1.day == "2024-03-01" and e1.ts is None
    assert e1.utc_offset_min == -300
    assert e1.event_id == stepup_event_id("p9", "passive", "2024-03-01", "low_risk", "elevated_risk", "m@1")
    assert decode("events.stepup", b"p9", encode(e1)) == e1  # meets the contract
    e2 = risk.update("p9", "2024-03-02", True, model="m@1")
    assert e2 is not None and (e2.from_level, e2.to_level) == ("elevated_risk", "high_risk")
    # one anomalous day crossing both bounds at once: low → high directly
    jump = PassiveRisk(RiskTierConfig(elevated=0.1, high=0.2, window_days=5, hysteresis=0.0))
    assert jump.update("p9", "2024-03-01", False) is None
    e3 = jump.update("p9", "2024-03-02", True)
    assert e3 is not None and (e3.from_level, e3.to_level) == ("low_risk", "high_risk")


def test_passive_hysteresis_and_window_expiry() -> None:
    cfg = RiskTierConfig(elevated=0.25, high=0.5, window_days=14, hysteresis=0.05)
    risk = PassiveRisk(cfg)
    ds = days(60)
    fired = []
    flags = [True] * 4 + [False] * 56  # 4/14 → elevated on day 4
    for d, f in zip(ds, flags, strict=True):
        e = risk.update("p1", d, f)
        fired.append(e)
        if d == ds[3]:
            assert risk.tier_name == "elevated_risk"
    assert sum(e is not None for e in fired) == 1
    assert risk.tier_name == "low_risk"  # the 4 anomalies left the 14-day window
    # hysteresis: at rate 3/14 = 0.214 ≥ 0.25 − 0.05 the elevated tier is kept
    risk = PassiveRisk(cfg)
    for d, f in zip(days(14), [True] * 4 + [False] * 10, strict=True):
        risk.update("p1", d, f)
    assert risk.tier_name == "elevated_risk"
    risk.update("p1", days(15)[-1], False)  # day 1 leaves: 3/14
    assert risk.tier_name == "elevated_risk"
    risk.update("p1", days(16)[-1], False)  # 2/14 = 0.143 < 0.2
    assert risk.tier_name == "low_risk"
    # back to 4/14 → a second, distinct step-up
    e = None
    for d in days(20)[16:]:
        e = risk.update("p1", d, True) or e
    assert e is not None and e.to_level == "elevated_risk"


def test_passive_ignores_replayed_days() -> None:
    risk = PassiveRisk(RiskTierConfig(elevated=0.2, high=0.4, window_days=5))
    assert risk.update("p1", "2024-03-02", True) is not None
    assert risk.update("p1", "2024-03-02", True) is None
    assert risk.update("p1", "2024-03-01", True) is None
    assert len(risk._days) == 1
