"""Bounded in-memory view of the output topics for the clinician dashboard (pure Python + numpy).

Fed with decoded contract values (``apply(topic, value)``), it keeps per participant
only what the pages show, for the last ``days`` local days (default 90) before the
participant's newest day:

* per local day: score, threshold τ, calibrating; sums of the 31 hourly features over
  the hours *with data* (``filled`` < 1) and their count, and per sensor group the hours
  in which the group was observed;
* anomaly and step-up events (deduplicated by ``event_id``: the topics are at-least-once)
  and their acknowledgements from ``events.ack``;
* the newest rhythm vector and a running mean of the earlier ones, to give an
  anomaly's contributors a direction (see :mod:`.words`).

Sensor coverage: ``features.hourly`` records carry ``observed`` (the sensor groups
measured in the hour, docs/hourly.md), and the view counts those. Records written
before that field existed have no ``observed``; for them the view derives it: nothing is observed in an hour
with ``filled`` = 1 (no event of any sensor), and otherwise a group counts as observed
when one of its features is non-zero (unobserved features are exactly 0 in a type-1
hour, docs/hourly.md). That is exact for the accelerometer and the ambient sensors; for
event sensors (calls, SMS, screen) a quiet hour then looks unobserved. ``any`` (an hour with data) is always exact.

No Kafka import: the follower thread decodes messages and calls :meth:`DashboardView.apply`;
the web app reads under the same lock.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import numpy as np

from phenoflow.core.contract import AckEvent, AnomalyEvent, HourlyFeatures, RhythmDaily, ScoreDaily, StepUpEvent
from phenoflow.core.timebase import local_day_iso
from phenoflow.dashboard import words
from phenoflow.operators.hourly.schema import FEATURE_GROUPS, FEATURE_NAMES

__all__ = ["COVERAGE_GROUPS", "MIN_HOURS_PER_DAY", "TRAJECTORIES", "DashboardView"]

_FI = {name: i for i, name in enumerate(FEATURE_NAMES)}
#: Sensor groups the coverage is reported for ("any" = an hour with data of any sensor).
COVERAGE_GROUPS: tuple[str, ...] = ("any",) + tuple(g for g in FEATURE_GROUPS if g != "sleep")
_GI = {g: i for i, g in enumerate(COVERAGE_GROUPS)}
#: A day with fewer hours of data than this has no behaviour values (a gap, not a zero).
MIN_HOURS_PER_DAY = 12

#: Behaviour trajectories of the participant page: key → (label, unit, function of the day means).
TRAJECTORIES: dict[str, tuple[str, str]] = {
    "sleep": ("Sleep duration", "hours"),
    "activity": ("Physical activity (movement intensity)", "m/s² SD"),
    "distance": ("Distance travelled", "km / day"),
    "home": ("Time at home", "hours / day"),
    "screen": ("Screen time", "hours / day"),
    "social": ("Calls and text messages", "per day"),
}


def _day_start(day: str) -> float:
    return datetime.combine(date.fromisoformat(day), datetime.min.time(), timezone.utc).timestamp()


@dataclass
class _Day:
    score: float | None = None
    threshold: float | None = None
    calibrating: bool | None = None
    sums: np.ndarray | None = None  # feature sums over hours with data
    data_hours: int = 0
    hours: int = 0
    seen: int = 0  # bitmask of hour slots already counted (dedup of re-sent records)
    groups: np.ndarray | None = None  # observed hours per COVERAGE_GROUPS entry

    def means(self) -> np.ndarray | None:
        if self.sums is None or self.data_hours < MIN_HOURS_PER_DAY:
            return None
        return self.sums / self.data_hours


@dataclass
class _Person:
    days: dict[str, _Day] = field(default_factory=dict)
    alerts: dict[str, dict] = field(default_factory=dict)  # event_id → alert
    last_data_ts: float | None = None  # end of the newest hour with data
    newest_day: str | None = None
    model: str | None = None
    # Rhythm direction support: newest vector, its day, mean of the earlier days.
    rhythm_day: str | None = None
    rhythm_vec: np.ndarray | None = None
    rhythm_base: np.ndarray | None = None
    rhythm_sum: np.ndarray | None = None
    rhythm_cnt: np.ndarray | None = None
    pending: dict[str, list[str]] = field(default_factory=dict)  # day → anomaly ids awaiting that day's rhythm


class DashboardView:
    """Thread-safe bounded state behind every dashboard page.

    ``apply`` returns a list of notifications (dicts with ``kind`` "alert" or "ack")
    for the live stream; feature/score records return none.
    """

    def __init__(self, days: int = 90, stale_hours: float = 24.0) -> None:
        if days < 1:
            raise ValueError("days must be ≥ 1")
        self.days = days
        self.stale_hours = stale_hours
        self.people: dict[str, _Person] = {}
        self.data_now: float = 0.0  # newest event time seen (UTC epoch s)
        self.lock = threading.RLock()
        self._acks: dict[str, dict] = {}  # event_id → newest ack
        self._orphan_acks: deque[str] = deque(maxlen=10_000)
        self._rhythm_names: dict[str, int] = {}

    # --- feeding ---------------------------------------------------------------------

    def _person(self, pid: str) -> _Person:
        p = self.people.get(pid)
        if p is None:
            p = self.people[pid] = _Person()
        return p

    def _day(self, p: _Person, day: str) -> _Day | None:
        """The day's record, or None when it is older than the retained window."""
        if p.newest_day is None or day > p.newest_day:
            p.newest_day = day
            cutoff = (date.fromisoformat(day) - timedelta(days=self.days - 1)).isoformat()
            for old in [d for d in p.days if d < cutoff]:
                del p.days[old]
            for eid in [e for e, a in p.alerts.items() if a["day"] < cutoff]:
                del p.alerts[eid]
        elif day < (date.fromisoformat(p.newest_day) - timedelta(days=self.days - 1)).isoformat():
            return None
        d = p.days.get(day)
        if d is None:
            d = p.days[day] = _Day()
        return d

    def apply(self, topic: str, value: object, observed: list[str] | None = None) -> list[dict]:
        """Fold one decoded contract value of short topic ``topic`` into the view.

        ``value`` is what :func:`~phenoflow.core.contract.decode` gives for ``topic``;
        the isinstance checks only name that type.
        """
        with self.lock:
            if topic == "features.hourly" and isinstance(value, HourlyFeatures):
                self._hourly(value, observed)
            elif topic == "scores.daily" and isinstance(value, ScoreDaily):
                self._score(value)
            elif topic == "rhythm.daily" and isinstance(value, RhythmDaily):
                self._rhythm(value)
            elif topic in ("events.anomaly", "events.stepup") and isinstance(value, (AnomalyEvent, StepUpEvent)):
                return self._alert(topic, value)
            elif topic == "events.ack" and isinstance(value, AckEvent):
                return self._ack(value)
            return []

    def _hourly(self, v: HourlyFeatures, observed: list[str] | None) -> None:
        p = self._person(v.participant)
        day = local_day_iso(v.hour_start, v.utc_offset_min)
        d = self._day(p, day)
        self.data_now = max(self.data_now, v.hour_start + 3600)
        if d is None:
            return
        slot = int((v.hour_start + 60 * (v.utc_offset_min or 0) - _day_start(day)) // 3600) + 4
        bit = 1 << max(0, min(slot, 40))
        if d.seen & bit:
            return  # a re-sent hour (at-least-once delivery)
        d.seen |= bit
        d.hours += 1
        if d.groups is None:
            d.groups = np.zeros(len(COVERAGE_GROUPS), dtype=np.int16)
        if v.filled >= 1.0:
            return  # type-2 hour: every value imputed, nothing observed
        vals = np.array([v.features.get(n) or 0.0 for n in FEATURE_NAMES], dtype=np.float64)
        if d.sums is None:
            d.sums = np.zeros(len(FEATURE_NAMES))
        d.sums += vals
        d.data_hours += 1
        d.groups[0] += 1
        if observed is None:
            observed = [g for g, names in FEATURE_GROUPS.items() if any(vals[_FI[n]] != 0 for n in names)]
        for g in observed:
            if g in _GI:
                d.groups[_GI[g]] += 1
        end = v.hour_start + 3600
        p.last_data_ts = end if p.last_data_ts is None else max(p.last_data_ts, end)

    def _score(self, v: ScoreDaily) -> None:
        p = self._person(v.participant)
        d = self._day(p, v.day)
        self.data_now = max(self.data_now, _day_start(v.day) + 86_400)
        p.model = v.model
        if d is not None:
            d.score, d.threshold, d.calibrating = v.score, v.threshold, v.calibrating

    def _rhythm(self, v: RhythmDaily) -> None:
        p = self._person(v.participant)
        if p.rhythm_day is not None and v.day <= p.rhythm_day:
            return  # re-sent or out of order: the running mean must not count a day twice
        names = self._rhythm_names
        for k in v.features:
            if k not in names:
                names[k] = len(names)
        vec = np.full(len(names), np.nan, dtype=np.float32)
        for k, x in v.features.items():
            if x is not None:
                vec[names[k]] = x
        if p.rhythm_vec is not None:  # fold the previous newest day into the running mean
            n = len(names)
            s = np.zeros(n) if p.rhythm_sum is None else np.pad(p.rhythm_sum, (0, n - p.rhythm_sum.size))
            c = np.zeros(n, np.int32) if p.rhythm_cnt is None else np.pad(p.rhythm_cnt, (0, n - p.rhythm_cnt.size))
            prev = np.pad(p.rhythm_vec, (0, n - p.rhythm_vec.size), constant_values=np.nan)
            ok = ~np.isnan(prev)
            s[ok] += prev[ok]
            c[ok] += 1
            p.rhythm_sum, p.rhythm_cnt = s, c
        p.rhythm_day, p.rhythm_vec = v.day, vec
        for eid in p.pending.pop(v.day, []):
            if eid in p.alerts:
                self._resolve_rhythm(p, p.alerts[eid])
        for day in [d for d in p.pending if d < v.day]:  # that rhythm day will not come any more
            del p.pending[day]

    def _resolve_rhythm(self, p: _Person, alert: dict) -> None:
        """Give rhythm contributors their value that day and the mean of the earlier days."""
        if p.rhythm_vec is None or p.rhythm_sum is None or p.rhythm_cnt is None or p.rhythm_day != alert["day"]:
            return
        for c in alert["contributors"]:
            i = self._rhythm_names.get(c["feature"])
            if i is None or i >= p.rhythm_vec.size:
                continue
            x = float(p.rhythm_vec[i])
            n = int(p.rhythm_cnt[i]) if i < p.rhythm_cnt.size else 0
            if np.isnan(x) or n == 0:
                continue
            c["value"], c["baseline"] = x, float(p.rhythm_sum[i] / n)
            c["words"] = words.describe(c["feature"], c["value"] - c["baseline"])

    def _alert(self, topic: str, v: AnomalyEvent | StepUpEvent) -> list[dict]:
        p = self._person(v.participant)
        if v.event_id in p.alerts:
            return []  # re-sent after a recovery: same event_id, same event
        kind = "anomaly" if topic == "events.anomaly" else "stepup"
        if v.day is not None:
            day = v.day
        elif v.ts is not None:
            day = local_day_iso(v.ts, v.utc_offset_min)
        else:  # decode() dead-letters a step-up with neither, so only a hand-built value gets here
            raise ValueError(f"{topic} event {v.event_id!r} has neither day nor ts")
        if self._day(p, day) is None:
            return []
        alert: dict = {"event_id": v.event_id, "participant": v.participant, "kind": kind, "day": day,
                       "ts": getattr(v, "ts", None)}
        if isinstance(v, AnomalyEvent):  # kind == "anomaly": the topic's decoder gives this type
            alert.update(score=v.score, threshold=v.threshold, model=v.model, contributors=[
                {"feature": c.feature, "z": c.z, "words": words.describe(c.feature)} for c in v.contributors])
            if any("." in c["feature"] for c in alert["contributors"]):
                if p.rhythm_day == day:
                    self._resolve_rhythm(p, alert)
                else:
                    p.pending.setdefault(day, []).append(v.event_id)
        else:
            alert.update(from_level=v.from_level, to_level=v.to_level, source=v.source,
                         evidence={k: x for k, x in v.evidence.items() if isinstance(x, (int, float, str, bool))})
        alert["ack"] = self._acks.get(v.event_id)
        p.alerts[v.event_id] = alert
        return [{"kind": "alert", "alert": alert}]

    def _ack(self, v: AckEvent) -> list[dict]:
        ack = {"event_id": v.event_id, "participant": v.participant, "ts": v.ts, "by": v.by, "note": v.note}
        prev = self._acks.get(v.event_id)
        if prev is not None and prev["ts"] >= v.ts:
            return []
        p = self.people.get(v.participant)
        alert = p.alerts.get(v.event_id) if p is not None else None
        if alert is None:  # acknowledged event not (yet) seen: keep a bounded number
            if len(self._orphan_acks) == self._orphan_acks.maxlen:
                self._acks.pop(self._orphan_acks[0], None)
            self._orphan_acks.append(v.event_id)
        else:
            alert["ack"] = ack
        self._acks[v.event_id] = ack
        return [{"kind": "ack", "ack": ack}]

    # --- reading ---------------------------------------------------------------------

    def now(self, clock: str = "data", wall: float | None = None) -> float:
        """Reference time for "last N days" and "time since data": the newest event time
        seen (``data``, for replays) or the wall clock (``wall``, for live use)."""
        if clock == "wall":
            return float(wall if wall is not None else datetime.now(timezone.utc).timestamp())
        return self.data_now

    def cohort(self, now: float) -> list[dict]:
        """One row per participant, newest alert first (then by participant id)."""
        # The instant just before `now`: a replay's clock ends exactly at midnight, and that day is not begun.
        today = datetime.fromtimestamp(now - 1e-3, timezone.utc).date()
        d7, d30 = (today - timedelta(days=6)).isoformat(), (today - timedelta(days=29)).isoformat()
        rows = []
        with self.lock:
            for pid, p in self.people.items():
                scored = [(d, x) for d, x in p.days.items() if x.score is not None or x.calibrating is not None]
                last_day, last = max(scored, key=lambda t: t[0]) if scored else (None, None)
                cov_days = [x for d, x in p.days.items() if d >= d7]
                cov = np.zeros(len(COVERAGE_GROUPS))
                for x in cov_days:
                    if x.groups is not None:
                        cov += x.groups
                alerts = list(p.alerts.values())
                newest = max((a["day"] for a in alerts), default=None)
                since = None if p.last_data_ts is None else max(0.0, now - p.last_data_ts) / 3600
                rows.append({
                    "participant": pid,
                    "last_day": last_day,
                    "state": "no score yet" if last is None else ("calibrating" if last.calibrating else "scored"),
                    "threshold": None if last is None else last.threshold,
                    "last_score": None if last is None else last.score,
                    "anomalies_7": sum(a["kind"] == "anomaly" and a["day"] >= d7 for a in alerts),
                    "anomalies_30": sum(a["kind"] == "anomaly" and a["day"] >= d30 for a in alerts),
                    "stepups_7": sum(a["kind"] == "stepup" and a["day"] >= d7 for a in alerts),
                    "stepups_30": sum(a["kind"] == "stepup" and a["day"] >= d30 for a in alerts),
                    "unacked": sum(a["ack"] is None for a in alerts),
                    "newest_alert": newest,
                    "coverage": {g: float(cov[i] / (7 * 24)) for i, g in enumerate(COVERAGE_GROUPS)},
                    "hours_since_data": since,
                    "stale": since is None or since > self.stale_hours,
                })
        rows.sort(key=lambda r: r["participant"])
        rows.sort(key=lambda r: r["newest_alert"] or "", reverse=True)
        return rows

    def participant(self, pid: str) -> dict | None:
        """Daily series (score, τ, calibrating, trajectories) and the participant's alerts."""
        with self.lock:
            p = self.people.get(pid)
            if p is None:
                return None
            days = sorted(p.days)
            traj: dict[str, list[float | None]] = {k: [] for k in TRAJECTORIES}
            for d in days:
                m = p.days[d].means()
                for k, val in _trajectories(m).items():
                    traj[k].append(val)
            alerts = sorted(p.alerts.values(), key=lambda a: (a["day"], a["event_id"]), reverse=True)
            out_alerts = []
            for a in alerts:
                a = {**a}
                if a["kind"] == "anomaly":
                    a["contributors"] = [self._hourly_direction(p, a["day"], c) for c in a["contributors"]]
                out_alerts.append(a)
            return {
                "participant": pid,
                "model": p.model,
                "days": days,
                "score": [p.days[d].score for d in days],
                "threshold": [p.days[d].threshold for d in days],
                "calibrating": [bool(p.days[d].calibrating) for d in days],
                "trajectories": traj,
                "alerts": out_alerts,
            }

    def _hourly_direction(self, p: _Person, day: str, c: dict) -> dict:
        """Hourly-model contributor: the day's mean of the feature vs the median of the earlier days."""
        i = _FI.get(c["feature"])
        if i is None or "value" in c:
            return c
        x = p.days.get(day)
        m = x.means() if x is not None else None
        earlier = [q[i] for d, y in p.days.items() if d < day and (q := y.means()) is not None]
        if m is None or not earlier:
            return c
        base = float(np.median(earlier))
        return {**c, "value": float(m[i]), "baseline": base, "words": words.describe(c["feature"], m[i] - base)}

    def day_detail(self, pid: str, day: str) -> dict | None:
        """The raw numbers behind a day: mean of every hourly feature over its hours with data."""
        with self.lock:
            p = self.people.get(pid)
            x = p.days.get(day) if p is not None else None
            if x is None:
                return None
            m = x.means()
            return {
                "participant": pid, "day": day, "score": x.score, "threshold": x.threshold,
                "calibrating": x.calibrating, "hours": x.hours, "data_hours": x.data_hours,
                "hourly_means": None if m is None else {n: float(m[i]) for i, n in enumerate(FEATURE_NAMES)},
                "alerts": [a for a in (self.participant(pid) or {}).get("alerts", []) if a["day"] == day],
            }

    def inbox(self, kind: str | None = None, participant: str | None = None, limit: int = 500) -> list[dict]:
        """Alerts newest first, optionally only one kind ("anomaly"/"stepup") or participant."""
        with self.lock:
            out = [(p, a) for pid, p in self.people.items() if participant in (None, pid)
                   for a in p.alerts.values() if kind in (None, a["kind"])]
            out.sort(key=lambda pa: (pa[1]["day"], pa[1]["ts"] or 0.0, pa[1]["event_id"]), reverse=True)
            return [a if a["kind"] != "anomaly" else
                    {**a, "contributors": [self._hourly_direction(p, a["day"], c) for c in a["contributors"]]}
                    for p, a in out[:limit]]


def _trajectories(m: np.ndarray | None) -> dict[str, float | None]:
    """Daily behaviour values from the day's per-hour feature means (None = not enough data)."""
    if m is None:
        return {k: None for k in TRAJECTORIES}

    def f(name: str) -> float:
        return float(m[_FI[name]])

    sleep = f("sleep_duration_h")
    return {
        "sleep": sleep if sleep > 0 else None,  # 0 = no sleep episode detected (imputed), not 0 h slept
        "activity": f("accel_sd"),
        "distance": f("distance_m") * 24 / 1000,
        "home": f("place_primary_s") * 24 / 3600,
        "screen": f("screen_on_s") * 24 / 3600,
        "social": (f("call_n") + f("sms_n")) * 24,
    }
