"""Evaluation of anomaly flags against relapse labels (Adler et al., JMIR mHealth 2020).

Definitions (DESIGN.md, "Evaluation"):

- NR30 ("near relapse"): the 30 days d−30 … d−1 before a relapse date d. The
  relapse day itself is not NR30; like every other non-calibrating day with a
  score it is a day of relative health (DRH).
- A day is *flagged* when an ``events.anomaly`` exists for it (equivalently
  ``scores.daily`` score > threshold and not calibrating). Calibrating days are
  excluded: the scorer has no threshold for them yet.
- Per participant: sensitivity = TPR = flagged NR30 / NR30 days; specificity =
  1 − FPR = unflagged DRH / DRH days; TPR/FPR is the seed's headline ("108 %
  more anomalies near relapse" = 2.08). A participant without NR30 days has no
  TPR: it is reported as n/a, never 0.

``--protocol adler`` reproduces the seed's Monte Carlo procedure; see
:func:`make_splits` and :func:`run_protocol`. Reading the cohort directory is
:mod:`phenoflow.evaluate_io`; the command entry point is :func:`evaluate_dir`.
"""

from __future__ import annotations

import json
import math
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np

from phenoflow.errors import UserError
from phenoflow.evaluate_metrics import (
    Confusion,
    Spread,
    ThresholdChoice,
    best_threshold,
    cohens_d,
    confusion,
    quantile,
    tpr_fpr_ratio,
)
from phenoflow.evaluate_io import (
    NR30_DAYS,
    CohortDays,
    FeatureTable,
    load_cohort,
    load_feature_table,
    read_labels,
    resolve_outputs,
)

__all__ = [
    "NR30_DAYS",
    "Confusion",
    "EvaluationResult",
    "SplitFractions",
    "Spread",
    "ThresholdChoice",
    "best_threshold",
    "cohens_d",
    "confusion",
    "evaluate_dir",
    "make_splits",
    "quantile",
    "run_protocol",
    "tpr_fpr_ratio",
]
#: Days before relapse shown in the anomaly-rate plot (seed Figure 2d shows the NR30 window).
RATE_HORIZON_DAYS = 60

# --- Monte Carlo protocol --------------------------------------------------------------

TRAIN, HEALTHY, VALIDATION, TEST = 0, 1, 2, 3


@dataclass(frozen=True)
class SplitFractions:
    """Shares of each participant's days per role in one Monte Carlo split.

    DRH days: training (models learn behaviour), healthy validation (the error
    distribution; here also the reference that maps τ to a quantile), threshold
    validation, rest = test. NR30 days: ``nr30_validation`` to threshold
    validation, rest = test. Training never sees NR30 days (Adler et al.).
    """

    train: float = 0.4
    healthy: float = 0.2
    validation: float = 0.2
    nr30_validation: float = 0.5


def _counts(n: int, shares: Sequence[float]) -> list[int]:
    """Split n items by shares (last share = remainder), each role ≥ 1 when n allows."""
    out = [int(round(n * s)) for s in shares]
    if n >= len(shares) + 1:
        out = [max(1, c) for c in out]
    while sum(out) > n - 1 and max(out) > 0:
        out[int(np.argmax(out))] -= 1
    return out + [n - sum(out)]


def make_splits(
    cohort: CohortDays, iterations: int, seed: int, fractions: SplitFractions = SplitFractions()
) -> np.ndarray:
    """Role of every cohort day in every iteration: int8 array (iterations × days).

    Roles: 0 training, 1 healthy validation, 2 threshold validation, 3 test. Each
    participant's random stream is seeded by (seed, CRC32 of its id), so a
    participant's splits do not change when others join the cohort. A
    participant with one NR30 day puts it in test.
    """
    roles = np.empty((iterations, cohort.day.size), dtype=np.int8)
    rows = np.arange(iterations)[:, None]
    nr30 = cohort.nr30
    for p, pid in enumerate(cohort.participants):
        sl = cohort.slice(p)
        idx = np.arange(sl.start, sl.stop)
        rng = np.random.default_rng([seed, zlib.crc32(pid.encode())])
        drh, nr = idx[~nr30[sl]], idx[nr30[sl]]
        for days, shares, codes in (
            (drh, (fractions.train, fractions.healthy, fractions.validation), (TRAIN, HEALTHY, VALIDATION, TEST)),
            (nr, (fractions.nr30_validation,), (VALIDATION, TEST)),
        ):
            if days.size == 0:
                continue
            counts = _counts(days.size, shares) if days.size > 1 else [0] * len(shares) + [1]
            by_rank = np.repeat(np.array(codes, dtype=np.int8), counts)
            perms = np.argsort(rng.random((iterations, days.size)), axis=1)
            roles[rows, days[perms]] = by_rank[None, :]
    return roles


@dataclass
class ProtocolResult:
    """Test-set results of the Monte Carlo protocol for one model."""

    confusion: list[Confusion]  # per participant, pooled over iterations
    taus: np.ndarray  # iterations × participants (nan: none fitted)
    fitted: np.ndarray  # participants: share of iterations τ came from the participant's own NR30
    rate_counts: np.ndarray  # (RATE_HORIZON_DAYS+1) × 2: [days, flagged] by days before relapse
    drh_rate: tuple[int, int]  # DRH test days, flagged
    iterations: int

    def thresholds(self) -> dict[int, float]:
        """Final τ per participant index: median over iterations (finite only)."""
        out: dict[int, float] = {}
        for p in range(self.taus.shape[1]):
            t = self.taus[:, p]
            t = t[~np.isnan(t)]
            if t.size:
                m = quantile(t, 0.5)
                if math.isfinite(m):
                    out[p] = m
        return out


def run_protocol(
    cohort: CohortDays,
    roles: np.ndarray,
    scores_for: Callable[[int], np.ndarray],
) -> ProtocolResult:
    """Adler et al.'s per-participant thresholding over Monte Carlo splits.

    For each iteration ``scores_for(i)`` gives one score per cohort day (nan =
    the model could not score it: never flagged). Per participant, τ maximises
    TPR/FPR on its validation days (:func:`best_threshold`) and is applied to
    its test days. Participants whose validation holds no NR30 day (no relapse)
    get the τ at the cohort's median quantile q* within their own healthy
    validation scores, where q* is the share of healthy-validation scores ≤ τ
    among the participants with a fitted τ (same iteration). Test counts are
    pooled over iterations (equal test sizes, so this is the mean rate).
    """
    n_it, n_p = roles.shape[0], len(cohort.participants)
    taus = np.full((n_it, n_p), np.nan)
    own = np.zeros(n_p)
    conf = [Confusion() for _ in range(n_p)]
    rate = np.zeros((RATE_HORIZON_DAYS + 1, 2), dtype=np.int64)
    drh = [0, 0]
    slices = [cohort.slice(p) for p in range(n_p)]
    nr30_all = cohort.nr30
    for it in range(n_it):
        s_all = np.nan_to_num(np.asarray(scores_for(it), dtype=float), nan=-np.inf)
        quants: list[float] = []
        pending: list[int] = []
        for p, sl in enumerate(slices):
            r, nr, s = roles[it, sl], nr30_all[sl], s_all[sl]
            choice = best_threshold(s[(r == VALIDATION) & nr], s[(r == VALIDATION) & ~nr])
            if choice is None:
                pending.append(p)
                continue
            taus[it, p] = choice.tau
            own[p] += 1
            healthy = s[r == HEALTHY]
            if healthy.size:
                quants.append(float(np.mean(healthy <= choice.tau)))
        q_star = quantile(quants, 0.5) if quants else math.nan
        for p in pending:
            healthy = s_all[slices[p]][roles[it, slices[p]] == HEALTHY]
            healthy = healthy[np.isfinite(healthy)]
            if healthy.size and not math.isnan(q_star):
                taus[it, p] = float(np.quantile(healthy, q_star))
        for p, sl in enumerate(slices):
            if math.isnan(taus[it, p]):
                continue
            test = roles[it, sl] == TEST
            flagged = s_all[sl][test] > taus[it, p]
            nr = nr30_all[sl][test]
            conf[p] = conf[p] + confusion(flagged, nr)
            before = cohort.days_before[sl][test]
            near = before <= RATE_HORIZON_DAYS
            np.add.at(rate[:, 0], before[near], 1)
            np.add.at(rate[:, 1], before[near], flagged[near].astype(np.int64))
            drh[0] += int(np.count_nonzero(~nr))
            drh[1] += int(np.count_nonzero(flagged & ~nr))
    return ProtocolResult(conf, taus, own / max(n_it, 1), rate, (drh[0], drh[1]), n_it)


def streaming_rates(cohort: CohortDays) -> tuple[list[Confusion], np.ndarray, tuple[int, int]]:
    """Per-participant confusion of the emitted flags over all evaluated days, and rate counts."""
    conf = [confusion(cohort.flagged[sl], cohort.nr30[sl]) for sl in map(cohort.slice, range(len(cohort.participants)))]
    rate = np.zeros((RATE_HORIZON_DAYS + 1, 2), dtype=np.int64)
    near = cohort.days_before <= RATE_HORIZON_DAYS
    np.add.at(rate[:, 0], cohort.days_before[near], 1)
    np.add.at(rate[:, 1], cohort.days_before[near], cohort.flagged[near].astype(np.int64))
    drh = ~cohort.nr30
    return conf, rate, (int(drh.sum()), int((cohort.flagged & drh).sum()))



# --- the command ------------------------------------------------------------------------


@dataclass
class ParticipantRow:
    """One participant's result. In the Adler protocol the day counts are test days pooled over iterations."""

    participant: str
    relapses: int
    days: int
    conf: Confusion
    threshold: float | None = None
    threshold_source: str = ""


@dataclass
class EvaluationResult:
    """Everything ``phenoflow evaluate`` reports; ``to_markdown()`` renders it."""

    protocol: str
    model: str
    iterations: int
    seed: int
    participants: list[ParticipantRow]
    days: int
    excluded_calibrating: int
    rate_by_day: np.ndarray
    drh_rate: tuple[int, int]
    comparison: list[Any] = field(default_factory=list)
    explanations: list[Any] = field(default_factory=list)
    trajectories: list[Any] = field(default_factory=list)
    thresholds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def sensitivity(self) -> Spread:
        return Spread.of([r.conf.sensitivity for r in self.participants])

    @property
    def specificity(self) -> Spread:
        return Spread.of([r.conf.specificity for r in self.participants])

    @property
    def tpr_fpr(self) -> Spread:
        return Spread.of([r.conf.tpr_fpr for r in self.participants])

    @property
    def pooled(self) -> Confusion:
        return sum((r.conf for r in self.participants), Confusion())

    def to_markdown(self) -> str:
        from phenoflow.report import evaluation_markdown

        return evaluation_markdown(self)


def _explain_table(out: Path, cohort: CohortDays, wanted: set[str], tables: dict[str, FeatureTable | None], notes: list[str]) -> FeatureTable | None:
    """Rhythm statistics (else hourly features) of the participants to explain."""
    for kind in ("rhythm", "hourly"):
        table = tables[kind] if kind in tables else load_feature_table(out, kind, cohort, notes, wanted)  # type: ignore[arg-type]
        if table is not None and table.names:
            return table
    notes.append("no rhythm.daily or features.hourly dump: no feature explanations or trajectories")
    return None


def evaluate_dir(
    dir: Path,
    *,
    outputs: Path | None = None,
    protocol: Literal["streaming", "adler"] = "streaming",
    iterations: int = 100,
    seed: int = 0,
    thresholds_out: Path | None = None,
    report: Path | None = None,
    compare: Sequence[str] | str | None = None,
    compare_iterations: int = 10,
    fractions: SplitFractions = SplitFractions(),
) -> EvaluationResult:
    """Evaluate emitted anomaly flags against ``DIR/labels.csv`` (see module doc and docs/evaluation.md).

    ``protocol="streaming"`` counts the published events on every evaluated
    day; ``"adler"`` runs :func:`run_protocol` on ``iterations`` Monte Carlo
    splits of the published scores and can write the fitted thresholds
    (``thresholds_out``: JSON {participant: τ}, the file the scoring stage
    loads). ``compare`` (model names, see :mod:`phenoflow.compare`) adds the
    model comparison on ``compare_iterations`` shared splits. ``report`` is an
    HTML file (Markdown and CSV files are written beside it) or a folder.
    """
    from phenoflow.compare import compare_models, parse_models
    from phenoflow.evaluate_explain import daily_matrix, explain, trajectories

    t0 = time.perf_counter()
    if protocol not in ("streaming", "adler"):
        raise UserError(f"unknown protocol {protocol!r} — use streaming or adler")
    if iterations < 1 or compare_iterations < 1:
        raise UserError("iterations must be ≥ 1 — pass e.g. --iterations 100")
    if thresholds_out is not None and protocol != "adler":
        raise UserError("thresholds are fitted by the Monte Carlo protocol — add --protocol adler")
    models = parse_models(compare) if compare else []
    out = resolve_outputs(dir, outputs)
    cohort = load_cohort(out, read_labels(Path(dir) / "labels.csv"))
    notes = list(cohort.notes)
    n_p = len(cohort.participants)
    need = max(iterations if protocol == "adler" else 0, compare_iterations if models else 0)
    roles = make_splits(cohort, need, seed, fractions) if need else None
    pid_of_day = np.repeat(np.arange(n_p), np.diff(cohort.starts))
    if protocol == "streaming":
        conf, rate, drh = streaming_rates(cohort)
        flagged, threshold = cohort.flagged, cohort.threshold
        taus: dict[str, float] = {}
        sources = ["streaming"] * n_p
    else:
        res = run_protocol(cohort, roles[:iterations], lambda i: cohort.score)  # type: ignore[index]
        conf, rate, drh = res.confusion, res.rate_counts, res.drh_rate
        fitted = res.thresholds()
        taus = {cohort.participants[p]: t for p, t in fitted.items()}
        per_p = np.array([fitted.get(p, np.nan) for p in range(n_p)])
        threshold = per_p[pid_of_day]
        flagged = cohort.score > np.nan_to_num(threshold, nan=np.inf)
        sources = ["fitted" if res.fitted[p] >= 0.5 else "cohort quantile" for p in range(n_p)]
    rows = [
        ParticipantRow(
            pid,
            int(cohort.relapses[pid].size),
            int(cohort.starts[p + 1] - cohort.starts[p]),
            conf[p],
            taus.get(pid) if protocol == "adler" else None,
            sources[p],
        )
        for p, pid in enumerate(cohort.participants)
    ]
    tables: dict[str, FeatureTable | None] = {}
    for inp in sorted({i for k, i in models if k != "emitted"}):
        tables[inp] = load_feature_table(out, inp, cohort, notes)  # type: ignore[arg-type]
    comparison = compare_models(cohort, roles[:compare_iterations], models, tables, seed) if models else []  # type: ignore[index]
    wanted = {pid for pid in cohort.participants if cohort.relapses[pid].size}
    table = _explain_table(out, cohort, wanted, tables, notes)
    daily = daily_matrix(table, cohort.day.size) if table is not None else None
    names = table.names if table is not None else []
    expl = explain(cohort, flagged, daily, names) if daily is not None else []
    trajs = trajectories(cohort, flagged, threshold, daily, names, expl)
    if thresholds_out is not None:
        Path(thresholds_out).parent.mkdir(parents=True, exist_ok=True)
        Path(thresholds_out).write_text(json.dumps(dict(sorted(taus.items())), indent=1) + "\n")
        missing = n_p - len(taus)
        if missing:
            notes.append(f"{missing} participant(s) got no threshold (too few days); the scorer keeps its own for them")
    result = EvaluationResult(
        protocol=protocol,
        model=cohort.model,
        iterations=iterations if protocol == "adler" else 0,
        seed=seed,
        participants=rows,
        days=int(cohort.day.size),
        excluded_calibrating=cohort.excluded_calibrating,
        rate_by_day=rate,
        drh_rate=drh,
        comparison=comparison,
        explanations=expl,
        trajectories=trajs,
        thresholds=taus,
        notes=notes,
    )
    if thresholds_out is not None:
        result.files.append(Path(thresholds_out))
    result.seconds = time.perf_counter() - t0
    if report is not None:
        from phenoflow.report import write_evaluation_report

        result.files += write_evaluation_report(result, Path(report))
    return result
