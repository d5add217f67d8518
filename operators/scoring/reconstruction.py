"""ONNX Runtime inference for the anomaly autoencoder: vectorise, reconstruct, error vectors.

The model (Adler et al., JMIR mHealth 2020) is trained offline by
``phenoflow.models.train`` (PyTorch) and shipped as an ONNX file whose
``metadata_props`` carry everything needed to turn contract records into model
inputs: the ordered feature names, per-feature log transform, standardisation
mean/SD, clip bound and error groups (see models/README.md). This module needs
only numpy and onnxruntime — never torch.

Input preparation (identical at training and scoring, :class:`FeatureSpec`):
``x → log1p(max(x, 0))`` for features flagged heavy-tailed at training, then
``z = (x − mean) / sd``, clipped to ±``clip``; a missing value (null, NaN, ±inf or
absent key) is imputed with z = 0, i.e. the training mean.

The absolute reconstruction error vector e = |z − ẑ| (one per participant-day for
rhythm models, one per participant-hour for hourly models) is what
``phenoflow.operators.scoring.calibration`` scores by Mahalanobis distance, after
averaging it within the model's error groups (:class:`ErrorSpace`).
"""

from __future__ import annotations

import hashlib
import json
import operator
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from phenoflow.core.errors import UserError
from phenoflow.core.timebase import local_day_iso

__all__ = [
    "METADATA_FORMAT", "SEQ_LEN", "WINDOW_SUFFIX", "features_of", "field_of", "raw_matrix", "FeatureSpec",
    "ErrorSpace", "lookup_space", "DayErrors", "OnnxScorer", "group_hours_by_day", "hourly_sequences"
]

#: Metadata format version written by models/export.py and understood here.
METADATA_FORMAT = "1"
#: Length of the GRU model's subsequences, hours (Adler et al.: 24-h subsequences).
SEQ_LEN = 24
#: The window suffix of a rhythm feature name: ``accel_mean.m10.w14`` → 14 (days).
WINDOW_SUFFIX = re.compile(r"\.w(\d+)$")


def features_of(record: Any) -> Mapping[str, Any]:
    """The ``features`` dict of a contract record (Struct) or of a plain dict."""
    feats = getattr(record, "features", None)
    if feats is None and isinstance(record, Mapping):
        feats = record.get("features")
    if feats is None:
        raise TypeError(f"record without a `features` mapping: {type(record).__name__}")
    return feats


def field_of(record: Any, name: str) -> Any:
    """Field ``name`` of a contract record (Struct) or of a plain dict; None when absent."""
    if isinstance(record, Mapping):
        return record.get(name)
    return getattr(record, name, None)


#: Context inputs of hourly models, as in the seed (Adler et al. 2020): hour of day as
#: sin/cos of 2π·local_hour/24, day of week (Monday = 0), and ``filled`` — taken from the
#: record's fields, not its ``features``. Training adds them for ``--input hourly``.
CONTEXT_INPUTS: tuple[str, ...] = ("ctx.hour_sin", "ctx.hour_cos", "ctx.weekday", "ctx.filled")


def _context_column(records: Sequence[Any], name: str) -> np.ndarray:
    """One context input (:data:`CONTEXT_INPUTS`) of each record, float64, NaN where the field is absent."""
    field = {"ctx.hour_sin": "local_hour", "ctx.hour_cos": "local_hour", "ctx.weekday": "weekday",
             "ctx.filled": "filled"}[name]
    raw = np.array([np.nan if (v := field_of(r, field)) is None else float(v) for r in records], np.float64)
    if name == "ctx.hour_sin":
        return np.sin(2.0 * np.pi * raw / 24.0)
    if name == "ctx.hour_cos":
        return np.cos(2.0 * np.pi * raw / 24.0)
    return raw


def raw_matrix(records: Iterable[Any], names: Sequence[str]) -> np.ndarray:
    """Values of features ``names`` (in order) of each record, float64, NaN where missing.

    Names in :data:`CONTEXT_INPUTS` come from the record's fields (hour, weekday, filled).
    """
    ctx = [i for i, n in enumerate(names) if n in CONTEXT_INPUTS]
    if ctx:
        recs = list(records)
        plain = [n for n in names if n not in CONTEXT_INPUTS]
        out = np.empty((len(recs), len(names)), np.float64)
        rest = [i for i in range(len(names)) if i not in set(ctx)]
        if plain:
            out[:, rest] = raw_matrix(recs, plain)
        for i in ctx:
            out[:, i] = _context_column(recs, names[i])
        return out
    get = operator.itemgetter(*names)
    single = len(names) == 1
    rows: list[Any] = []
    for rec in records:
        feats = features_of(rec)
        try:
            vals = get(feats)
            rows.append((vals,) if single else vals)
        except KeyError:  # a record without some keys: slower path, absent = missing
            rows.append(tuple(feats.get(n) for n in names))
    if not rows:
        return np.empty((0, len(names)), dtype=np.float64)
    # numpy turns None into NaN for a float dtype.
    return np.array(rows, dtype=np.float64)


@dataclass(frozen=True)
class FeatureSpec:
    """How records become model inputs; stored in, and read from, the ONNX metadata.

    ``groups[i]`` is the error-group index of feature i (``group_names`` its name):
    the calibration averages absolute errors within a group before the
    Mahalanobis distance (see operators/scoring/calibration.py).
    """

    names: tuple[str, ...]
    mean: np.ndarray
    sd: np.ndarray
    log: np.ndarray  # bool per feature: log1p(max(x, 0)) before standardising
    clip: float
    groups: np.ndarray  # int per feature
    group_names: tuple[str, ...]

    def __post_init__(self) -> None:
        p = len(self.names)
        for arr in (self.mean, self.sd, self.log, self.groups):
            if arr.shape != (p,):
                raise ValueError("feature spec arrays must have one entry per feature")

    def raw_matrix(self, records: Iterable[Any]) -> np.ndarray:
        """Feature values in ``names`` order, float64, NaN where missing (n × p)."""
        return raw_matrix(records, self.names)

    def transform(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw values → (standardised, imputed, clipped float32 inputs; observed mask)."""
        x = raw.astype(np.float64, copy=True)
        if self.log.any():
            cols = x[:, self.log]
            with np.errstate(invalid="ignore"):
                x[:, self.log] = np.log1p(np.maximum(cols, 0.0))  # NaN stays NaN
        with np.errstate(invalid="ignore", over="ignore"):
            z = (x - self.mean) / self.sd
        observed = np.isfinite(z)
        z[~observed] = 0.0
        np.clip(z, -self.clip, self.clip, out=z)
        return z.astype(np.float32), observed

    def vectorize(self, records: Iterable[Any]) -> np.ndarray:
        """Records → model input matrix (n × p, float32)."""
        return self.transform(self.raw_matrix(records))[0]

    # --- metadata round trip -------------------------------------------------------

    def to_metadata(self) -> dict[str, str]:
        """The spec as ONNX metadata strings (JSON values), read back by :meth:`from_metadata`."""
        return {
            "feature_names": json.dumps(list(self.names)),
            "mean": json.dumps([float(v) for v in self.mean]),
            "sd": json.dumps([float(v) for v in self.sd]),
            "log_features": json.dumps([int(b) for b in self.log]),
            "clip": repr(float(self.clip)),
            "error_groups": json.dumps(
                {"names": list(self.group_names), "index": [int(g) for g in self.groups]}
            ),
        }

    @classmethod
    def from_metadata(cls, meta: Mapping[str, str]) -> FeatureSpec:
        """The spec stored in a model's ONNX metadata by :meth:`to_metadata`."""
        groups = json.loads(meta["error_groups"])
        return cls(
            names=tuple(json.loads(meta["feature_names"])),
            mean=np.asarray(json.loads(meta["mean"]), dtype=np.float64),
            sd=np.asarray(json.loads(meta["sd"]), dtype=np.float64),
            log=np.asarray(json.loads(meta["log_features"]), dtype=bool),
            clip=float(meta["clip"]),
            groups=np.asarray(groups["index"], dtype=np.int64),
            group_names=tuple(groups["names"]),
        )


_SPACES: dict[str, ErrorSpace] = {}
_SPACES_LOCK = threading.Lock()


class ErrorSpace:
    """A model's error layout: feature names, error groups, threshold factor. Shared, immutable.

    Constructing one registers it by ``model_id`` so that :class:`ParticipantScorer`
    objects restored from a pickle (Bytewax recovery) find it again without each
    snapshot carrying hundreds of feature names.

    ``threshold_factor`` κ and ``factor_setup`` (the calibration settings κ was
    measured with at training, see operators/scoring/calibration.py) come from the model
    metadata; 1.0 / None for models without them.
    """

    __slots__ = ("model_id", "feature_names", "groups", "group_names", "_counts", "_perm",
                 "_starts", "_identity", "threshold_factor", "factor_setup")

    def __init__(
        self,
        model_id: str,
        feature_names: tuple[str, ...],
        groups: np.ndarray,
        group_names: tuple[str, ...],
        *,
        threshold_factor: float = 1.0,
        factor_setup: Mapping[str, Any] | None = None,
    ) -> None:
        self.model_id = model_id
        self.feature_names = tuple(feature_names)
        self.groups = np.asarray(groups, dtype=np.int64)
        self.group_names = tuple(group_names)
        self.threshold_factor = float(threshold_factor)
        self.factor_setup = dict(factor_setup) if factor_setup is not None else None
        k = len(self.group_names)
        if self.groups.shape != (len(self.feature_names),) or (
            self.groups.size and (self.groups.min() < 0 or self.groups.max() >= k)
        ):
            raise ValueError("every feature needs a group index in [0, number of groups)")
        self._counts = np.bincount(self.groups, minlength=k).astype(np.float64)
        if (self._counts == 0).any():
            raise ValueError("every error group needs at least one feature")
        # Columns sorted by group so that np.add.reduceat sums each group's run.
        # (phenoflow train orders features by group, so usually no permutation is needed).
        perm = np.argsort(self.groups, kind="stable")
        self._starts = np.searchsorted(self.groups[perm], np.arange(k))
        self._perm = None if np.array_equal(perm, np.arange(perm.size)) else perm
        self._identity = k == len(self.feature_names) and bool(
            np.array_equal(self.groups, np.arange(k))
        )
        with _SPACES_LOCK:
            _SPACES[model_id] = self

    @property
    def n_groups(self) -> int:
        """Number of error groups ``k``."""
        return len(self.group_names)

    def reduce(self, errors: np.ndarray) -> np.ndarray:
        """Mean absolute error per group: (…, p) → (…, k), float64."""
        E = np.asarray(errors, dtype=np.float64)
        if self._identity:
            return E
        if self._perm is not None:
            E = E[..., self._perm]
        return np.add.reduceat(E, self._starts, axis=-1) / self._counts


def lookup_space(model_id: str) -> ErrorSpace:
    """The registered :class:`ErrorSpace` of ``model_id`` (UserError if not loaded)."""
    with _SPACES_LOCK:
        space = _SPACES.get(model_id)
    if space is None:
        raise UserError(
            f"model {model_id} is not loaded — load it (OnnxScorer) before restoring "
            "participant scorers, or reset the recovery state after changing the model"
        )
    return space


@dataclass(frozen=True, slots=True)
class DayErrors:
    """One participant-day's absolute reconstruction errors, ready for calibration.

    ``errors`` has shape (p,) for rhythm models and (hours, p) for hourly models
    (one row per hour present); ``grouped`` the same averaged within the model's
    error groups (computed batch-wise). ``observed`` is the share of the day's model
    inputs that were observed: non-null features (rhythm) or hours with data,
    i.e. present and ``filled`` < 1, out of 24 (hourly).
    """

    participant: str
    day: str
    utc_offset_min: int | None
    errors: np.ndarray
    observed: float
    grouped: np.ndarray | None = None  # group-mean errors, (k,) or (hours, k)


_REQUIRED_META = ("feature_names", "mean", "sd", "log_features", "clip", "error_groups",
                  "input_kind", "model_kind")


class OnnxScorer:
    """A loaded phenoflow ONNX model: metadata, input preparation, batched errors.

    ``model_id`` (``<file stem>@<first 12 hex of the file's sha256>``) names the
    model in ``scores.daily`` and event ids; it changes whenever the file does.
    """

    def __init__(
        self, path: str | Path, *, intra_op_num_threads: int = 1, batch_size: int = 1024
    ) -> None:
        import onnxruntime as ort  # runtime dependency; imported here to keep import light

        self.path = Path(path)
        fix = f"train one with `phenoflow train COHORT --out {self.path}` or pass an existing .onnx"
        if not self.path.is_file():
            raise UserError(f"model file {self.path} not found — {fix}")
        blob = self.path.read_bytes()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = intra_op_num_threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(
                blob, sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # any ORT load failure is a bad file
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise UserError(
                f"model file {self.path} is not a valid ONNX model ({first}) — {fix}"
            ) from None
        meta = dict(self._session.get_modelmeta().custom_metadata_map)
        missing = [k for k in _REQUIRED_META if k not in meta]
        if missing:
            raise UserError(
                f"model file {self.path} lacks phenoflow metadata ({', '.join(missing)}) — "
                f"export it with `phenoflow train`, not plain torch.onnx.export"
            )
        self.metadata: dict[str, str] = meta
        try:
            self.spec = FeatureSpec.from_metadata(meta)
        except (ValueError, KeyError, TypeError) as exc:
            raise UserError(
                f"model file {self.path} has malformed phenoflow metadata ({exc}) — {fix}"
            ) from None
        self.input_kind: str = meta["input_kind"]
        self.model_kind: str = meta["model_kind"]
        if self.input_kind not in ("rhythm", "hourly") or self.model_kind not in (
            "autoencoder", "gru"
        ):
            raise UserError(
                f"model file {self.path} has input_kind={self.input_kind!r}, "
                f"model_kind={self.model_kind!r}; this phenoflow reads rhythm/hourly "
                f"autoencoder/gru models — {fix}"
            )
        self.batch_size = int(batch_size)
        self.model_id = f"{self.path.stem}@{hashlib.sha256(blob).hexdigest()[:12]}"
        try:
            factor = float(meta.get("threshold_factor", "1.0"))
            setup = json.loads(meta["threshold_setup"]) if "threshold_setup" in meta else None
        except (ValueError, TypeError) as exc:
            raise UserError(
                f"model file {self.path} has a malformed threshold factor ({exc}) — {fix}"
            ) from None
        self._space = ErrorSpace(self.model_id, self.spec.names, self.spec.groups,
                                 self.spec.group_names, threshold_factor=factor,
                                 factor_setup=setup)
        self._input = self._session.get_inputs()[0].name
        self._output = self._session.get_outputs()[0].name

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The model's input feature names, in input order."""
        return self.spec.names

    def error_space(self) -> ErrorSpace:
        """The model's :class:`~phenoflow.operators.scoring.calibration.ErrorSpace` (registered)."""
        return self._space

    def vectorize(self, records: Sequence[Any]) -> np.ndarray:
        """Records (RhythmDaily or HourlyFeatures) → inputs (n × p, float32)."""
        return self.spec.vectorize(records)

    def reconstruct(self, X: np.ndarray) -> np.ndarray:
        """Model output x̂ for inputs X ((n, p) or (n, 24, p) for GRU), one ORT run per batch."""
        X = np.ascontiguousarray(X, dtype=np.float32)
        if X.shape[0] == 0:
            return X.copy()
        if X.shape[0] <= self.batch_size:
            return self._session.run([self._output], {self._input: X})[0]
        parts = [
            self._session.run([self._output], {self._input: X[i : i + self.batch_size]})[0]
            for i in range(0, X.shape[0], self.batch_size)
        ]
        return np.concatenate(parts, axis=0)

    def reconstruction_errors(self, X: np.ndarray) -> np.ndarray:
        """Absolute reconstruction errors |x − x̂|, same shape as X (float32)."""
        X = np.ascontiguousarray(X, dtype=np.float32)
        return np.abs(X - self.reconstruct(X))

    # --- whole days ------------------------------------------------------------------

    def day_errors(self, records: Sequence[Any]) -> list[DayErrors]:
        """Error vectors per participant-day, in first-seen (participant, day) order.

        Rhythm models: one RhythmDaily per day. Hourly models: the day's
        HourlyFeatures (grouped by participant and local day); the GRU model
        reconstructs the day's 24-h subsequence (local hours 0–23, absent hours
        imputed) and keeps the error rows of the hours present.
        """
        if not records:
            return []
        if self.input_kind == "rhythm":
            X, obs = self.spec.transform(self.spec.raw_matrix(records))
            E = self.reconstruction_errors(X)
            G = self._space.reduce(E)
            frac = obs.mean(axis=1) if obs.shape[1] else np.ones(len(records))
            return [
                DayErrors(field_of(r, "participant"), field_of(r, "day"),
                          field_of(r, "utc_offset_min"), E[i], float(frac[i]), G[i])
                for i, r in enumerate(records)
            ]
        days = group_hours_by_day(records)
        out: list[DayErrors] = []
        if self.model_kind == "gru":
            seqs, present = hourly_sequences(self.spec, [hours for _, hours in days])
            E = self.reconstruction_errors(seqs)
            G = self._space.reduce(E)
            for j, ((pid, day, off), hours) in enumerate(days):
                out.append(DayErrors(pid, day, off, E[j][present[j]], _hour_share(hours),
                                     G[j][present[j]]))
            return out
        X = self.vectorize([r for _, hours in days for r in hours])
        E = self.reconstruction_errors(X)
        G = self._space.reduce(E)
        i = 0
        for (pid, day, off), hours in days:
            j = i + len(hours)
            out.append(DayErrors(pid, day, off, E[i:j], _hour_share(hours), G[i:j]))
            i = j
        return out


def _hour_share(hours: Sequence[Any]) -> float:
    """Share of a day's 24 hours present with some observed data (``filled`` < 1)."""
    return sum(1 for h in hours if (field_of(h, "filled") or 0.0) < 1.0) / SEQ_LEN


def group_hours_by_day(
    records: Iterable[Any],
) -> list[tuple[tuple[str, str, int | None], list[Any]]]:
    """HourlyFeatures → [((participant, local day, utc_offset_min), hours)], first-seen order."""
    groups: dict[tuple[str, str], tuple[int | None, list[Any]]] = {}
    for r in records:
        off = field_of(r, "utc_offset_min")
        key = (field_of(r, "participant"), local_day_iso(field_of(r, "hour_start"), off))
        if key not in groups:
            groups[key] = (off, [])
        groups[key][1].append(r)
    return [((pid, day, off), hours) for (pid, day), (off, hours) in groups.items()]


def hourly_sequences(
    spec: FeatureSpec, days: Sequence[Sequence[Any]]
) -> tuple[np.ndarray, np.ndarray]:
    """Days of hourly records → (inputs (n, 24, p) float32, present mask (n, 24) bool).

    Row h of a day is local hour h (``local_hour``); an absent hour is imputed
    (all z = 0) and marked not present; a repeated local hour (DST) keeps the last.
    """
    p = len(spec.names)
    seqs = np.zeros((len(days), SEQ_LEN, p), dtype=np.float32)
    present = np.zeros((len(days), SEQ_LEN), dtype=bool)
    flat = [r for hours in days for r in hours]
    X = spec.vectorize(flat)
    i = 0
    for j, hours in enumerate(days):
        for r in hours:
            h = int(field_of(r, "local_hour"))
            seqs[j, h] = X[i]
            present[j, h] = True
            i += 1
    return seqs, present
