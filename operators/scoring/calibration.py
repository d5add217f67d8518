"""Per-participant calibration of reconstruction errors: Mahalanobis score, threshold, events.

Adler et al. (JMIR mHealth 2020): the absolute reconstruction error vector e of
a participant-day is scored by the Mahalanobis distance
s = √((e−μ)ᵀ Σ⁻¹ (e−μ)) against that participant's error distribution (μ, Σ) on
held-out healthy data; hourly scores are averaged per day; a per-participant
threshold τ marks a day anomalous (s > τ).

Choices (defaults in :class:`CalibrationConfig`; measurements in models/README.md):

- Warm-up: the first ``warmup_days`` calendar days (default 0) are neither
  learned nor scored. Days whose rhythm windows reach back before the first data
  (partly filled) deviate a little more from the participant's later errors;
  the ``min_observed`` gate already drops the first week, and a full 13-day
  warm-up cost more near-relapse days than it gained (models/README.md).
- Calibration: (1) the next ``calibration_days`` (14) scoreable days fit (μ, Σ),
  unscored; (2) the next ``threshold_days`` (14) are scored against that fit and
  set τ. Until then days carry ``calibrating=True`` and never raise an event.
- Error groups: errors are averaged within the model's error groups first
  (rhythm: one per modality; hourly: one per feature). With one group per
  statistic (~125), rare-event statistics got near-zero fit SDs and later z² in
  the hundreds, and held-out separation was worse at equal false positives.
- Σ = D·R·D: group errors standardised by their calibration SD, correlation
  shrunk toward the identity with the Ledoit–Wolf weight (scikit-learn), so 14
  days give a well-conditioned Σ. A fixed shrinkage can be set.
- τ = κ · the ``quantile`` (0.9, Weibull position) of the threshold days'
  scores. Consecutive days share most of their rhythm windows, so 14 days vary
  less than months do and their 0.9 quantile sits below the long-run one; κ
  (≈ 1.1) corrects that bias. ``phenoflow train`` measures κ by replaying this
  calibration on its training participants' healthy days
  (:func:`estimate_threshold_factor`) and stores it with those settings; other
  settings use κ = 1 unless ``threshold_factor`` is given.
  ``threshold_days=0`` uses the fit days' leave-one-day-out scores. A
  thresholds file ({participant: τ}) overrides τ and skips phase 2.
- Contributors of an anomaly: the ``top_k`` (5) features with the largest
  z = (e − μ_f)/σ_f, per-feature moments of the calibration days' errors.
- Passive step-up: each scored day feeds :class:`~phenoflow.operators.stepup.who5.PassiveRisk`.

Scoring is deterministic: no randomness anywhere after training.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from scipy.linalg import solve_triangular
from sklearn.covariance import ledoit_wolf_shrinkage

from phenoflow.core.contract import AnomalyEvent, Contributor, ScoreDaily, StepUpEvent
from phenoflow.core.errors import UserError
from phenoflow.core.event_ids import anomaly_event_id
from phenoflow.core.state import VERSION_KEY, check_state_version
from phenoflow.operators.scoring.reconstruction import DayErrors, ErrorSpace, lookup_space
from phenoflow.operators.stepup.passive import PassiveRisk, RiskTierConfig

__all__ = [
    "CalibrationConfig", "ScoreOutcome", "ErrorModel", "fit_error_model", "ParticipantScorer",
    "estimate_threshold_factor", "load_thresholds"
]


@dataclass(frozen=True, slots=True)
class CalibrationConfig:
    """Per-participant calibration settings (module docstring gives the reasons)."""

    calibration_days: int = 14
    threshold_days: int = 14
    quantile: float = 0.9
    top_k: int = 5
    min_observed: float = 0.75
    shrinkage: float | None = None  # None → Ledoit–Wolf; else fixed weight toward identity
    min_shrinkage: float = 0.01  # floor under the Ledoit–Wolf weight (degenerate samples)
    sd_floor: float = 1e-3  # relative to the median group SD; guards constant errors
    warmup_days: int = 0  # calendar days from the first day seen: not learned, not scored
    threshold_factor: float | None = None  # κ; None → the model's, if measured for these settings
    risk: RiskTierConfig = field(default_factory=RiskTierConfig)

    def __post_init__(self) -> None:
        if self.calibration_days < 3:
            raise ValueError("calibration_days must be at least 3")
        if self.threshold_days < 0:
            raise ValueError("threshold_days must be >= 0")
        if self.warmup_days < 0:
            raise ValueError("warmup_days must be >= 0")
        if self.threshold_factor is not None and not self.threshold_factor > 0:
            raise ValueError("threshold_factor must be positive")
        if not 0 < self.quantile < 1:
            raise ValueError("quantile must be in (0, 1)")
        if self.shrinkage is not None and not 0 < self.shrinkage <= 1:
            raise ValueError("shrinkage must be in (0, 1]")

    def setup(self) -> dict[str, Any]:
        """The settings that shape τ (κ is only valid for the settings it was measured with)."""
        keys = ("calibration_days", "threshold_days", "quantile", "min_observed", "shrinkage",
                "min_shrinkage", "sd_floor", "warmup_days")
        return {k: getattr(self, k) for k in keys}


@dataclass(frozen=True, slots=True)
class ScoreOutcome:
    """What one participant-day produces: always a score record, maybe events."""

    score: ScoreDaily
    anomaly: AnomalyEvent | None = None
    stepup: StepUpEvent | None = None


class ErrorModel:
    """A fitted error distribution (μ, Σ) with Σ = D R D, R = c·I + b·ZᵀZ (shrunk correlation).

    Stored compactly: with n calibration rows fewer than the k error dimensions
    (rhythm models: 14 days, ~100 groups) R⁻¹ is kept in Woodbury form,
    R⁻¹ = (I − WᵀW)/c with W (n × k), so the state is n·k instead of k² numbers
    and a distance costs n·k multiplications; otherwise R⁻¹ is kept dense.
    """

    __slots__ = ("mu", "inv_sd", "c", "W", "R_inv")

    def __init__(self, mu: np.ndarray, inv_sd: np.ndarray, c: float,
                 W: np.ndarray | None, R_inv: np.ndarray | None) -> None:
        self.mu, self.inv_sd, self.c, self.W, self.R_inv = mu, inv_sd, c, W, R_inv

    def __getstate__(self) -> tuple[Any, ...]:
        return (self.mu, self.inv_sd, self.c, self.W, self.R_inv)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.mu, self.inv_sd, self.c, self.W, self.R_inv = state

    def distances(self, rows: np.ndarray) -> np.ndarray:
        """√((x−μ)ᵀ Σ⁻¹ (x−μ)) for each row x of ``rows`` ((n, k) or (k,))."""
        Y = (np.atleast_2d(rows) - self.mu) * self.inv_sd
        if self.R_inv is not None:
            q = np.einsum("ij,ij->i", Y @ self.R_inv, Y)
        else:
            assert self.W is not None
            WY = Y @ self.W.T
            q = (np.einsum("ij,ij->i", Y, Y) - np.einsum("ij,ij->i", WY, WY)) / self.c
        return np.sqrt(np.maximum(q, 0.0))

    def distance(self, row: np.ndarray) -> float:
        """The distance of one row (k,): the streaming hot path, without batch overhead."""
        y = (row - self.mu) * self.inv_sd
        if self.R_inv is not None:
            q = float(y @ self.R_inv @ y)
        else:
            assert self.W is not None
            wy = self.W @ y
            q = float(y @ y - wy @ wy) / self.c
        return math.sqrt(q) if q > 0.0 else 0.0

    @property
    def precision(self) -> np.ndarray:
        """Σ⁻¹ as a dense k × k matrix (for inspection and tests)."""
        if self.R_inv is not None:
            R_inv = self.R_inv
        else:
            assert self.W is not None
            R_inv = (np.eye(self.mu.size) - self.W.T @ self.W) / self.c
        return R_inv * np.outer(self.inv_sd, self.inv_sd)

    @property
    def covariance(self) -> np.ndarray:
        """Σ as a dense k × k matrix."""
        return np.linalg.inv(self.precision)


def fit_error_model(
    rows: np.ndarray,
    *,
    shrinkage: float | None = None,
    sd_floor: float = 1e-3,
    min_shrinkage: float = 0.01,
) -> ErrorModel:
    """Fit (μ, Σ) to error rows (n × k) with shrinkage toward the diagonal.

    Rows are standardised by their SD (ddof=0, floored at ``sd_floor`` × median SD)
    to Z; their covariance S = ZᵀZ/n is shrunk toward the scaled identity,
    R = (1−a)·S + a·(tr S / k)·I (``sklearn.covariance.shrunk_covariance``), with
    the Ledoit–Wolf weight a (at least ``min_shrinkage``: with two rows every
    standardised column is ±1, Ledoit–Wolf estimates a = 0 and R is singular) or
    a fixed one; Σ = D R D with D = diag(SD).
    """
    rows = np.asarray(rows, dtype=np.float64)
    n, k = rows.shape
    mu = rows.mean(axis=0)
    sd = rows.std(axis=0)
    med = float(np.median(sd)) if sd.size else 0.0
    sd = np.maximum(sd, max(sd_floor * med, 1e-12))
    Z = (rows - mu) / sd
    if shrinkage is None:
        shrinkage = max(float(ledoit_wolf_shrinkage(Z, assume_centered=True)), min_shrinkage)
    trace_mean = float(np.einsum("ij,ij->", Z, Z)) / (n * k)
    if trace_mean <= 0.0:  # identical rows: no spread to learn, fall back to R = I
        trace_mean, shrinkage = 1.0, 1.0
    c = shrinkage * trace_mean
    b = (1.0 - shrinkage) / n
    if n < k:
        # Woodbury: R⁻¹ = (I − (b/c)·Zᵀ(I + (b/c)·ZZᵀ)⁻¹Z)/c = (I − WᵀW)/c, W = √(b/c)·L⁻¹Z
        M = np.eye(n) + (b / c) * (Z @ Z.T)
        L = np.linalg.cholesky(M)
        W = np.sqrt(b / c) * solve_triangular(L, Z, lower=True)
        return ErrorModel(mu, 1.0 / sd, c, W, None)
    R = b * (Z.T @ Z) + c * np.eye(k)
    R_inv = np.linalg.inv(R)
    return ErrorModel(mu, 1.0 / sd, c, None, (R_inv + R_inv.T) / 2.0)


class ParticipantScorer:
    """One participant's calibration state and anomaly decision. Picklable, small.

    ``update(day, errors, utc_offset_min)`` takes the day's absolute
    reconstruction errors — shape (p,) for rhythm models or (hours, p) for hourly
    models (from :meth:`OnnxScorer.day_errors`) — and returns a
    :class:`ScoreOutcome`. ``errors=None`` (or ``observed`` < ``min_observed``)
    marks a day without enough data: score null, nothing learned, no event.

    Phases: warm-up (no score) → fit days (no score) → threshold days (scored,
    ``calibrating=True``) → scoring (see the module docstring). The warm-up counts
    calendar days from the first day this scorer sees. State after calibration:
    the :class:`ErrorModel` (μ and SD per group, R⁻¹: ≈ (n + 2)·k numbers in
    Woodbury form, or k² dense), per-feature error mean/SD (2p, float32), τ and
    the scores it was set on, the passive risk window — about 9 kB for the
    default rhythm model (~800 features, 11 groups). Feature names are not pickled
    (see :class:`ErrorSpace`).

    >>> import numpy as np
    >>> from phenoflow.operators.scoring.reconstruction import ErrorSpace
    >>> names = ("a.m10.w2", "a.l5.w2", "b.m10.w2", "b.l5.w2")
    >>> space = ErrorSpace("doc@1", names, np.array([0, 0, 1, 1]), ("a", "b"))  # two error groups
    >>> scorer = ParticipantScorer("p1", space, CalibrationConfig(calibration_days=5, threshold_days=0))
    >>> rng = np.random.default_rng(0)
    >>> [scorer.update(f"2024-06-0{d}", np.abs(rng.normal(0, 1, 4))).score.calibrating for d in range(1, 6)]
    [True, True, True, True, True]
    >>> scorer.calibrating, round(scorer.threshold, 2)  # τ from leave-one-out scores of the 5 fit days
    (False, 2.74)
    >>> out = scorer.update("2024-06-08", np.array([0.5, 0.5, 6.0, 6.0]))  # group b reconstructed badly
    >>> round(out.score.score, 1), [c.feature for c in out.anomaly.contributors][:2]
    (16.6, ['b.m10.w2', 'b.l5.w2'])
    """

    def __init__(
        self,
        participant: str,
        space: ErrorSpace,
        config: CalibrationConfig | None = None,
        *,
        threshold: float | None = None,
        threshold_source: str = "calibration",
    ) -> None:
        self.participant = participant
        # written into every scores.daily record: lets `phenoflow evaluate` trace τ to its file
        self.threshold_source = threshold_source if threshold is not None else "calibration"
        self.model = space.model_id
        self.config = config or CalibrationConfig()
        self.threshold_override = threshold
        self._space: ErrorSpace | None = space
        self.calibration_rows: list[np.ndarray] = []  # per day: (rows, k) group errors
        self.calibration_means: list[np.ndarray] = []  # per day: (p,) mean feature errors
        self.error_model: ErrorModel | None = None
        self.feature_mu: np.ndarray | None = None
        self.feature_sd: np.ndarray | None = None
        self.threshold: float | None = None
        self.threshold_scores: list[float] = []  # phase 2: scores of the threshold days
        self.calibration_scores: np.ndarray | None = None  # the scores τ was set on
        self.first_day: str | None = None  # first day seen: the warm-up counts from it
        self.last_day: str | None = None
        self.risk = PassiveRisk(self.config.risk)

    # --- pickling: drop the shared ErrorSpace, re-resolve by model id -----------------

    #: Layout version of the pickled state (recovery snapshots); bump on incompatible changes.
    STATE_VERSION = 1

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_space"] = None
        state[VERSION_KEY] = self.STATE_VERSION
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        check_state_version(type(self), state)
        state.pop(VERSION_KEY, None)
        state.setdefault("threshold_source", "calibration")  # a field newer than the state version
        self.__dict__.update(state)

    @property
    def space(self) -> ErrorSpace:
        """The model's error space (looked up from the registry after unpickling)."""
        if self._space is None:
            self._space = lookup_space(self.model)
        return self._space

    @property
    def threshold_factor(self) -> float:
        """κ: the config's, else the model's if measured for these settings, else 1."""
        c = self.config
        if c.threshold_factor is not None:
            return c.threshold_factor
        sp = self.space
        return sp.threshold_factor if sp.factor_setup == c.setup() else 1.0

    @property
    def calibrating(self) -> bool:
        """True until τ is known (fit phase and threshold phase)."""
        return self.threshold is None

    @property
    def covariance(self) -> np.ndarray:
        """Σ (k × k) of the fitted error model."""
        if self.error_model is None:
            raise RuntimeError("(μ, Σ) not fitted yet")
        return self.error_model.covariance

    # --- scoring ---------------------------------------------------------------------

    def distances(self, errors: np.ndarray) -> np.ndarray:
        """Mahalanobis distance of each error row ((n, p) or (p,)) — calibrated scorers only."""
        if self.error_model is None:
            raise RuntimeError("(μ, Σ) not fitted yet")
        return self.error_model.distances(self.space.reduce(errors))

    def score_day(self, errors: np.ndarray, grouped: np.ndarray | None = None) -> float:
        """The day's score: the distance (rhythm) or the mean of hourly distances (hourly).

        ``grouped`` are the group-mean errors if already computed for a whole batch
        (``ErrorSpace.reduce`` on a batch is cheaper than per day).
        """
        if self.error_model is None:
            raise RuntimeError("(μ, Σ) not fitted yet")
        G = self.space.reduce(errors) if grouped is None else grouped
        if G.ndim == 1:
            return self.error_model.distance(G)
        return float(self.error_model.distances(G).mean())

    def _fit(self) -> None:
        """Close phase 1: fit (μ, Σ) and the per-feature moments; τ if it needs no phase 2."""
        c = self.config
        days = self.calibration_rows
        kw: dict[str, Any] = {"shrinkage": c.shrinkage, "sd_floor": c.sd_floor, "min_shrinkage": c.min_shrinkage}
        self.error_model = fit_error_model(np.vstack(days), **kw)
        means = np.vstack(self.calibration_means)
        fsd = means.std(axis=0)
        fsd = np.maximum(fsd, max(c.sd_floor * float(np.median(fsd)), 1e-12))
        self.feature_mu = means.mean(axis=0).astype(np.float32)
        self.feature_sd = fsd.astype(np.float32)
        if self.threshold_override is not None:
            self.threshold = float(self.threshold_override)
        elif c.threshold_days == 0:
            loo = np.empty(len(days))
            for i in range(len(days)):
                rest = np.vstack(days[:i] + days[i + 1 :])
                loo[i] = fit_error_model(rest, **kw).distances(days[i]).mean()
            self._set_threshold(loo)
        self.calibration_rows, self.calibration_means = [], []

    def _set_threshold(self, scores: np.ndarray) -> None:
        self.calibration_scores = np.asarray(scores, dtype=np.float64)
        # Weibull plotting position (i/(n+1)): the expected share of later scores below
        # this estimate is `quantile` even for n = 14; the default linear rule gives ~0.85.
        self.threshold = self.threshold_factor * float(
            np.quantile(self.calibration_scores, self.config.quantile, method="weibull")
        )
        self.threshold_scores = []

    def contributors(self, errors: np.ndarray) -> list[Contributor]:
        """Top-k features by standardised error z = (ē − μ_f)/σ_f > 0, ē = the day's mean error."""
        if self.feature_mu is None or self.feature_sd is None:
            return []
        e = np.atleast_2d(np.asarray(errors, dtype=np.float64)).mean(axis=0)
        z = (e - self.feature_mu) / self.feature_sd
        # Stable sort on (−z, index): deterministic order on ties. Only z > 0 counts:
        # a feature reconstructed better than usual did not make the day anomalous.
        order = np.lexsort((np.arange(z.size), -z))[: self.config.top_k]
        names = self.space.feature_names
        return [Contributor(feature=names[i], z=float(z[i])) for i in order if z[i] > 0]

    def update(
        self,
        day: str,
        errors: np.ndarray | None,
        utc_offset_min: int | None = None,
        *,
        observed: float = 1.0,
        grouped: np.ndarray | None = None,
    ) -> ScoreOutcome:
        """Score local ``day`` (YYYY-MM-DD) from its error vector(s); see the class doc.

        ``grouped``: the group-mean errors, when computed batch-wise beforehand.
        """
        replay = self.last_day is not None and day <= self.last_day
        if self.first_day is None:
            self.first_day = day
        scoreable = errors is not None and observed >= self.config.min_observed
        if scoreable and self.error_model is None and self.config.warmup_days:
            age = (date.fromisoformat(day) - date.fromisoformat(self.first_day)).days
            scoreable = age >= self.config.warmup_days
        if scoreable:
            errors = np.asarray(errors, dtype=np.float64)
            if not np.isfinite(errors).all():
                scoreable = False
        if not replay:
            self.last_day = day

        def record(score: float | None, calibrating: bool) -> ScoreDaily:
            return ScoreDaily(
                participant=self.participant,
                utc_offset_min=utc_offset_min,
                day=day,
                score=score,
                threshold=None if calibrating else self.threshold,
                calibrating=calibrating,
                model=self.model,
                threshold_source=self.threshold_source,
            )

        if not scoreable:
            return ScoreOutcome(record(None, self.calibrating))
        assert errors is not None
        if self.error_model is None:  # phase 1: collect the fit days
            if not replay:
                G = self.space.reduce(errors) if grouped is None else grouped
                self.calibration_rows.append(np.atleast_2d(np.asarray(G, dtype=np.float64)))
                self.calibration_means.append(np.atleast_2d(errors).mean(axis=0))
                if len(self.calibration_rows) >= self.config.calibration_days:
                    self._fit()
            return ScoreOutcome(record(None, True))
        s = self.score_day(errors, grouped)
        if self.threshold is None:  # phase 2: score the threshold days
            if not replay:
                self.threshold_scores.append(s)
                if len(self.threshold_scores) >= self.config.threshold_days:
                    self._set_threshold(np.array(self.threshold_scores))
            return ScoreOutcome(record(s, True))
        is_anomaly = s > self.threshold
        anomaly = None
        if is_anomaly:
            anomaly = AnomalyEvent(
                participant=self.participant,
                utc_offset_min=utc_offset_min,
                event_id=anomaly_event_id(self.participant, day, self.model),
                day=day,
                score=s,
                threshold=self.threshold,
                contributors=self.contributors(errors),
                model=self.model,
            )
        stepup = None
        if not replay:
            stepup = self.risk.update(
                self.participant, day, is_anomaly, model=self.model, utc_offset_min=utc_offset_min
            )
        return ScoreOutcome(record(s, False), anomaly, stepup)


    def update_day(self, d: DayErrors) -> ScoreOutcome:
        """:meth:`update` from one :class:`~phenoflow.operators.scoring.reconstruction.DayErrors`."""
        return self.update(d.day, d.errors, d.utc_offset_min, observed=d.observed, grouped=d.grouped)


def estimate_threshold_factor(
    days: Iterable[DayErrors],
    space: ErrorSpace,
    config: CalibrationConfig | None = None,
    *,
    healthy: Callable[[str, str], bool] = lambda _pid, _day: True,
    min_participants: int = 3,
    min_scored: int = 7,
) -> tuple[float, int] | None:
    """κ for :class:`CalibrationConfig` settings: τ = κ · quantile puts a share 1 − q of
    later healthy days above τ. Returns (κ, participants used), or None if too few.

    Replays the calibration (with κ = 1) on each participant's ``healthy(participant,
    day)`` days in day order; each participant with ≥ ``min_scored`` days scored after
    calibration gives the ratios r = s/τ of those days. κ is the weighted q-quantile
    of all r, each participant weighing 1 (weights 1/n_p): the smallest κ with
    Σ_p (share of p's days with r > κ) ≤ (1 − q) · participants.
    """
    cfg = dataclasses.replace(config or CalibrationConfig(), threshold_factor=1.0)
    by: dict[str, list[DayErrors]] = {}
    for d in days:
        if healthy(d.participant, d.day):
            by.setdefault(d.participant, []).append(d)
    ratios: list[np.ndarray] = []
    for pid in sorted(by):
        sc = ParticipantScorer(pid, space, cfg)
        r = [out.score.score / sc.threshold
             for out in (sc.update_day(d) for d in sorted(by[pid], key=lambda d: d.day))
             if not out.score.calibrating and out.score.score is not None and sc.threshold]
        if len(r) >= min_scored:
            ratios.append(np.asarray(r))
    if len(ratios) < min_participants:
        return None
    x = np.concatenate(ratios)
    w = np.concatenate([np.full(r.size, 1.0 / r.size) for r in ratios])
    order = np.argsort(x, kind="stable")
    cum = np.cumsum(w[order]) / len(ratios)  # share of participant weight with r ≤ x
    j = int(np.searchsorted(cum, cfg.quantile - 1e-12))
    return float(x[order][min(j, x.size - 1)]), len(ratios)


def load_thresholds(path: str | Path) -> dict[str, float]:
    """Read a thresholds file: {participant: τ}, or ``phenoflow evaluate``'s
    {"thresholds": {participant: τ}, "provenance": {…}} (provenance: docs/evaluation.md)."""
    p = Path(path)
    fix = "write it as a JSON object {participant: threshold}, e.g. with `phenoflow evaluate`"
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"thresholds file {p} not found — {fix}") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"thresholds file {p} is not valid JSON ({exc}) — {fix}") from None
    if isinstance(data, dict) and isinstance(data.get("thresholds"), dict) and "provenance" in data:
        data = data["thresholds"]
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
        for k, v in data.items()
    ):
        raise UserError(f"thresholds file {p} is not a {{participant: number}} object — {fix}")
    return {k: float(v) for k, v in data.items()}
