"""Passive step-ups (the counterpart of the WHO-5 survey step-up).

Passive step-up: a participant's risk tier, from the share of anomalous days in
a trailing calendar window, rising (low_risk → elevated_risk → high_risk).
Tier names carry a ``_risk`` suffix so they cannot be
confused with the WHO-5 levels, where ``high`` is good.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import date

from phenoflow.core.contract import StepUpEvent
from phenoflow.core.event_ids import stepup_event_id

__all__ = ["RISK_TIERS", "PassiveRisk", "RiskTierConfig"]

#: Passive risk tiers from best to worst; a step-up moves toward the end.
RISK_TIERS: tuple[str, ...] = ("low_risk", "elevated_risk", "high_risk")


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

    >>> risk = PassiveRisk()                  # tiers at 25 % and 50 % of a 14-day window
    >>> days = [f"2024-06-{d:02d}" for d in range(1, 15)]
    >>> [(e.to_level, e.evidence["anomalous_days"]) for d in days[:7]  # 7 anomalous days in a row
    ...  if (e := risk.update("p1", d, True)) is not None]
    [('elevated_risk', 4), ('high_risk', 7)]
    """

    __slots__ = ("config", "tier", "_days")

    def __init__(self, config: RiskTierConfig | None = None) -> None:
        self.config = config or RiskTierConfig()
        self.tier = 0
        # (ordinal day, anomalous) of the scored days in the window; ≤ window_days long.
        self._days: deque[tuple[int, bool]] = deque()

    @property
    def tier_name(self) -> str:
        """Name of the current risk tier."""
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
