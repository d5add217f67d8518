"""Model comparison on one cohort with the same Monte Carlo splits (Adler et al. 2020).

Every model is a small adapter with ``fit(train, healthy)`` and ``score(view)``
returning one anomaly score per feature row (higher = more anomalous); hourly
row scores are averaged per day, as the seed averages hourly scores. The
runner standardises each participant's features on that participant's
training days of the split (z-scores; missing → 0, the participant's mean),
fits one cohort model on all participants' training days, scores the other
days and hands the day scores to :func:`phenoflow.evaluation.protocol.run_protocol`, which
picks per-participant thresholds on validation days and counts test days.

Models (``kind[:input]``):

- ``emitted`` — the scores the streaming scorer published (no refit).
- ``ae`` — fully connected autoencoder (PyTorch → ONNX, ``phenoflow.models.train``)
  scored by Mahalanobis distance of the absolute reconstruction error against
  the participant's own healthy-validation errors (per-participant calibration,
  as the deployed scorer); default input rhythm.
- ``gru`` — GRU sequence-to-sequence on 24-h subsequences; input hourly.
- ``lof`` — scikit-learn LocalOutlierFactor (novelty mode), the seed baseline; hourly.
- ``hst`` — River HalfSpaceTrees, a streaming detector; rhythm.
"""

from __future__ import annotations

import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol, Sequence

import numpy as np

from phenoflow.core.errors import UserError
from phenoflow.evaluation.detection import Confusion, Spread
from phenoflow.evaluation.dumps import CohortDays, FeatureTable
from phenoflow.evaluation.protocol import HEALTHY, TRAIN, run_protocol

if TYPE_CHECKING:  # for annotations only: training and the scorer's error model are imported where they run
    from phenoflow.models.train import InputKind, ModelKind
    from phenoflow.operators.scoring.calibration import ErrorModel

__all__ = [
    "DEFAULT_MODELS", "MAX_TRAIN_ROWS", "COMPONENTS", "TableView", "ModelAdapter", "ModelRow", "parse_models",
    "standardise", "LofModel", "HalfSpaceTreesModel", "OnnxModel", "table_records", "day_scores", "run_model",
    "compare_models"
]

DEFAULT_MODELS: tuple[str, ...] = ("emitted", "ae:rhythm", "ae:hourly", "gru:hourly", "lof:hourly", "hst:rhythm")
_DEFAULT_INPUT = {"emitted": "", "ae": "rhythm", "gru": "hourly", "lof": "hourly", "hst": "rhythm"}
_LABELS = {
    "emitted": "Published scores",
    "ae": "Autoencoder",
    "gru": "GRU seq2seq",
    "lof": "Local outlier factor",
    "hst": "HalfSpaceTrees",
}
#: Rows a model trains on per split at most (seeded subsample); keeps LOF/HST within budget.
MAX_TRAIN_ROWS = 6000
#: PCA components for the distance/tree models on wide inputs (rhythm has ~10³ columns).
COMPONENTS = 24


@dataclass
class TableView:
    """Rows of a feature table: raw table, row indices and participant-standardised values."""

    table: FeatureTable
    rows: np.ndarray
    Z: np.ndarray
    participants: np.ndarray  # participant id per row
    day: np.ndarray  # local day per row, datetime64[D]


class ModelAdapter(Protocol):
    """A detector under comparison: fitted on training days, then scores any view."""

    def fit(self, train: TableView, healthy: TableView) -> None:
        """Fit on the training days (``healthy`` holds the days outside any relapse window)."""

    def score(self, view: TableView) -> np.ndarray:
        """Anomaly score per row of ``view`` (higher is more anomalous)."""


@dataclass
class ModelRow:
    """One line of the comparison table."""

    model: str
    label: str
    status: str  # "ok" or why the model could not run
    iterations: int
    seconds: float
    sensitivity: Spread
    specificity: Spread
    tpr_fpr: Spread
    pooled: Confusion


def parse_models(specs: str | Sequence[str]) -> list[tuple[str, str]]:
    """``"lof:hourly,hst"`` → [("lof", "hourly"), ("hst", "rhythm")]; UserError on unknown names."""
    items = specs.split(",") if isinstance(specs, str) else list(specs)
    out = []
    for item in filter(None, (s.strip().lower() for s in items)):
        kind, _, inp = item.partition(":")
        kind = {"autoencoder": "ae", "halfspacetrees": "hst", "local-outlier-factor": "lof"}.get(kind, kind)
        if kind not in _DEFAULT_INPUT:
            raise UserError(f"unknown model {item!r} — use one of {', '.join(_DEFAULT_INPUT)} (optionally :rhythm or :hourly)")
        inp = inp or _DEFAULT_INPUT[kind]
        if kind != "emitted" and inp not in ("rhythm", "hourly"):
            raise UserError(f"model {item!r}: input must be rhythm or hourly")
        out.append((kind, inp))
    return out


def standardise(table: FeatureTable, part_rows: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Per-participant z-scores using that participant's training rows; NaN → 0; clipped to ±10."""
    Z = np.zeros(table.X.shape, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for a, b in zip(part_rows[:-1], part_rows[1:], strict=True):
            if a == b:
                continue
            x = table.X[a:b]
            ref = x[train[a:b]] if train[a:b].any() else x
            mu, sd = np.nanmean(ref, axis=0), np.nanstd(ref, axis=0)
            sd = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
            Z[a:b] = np.clip(np.nan_to_num((x - np.nan_to_num(mu)) / sd, nan=0.0), -10, 10)
    return Z


def _reduce(fit_rows: np.ndarray, seed: int) -> Callable[[np.ndarray], np.ndarray]:
    """PCA projection fitted on training rows when the input is wide (scikit-learn)."""
    if fit_rows.shape[1] <= COMPONENTS or fit_rows.shape[0] <= COMPONENTS:
        return lambda z: z
    from sklearn.decomposition import PCA

    pca = PCA(n_components=COMPONENTS, svd_solver="randomized", random_state=seed).fit(fit_rows)
    return pca.transform


def _subsample(n: int, seed: int) -> np.ndarray:
    if n <= MAX_TRAIN_ROWS:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, MAX_TRAIN_ROWS, replace=False))


class LofModel:
    """Local outlier factor in novelty mode (Breunig et al. 2000; the seed's baseline).

    Score = −``score_samples`` (the LOF; ≈1 for inliers, larger for outliers).
    """

    def __init__(self, seed: int, n_neighbors: int = 20) -> None:
        self.seed, self.n_neighbors = seed, n_neighbors

    def fit(self, train: TableView, healthy: TableView) -> None:
        """Fit LOF (novelty mode) on a subsample of the training days."""
        from sklearn.neighbors import LocalOutlierFactor

        Z = train.Z[_subsample(len(train.Z), self.seed)]
        self.project = _reduce(Z, self.seed)
        k = max(1, min(self.n_neighbors, len(Z) - 1))
        self.lof = LocalOutlierFactor(n_neighbors=k, novelty=True).fit(self.project(Z))

    def score(self, view: TableView) -> np.ndarray:
        """Negative LOF score per row (higher is more anomalous)."""
        return -self.lof.score_samples(self.project(view.Z))


class HalfSpaceTreesModel:
    """River's HalfSpaceTrees (Tan et al. 2011), a streaming detector, learned in time order.

    Features are projected (PCA when wide) and min–max scaled on the training
    rows to [0, 1] (clipped), the range HalfSpaceTrees assumes.
    """

    def __init__(self, seed: int, n_trees: int = 25, height: int = 8, window_size: int = 250) -> None:
        self.seed, self.n_trees, self.height, self.window_size = seed, n_trees, height, window_size

    def _rows(self, Z: np.ndarray) -> list[dict[int, float]]:
        x = np.clip((self.project(Z) - self.lo) / self.span, 0.0, 1.0)
        return [dict(enumerate(r)) for r in x.tolist()]

    def fit(self, train: TableView, healthy: TableView) -> None:
        """Learn the trees from a subsample of the training days, in time order."""
        from river.anomaly import HalfSpaceTrees

        Z = train.Z[_subsample(len(train.Z), self.seed)]
        self.project = _reduce(Z, self.seed)
        P = self.project(Z)
        self.lo, hi = P.min(axis=0), P.max(axis=0)
        self.span = np.where(hi > self.lo, hi - self.lo, 1.0)
        self.hst = HalfSpaceTrees(n_trees=self.n_trees, height=self.height, window_size=self.window_size, seed=self.seed)
        for x in self._rows(Z):
            self.hst.learn_one(x)

    def score(self, view: TableView) -> np.ndarray:
        """HalfSpaceTrees anomaly score per row."""
        return np.array([self.hst.score_one(x) for x in self._rows(view.Z)])


class OnnxModel:
    """Autoencoder / GRU trained by ``phenoflow.models.train`` and run by ``OnnxScorer``.

    Scored as the streaming scorer does (Adler et al.): each participant-day's
    absolute reconstruction errors (one row per day for rhythm, per hour for
    hourly models) are reduced to the model's error groups, their Mahalanobis
    distance to the participant's own (μ, Σ) — fitted on that participant's
    healthy-validation days of the split (``calibration.fit_error_model``,
    shrunk covariance), as the stream calibrates per participant, not a pooled
    Σ — is averaged per day.
    """

    def __init__(self, seed: int, model_kind: ModelKind, input_kind: InputKind, workdir: Path) -> None:
        self.seed, self.model_kind, self.input_kind, self.workdir = seed, model_kind, input_kind, workdir

    def _day_rows(self, view: TableView) -> tuple[list[tuple[str, str]], list[np.ndarray]]:
        days = self.scorer.day_errors(table_records(view))
        return [(d.participant, d.day) for d in days], [self.space.reduce(np.atleast_2d(d.errors)) for d in days]

    def fit(self, train: TableView, healthy: TableView) -> None:
        """Train and export the ONNX model on the training days, then fit its error model on the healthy days."""
        from phenoflow.models.train import train_model
        from phenoflow.operators.scoring.calibration import fit_error_model
        from phenoflow.operators.scoring.reconstruction import OnnxScorer

        path = self.workdir / f"{self.model_kind}-{self.input_kind}-{self.seed}.onnx"
        summary = train_model(
            table_records(train), {}, path, input_kind=self.input_kind, model_kind=self.model_kind, hidden=40, seed=self.seed
        )
        self.scorer = OnnxScorer(summary.out)
        self.space = self.scorer.error_space()
        self.models = participant_error_models(*self._day_rows(healthy), fit_error_model)

    def score(self, view: TableView) -> np.ndarray:
        """Mean error-model distance per participant-day; NaN where the model scored nothing."""
        keys, rows = self._day_rows(view)
        per_day = participant_day_scores(self.models, keys, rows)
        return np.array([per_day.get((str(p), str(d)), np.nan) for p, d in zip(view.participants, view.day, strict=True)])


#: Fewest healthy-validation days a participant needs for its own (μ, Σ) in the comparison.
MIN_CALIBRATION_DAYS = 3


def participant_error_models(
    keys: list[tuple[str, str]], rows: list[np.ndarray], fit: Callable[[np.ndarray], ErrorModel],
    min_days: int = MIN_CALIBRATION_DAYS,
) -> dict[str, ErrorModel]:
    """One error model per participant from its own days' group errors, as the streaming scorer calibrates.

    ``keys`` are (participant, day) of ``rows`` (each a day's (rows × groups) errors).
    A participant with fewer than ``min_days`` days gets no model: like the stream
    before calibration, its days are not scored (never flagged).
    """
    by: dict[str, list[np.ndarray]] = {}
    for (pid, _), r in zip(keys, rows, strict=True):
        if len(r):
            by.setdefault(pid, []).append(r)
    return {pid: fit(np.concatenate(rs)) for pid, rs in by.items() if len(rs) >= min_days}


def participant_day_scores(
    models: dict[str, ErrorModel], keys: list[tuple[str, str]], rows: list[np.ndarray]
) -> dict[tuple[str, str], float]:
    """(participant, day) → mean Mahalanobis distance of the day's rows to the participant's own model."""
    return {k: float(models[k[0]].distances(r).mean())
            for k, r in zip(keys, rows, strict=True) if len(r) and k[0] in models}


def table_records(view: TableView) -> list:
    """Contract records (RhythmDaily / HourlyFeatures) of a view's raw rows, nulls restored."""
    from phenoflow.core.contract import HourlyFeatures, RhythmDaily

    t, names = view.table, view.table.names
    X = t.X[view.rows].astype(float).tolist()
    out: list = []
    for i, r in enumerate(view.rows):
        feats = {n: (None if v != v else v) for n, v in zip(names, X[i], strict=True)}
        pid = str(view.participants[i])
        if t.kind == "rhythm":
            out.append(RhythmDaily(participant=pid, day=str(view.day[i]), features=feats, coverage={}))
        else:
            m = t.meta
            out.append(
                HourlyFeatures(
                    participant=pid,
                    utc_offset_min=int(m["utc_offset_min"][r]),
                    hour_start=float(m["hour_start"][r]),
                    local_hour=int(m["local_hour"][r]),
                    weekday=int(m["weekday"][r]),
                    features=feats,
                    filled=float(m["filled"][r]),
                )
            )
    return out


def _adapter(kind: str, inp: str, seed: int, workdir: Path) -> ModelAdapter:
    if kind == "lof":
        return LofModel(seed)
    if kind == "hst":
        return HalfSpaceTreesModel(seed)
    # parse_models admits only rhythm or hourly as the input of a fitted model
    return OnnxModel(seed, "autoencoder" if kind == "ae" else "gru", "rhythm" if inp == "rhythm" else "hourly", workdir)


def _row(kind: str, inp: str, status: str, seconds: float, iterations: int, conf: list[Confusion] | None) -> ModelRow:
    conf = conf or []
    label = _LABELS[kind] + (f" · {inp}" if inp else "")
    pooled = sum(conf, Confusion())
    return ModelRow(
        f"{kind}:{inp}" if inp else kind,
        label,
        status,
        iterations,
        seconds,
        Spread.of([c.sensitivity for c in conf]),
        Spread.of([c.specificity for c in conf]),
        Spread.of([c.tpr_fpr for c in conf]),
        pooled,
    )


def day_scores(row_scores: np.ndarray, row_day: np.ndarray, n_days: int) -> np.ndarray:
    """Mean row score per cohort day; NaN where a day has no scored row."""
    tot = np.bincount(row_day, weights=row_scores, minlength=n_days)
    cnt = np.bincount(row_day, minlength=n_days)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, tot / np.maximum(cnt, 1), np.nan)


def run_model(
    kind: str, inp: str, cohort: CohortDays, table: FeatureTable | None, roles: np.ndarray, seed: int, workdir: Path
) -> ModelRow:
    """Fit/score one model on every split and evaluate it with the Monte Carlo protocol."""
    t0 = time.perf_counter()
    n_it = roles.shape[0]
    if kind == "emitted":
        res = run_protocol(cohort, roles, lambda i: cohort.score)
        return _row(kind, "", "ok", time.perf_counter() - t0, n_it, res.confusion)
    if table is None or table.X.shape[0] == 0 or not table.names:
        topic = "rhythm.daily" if inp == "rhythm" else "features.hourly"
        return _row(kind, inp, f"no {topic} dump for the evaluated days", 0.0, 0, None)
    pid_of_day = np.repeat(np.array(cohort.participants, dtype=object), np.diff(cohort.starts))
    part_rows = np.searchsorted(table.row_day, cohort.starts)
    pids = pid_of_day[table.row_day]
    row_days = cohort.day[table.row_day]

    def scores_for(it: int) -> np.ndarray:
        role = roles[it, table.row_day]
        Z = standardise(table, part_rows, role == TRAIN)

        def view(mask: np.ndarray) -> TableView:
            rows = np.flatnonzero(mask)
            return TableView(table, rows, Z[rows], pids[rows], row_days[rows])

        model = _adapter(kind, inp, seed + it, workdir)
        model.fit(view(role == TRAIN), view(role == HEALTHY))
        scored = view(role != TRAIN)
        s = np.asarray(model.score(scored), dtype=float)
        return day_scores(s, table.row_day[scored.rows], cohort.day.size)

    try:
        res = run_protocol(cohort, roles, scores_for)
    except ImportError as exc:
        return _row(kind, inp, f"not available yet ({exc})", time.perf_counter() - t0, 0, None)
    except Exception as exc:  # one failing model must not sink the comparison
        return _row(kind, inp, f"failed: {type(exc).__name__}: {exc}"[:200], time.perf_counter() - t0, 0, None)
    return _row(kind, inp, "ok", time.perf_counter() - t0, n_it, res.confusion)


def compare_models(
    cohort: CohortDays,
    roles: np.ndarray,
    models: list[tuple[str, str]],
    tables: dict[str, FeatureTable | None],
    seed: int = 0,
) -> list[ModelRow]:
    """One :class:`ModelRow` per model, all on the same ``roles`` (iterations × days)."""
    with tempfile.TemporaryDirectory(prefix="phenoflow-compare-") as tmp:
        return [run_model(k, i, cohort, tables.get(i), roles, seed, Path(tmp)) for k, i in models]
