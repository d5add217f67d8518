"""Step-up (deterioration) logic: WHO-5 survey levels and passive risk tiers.

Survey step-up (Buda et al., Front. Digit. Health 2022): the WHO-5 raw score
(0–25) is multiplied by 4 to a 0–100 percentage. Levels: ``low`` [0, 28),
``regular`` [28, 50), ``high`` [50, 100]. A higher WHO-5 means BETTER well-being,
so deterioration runs high → regular → low; a step-up is a move to a worse level
between two consecutive assessments of a participant (high→regular,
regular→low, high→low). Raw scores are integers, so the boundaries in raw units
are 7 (=28 %, regular) vs 6 (=24 %, low) and 13 (=52 %, high) vs 12 (=48 %, regular).

Passive step-up: a participant's risk tier, from the share of anomalous days in
a trailing calendar window, rising (low_risk → elevated_risk → high_risk).
Tier names carry a ``_risk`` suffix so they cannot be
confused with the WHO-5 levels, where ``high`` is good.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import date

from phenoflow.contract import StepUpEvent, Survey
from phenoflow.operators.event_ids import stepup_event_id

#: WHO-5 levels from worst to best; a step-up moves toward index 0.
WHO5_LEVELS: tuple[str, ...] = ("low", "regular", "high")
#: Lower bounds (percent, inclusive) of ``regular`` and ``high``.
WHO5_REGULAR_FROM = 28
WHO5_HIGH_FROM = 50

#: Passive risk tiers from best to worst; a step-up moves toward the end.
RISK_TIERS: tuple[str, ...] = ("low_risk", "elevated_risk", "high_risk")


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


@dataclass(frozen=True, slots=True)
class RiskTierConfig:
    """Passive risk tiers from the anomalous-day rate r = k / ``window_days``.

    k counts the anomalous days among the ``window_days`` calendar days ending on
    the scored day; days without a score (calibrating, no data) count as not
    anomalous, so a short history cannot reach a tier on one or two anomalies.

    Defaults, reasoned from the default anomaly threshold (the 0.9 quantile of
    healthy calibration scores, so ≈ 10 % of healthy days are anomalous): with 14
    scored days and p = 0.1, P(rate ≥ 0.25, i.e. ≥ 4 of 14) ≈ 4.4 % and
    P(rate ≥ 0.5) ≈ 0.02 % — rare on healthy data — while the seed's near-relapse
    sensitivity (0.25, Adler et al. 2020) reaches ``elevated`` about half the time.

    - ``elevated``: r ≥ ``elevated`` (0.25); ``high``: r ≥ ``high`` (0.5).
    - ``window_days``: trailing calendar window ending on the scored day (14).
    - ``hysteresis``: a tier is left downward only when r < bound − hysteresis
      (0.05), so a rate hovering at a bound does not emit a step-up every few days.
    """

    elevated: float = 0.25
    high: float = 0.5
    window_days: int = 14
    hysteresis: float = 0.05

    def __post_init__(self) -> None:
        if not 0 < self.elevated < self.high <= 1:
            raise ValueError("risk tiers need 0 < elevated < high <= 1")
        if self.window_days < 1:
            raise ValueError("risk tiers need window_days >= 1")
        if not 0 <= self.hysteresis < self.elevated:
            raise ValueError("risk tiers need 0 <= hysteresis < elevated")


class PassiveRisk:
    """Per-participant passive risk tier over a trailing window of scored days.

    ``update(day, anomalous)`` is called once per scored local day (in day order);
    it returns a :class:`StepUpEvent` (source ``passive``, ``day``) when the tier
    rises, with evidence ``{anomalous_days, window_days, rate, scored_days}``.
    """

    __slots__ = ("config", "tier", "_days")

    def __init__(self, config: RiskTierConfig | None = None) -> None:
        self.config = config or RiskTierConfig()
        self.tier = 0
        # (ordinal day, anomalous) of the scored days in the window; ≤ window_days long.
        self._days: deque[tuple[int, bool]] = deque()

    @property
    def tier_name(self) -> str:
        return RISK_TIERS[self.tier]

    def _tier_for(self, rate: float) -> int:
        """Tier for ``rate``: rising uses the bounds, falling the bounds − hysteresis."""
        c = self.config
        up = 2 if rate >= c.high else 1 if rate >= c.elevated else 0
        if up >= self.tier:
            return up
        h = c.hysteresis
        down = 2 if rate >= c.high - h else 1 if rate >= c.elevated - h else 0
        return min(self.tier, down)

    def update(
        self,
        participant: str,
        day: str,
        anomalous: bool,
        *,
        model: str | None = None,
        utc_offset_min: int | None = None,
    ) -> StepUpEvent | None:
        """Record the decision for ``day``; return a passive step-up if the tier rose."""
        d = date.fromisoformat(day).toordinal()
        if self._days and d <= self._days[-1][0]:
            return None  # replayed or out-of-order day: already counted
        self._days.append((d, bool(anomalous)))
        first = d - self.config.window_days + 1
        while self._days and self._days[0][0] < first:
            self._days.popleft()
        n = len(self._days)
        k = sum(1 for _, a in self._days if a)
        w = self.config.window_days
        rate = k / w
        new = self._tier_for(rate)
        old, self.tier = self.tier, new
        if new <= old:
            return None
        before, after = RISK_TIERS[old], RISK_TIERS[new]
        return StepUpEvent(
            participant=participant,
            utc_offset_min=utc_offset_min,
            event_id=stepup_event_id(participant, "passive", day, before, after, model),
            from_level=before,
            to_level=after,
            source="passive",
            evidence={"anomalous_days": k, "window_days": w, "rate": rate, "scored_days": n},
            day=day,
        )
