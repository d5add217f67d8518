"""``phenoflow train``: fit the anomaly model on days of relative health and export it to ONNX.

Adler et al. (JMIR mHealth 2020): the autoencoder learns what a participant-day
(or -hour) of relative health looks like; the 30 days before a known relapse
("near relapse", NR30) are excluded from training when labels are given. One
population model is trained; per-participant calibration happens at scoring
time (operators/scoring/calibration.py); its threshold factor κ is measured on the
training days and stored in the model. Feature preparation is documented in
models/README.md ("Inputs"). torch is imported lazily: importing this module
does not need the ``train`` extra, calling the training functions does.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

import msgspec
import numpy as np

import phenoflow
from phenoflow.connectors.cohort import read_labels
from phenoflow.core.errors import UserError
from phenoflow.core.timebase import local_day_iso
from phenoflow.operators.scoring.calibration import CalibrationConfig, estimate_threshold_factor
from phenoflow.operators.scoring.reconstruction import (
    CONTEXT_INPUTS,
    METADATA_FORMAT,
    SEQ_LEN,
    WINDOW_SUFFIX,
    FeatureSpec,
    OnnxScorer,
    features_of,
    field_of,
    group_hours_by_day,
    hourly_sequences,
    raw_matrix,
)

__all__ = [
    "InputKind", "ModelKind", "NEAR_RELAPSE_DAYS", "DEFAULT_WINDOWS", "TrainSummary", "is_near_relapse",
    "error_group", "fit_feature_spec", "data_sha256", "train_model", "load_topic_dump",
    "train_from_cohort"
]

InputKind = Literal["rhythm", "hourly"]
ModelKind = Literal["autoencoder", "gru"]

#: Days before a relapse that are "near relapse" and excluded from training (Adler: 30).
NEAR_RELAPSE_DAYS = 30
#: Default rhythm windows kept as model inputs (days); see README "Inputs" for why.
DEFAULT_WINDOWS: tuple[int, ...] = (2, 6, 14)
_PARAM = re.compile(r"\.(?:tau)?\d+(?:\.\d+)?$")  # sample-entropy scale or a bare number
_POWER = re.compile(r"^(.*)\.power\.p(\d+(?:\.\d+)?)$")


@dataclass(frozen=True)
class TrainSummary:
    """What ``train_model`` did; losses are mean squared errors in standardised units."""

    out: Path
    model_id: str
    input_kind: str
    model_kind: str
    n_features: int
    n_error_groups: int
    n_participants: int
    n_train: int  # training samples (days, hours or 24-h sequences)
    n_val: int
    n_near_relapse_excluded: int  # input records excluded as NR30
    dropped_mostly_null: int
    dropped_constant: int
    dropped_windows: int
    epochs: int
    best_epoch: int
    best_val_loss: float
    train_loss: float  # of the exported model, on the days it was trained on
    threshold_factor: float  # κ of the default calibration (1.0 if too few participants)
    data_sha256: str
    seed: int
    hidden: int
    seconds: float


def is_near_relapse(day: date, relapses: Iterable[date], days: int = NEAR_RELAPSE_DAYS) -> bool:
    """True iff ``day`` lies in [r − ``days``, r] for a relapse r (NR30 plus the relapse day)."""
    return any(timedelta(0) <= r - day <= timedelta(days=days) for r in relapses)


def error_group(name: str, input_kind: str, level: str = "modality") -> str:
    """Error group of a feature (the calibration averages errors within a group).

    ``level="modality"`` (default): one group per rhythm modality, across its
    statistics, parameters and windows: ``accel_mean.sampen.tau3.w14`` →
    ``accel_mean`` (why: models/README.md, "Error groups"). ``level="statistic"``:
    one rhythm statistic across windows and parameters, ``accel_mean.sampen``;
    periodogram powers by band — ultradian (P < 20 h), circadian (20–28 h),
    infradian (> 28 h): ``accel_mean.power.p22.w6`` → ``accel_mean.power.circadian``.
    Hourly features are their own group.
    """
    if input_kind != "rhythm":
        return name
    if level == "modality":
        return name.split(".", 1)[0]
    base = WINDOW_SUFFIX.sub("", name)
    power = _POWER.match(base)
    if power is not None:
        period = float(power.group(2))
        band = "ultradian" if period < 20 else "circadian" if period <= 28 else "infradian"
        return f"{power.group(1)}.power.{band}"
    while True:
        stripped = _PARAM.sub("", base)
        if stripped == base or not stripped:
            return base
        base = stripped


def _window_filter(names: Sequence[str], windows: Sequence[int] | None) -> list[str]:
    """Keep names without a window suffix or with one in ``windows`` (all if none match)."""
    if windows is None:
        return list(names)
    allowed = set(windows)
    kept = [n for n in names if (m := WINDOW_SUFFIX.search(n)) is None or int(m.group(1)) in allowed]
    has_allowed = any((m := WINDOW_SUFFIX.search(n)) and int(m.group(1)) in allowed for n in names)
    return kept if has_allowed else list(names)


def fit_feature_spec(
    raw: np.ndarray,
    names: Sequence[str],
    *,
    input_kind: str,
    max_null_frac: float = 0.5,
    clip: float = 10.0,
    log_skew: float = 2.0,
) -> tuple[FeatureSpec, int, int]:
    """Choose and standardise the model inputs from training rows (n × p raw, NaN = missing).

    Drops features missing in more than ``max_null_frac`` of the rows and
    near-constant ones (SD ≤ 1e-9·max(1, |mean|)); flags non-negative features
    with skewness > ``log_skew`` for log1p; orders the inputs by error group.
    Returns (spec, n mostly null, n constant).
    """
    from scipy.stats import skew

    null_frac = np.isnan(raw).mean(axis=0) if raw.shape[0] else np.ones(raw.shape[1])
    keep = null_frac <= max_null_frac
    n_null = int((~keep).sum())
    X = raw[:, keep]
    kept_names = [n for n, k in zip(names, keep, strict=True) if k]
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        # constant columns: skew warns about precision loss; they are dropped below anyway
        warnings.simplefilter("ignore", RuntimeWarning)
        mins = np.nanmin(X, axis=0) if X.size else np.zeros(X.shape[1])
        sk = skew(X, axis=0, nan_policy="omit", bias=True) if X.size else np.zeros(X.shape[1])
    log = (mins >= 0) & (np.nan_to_num(np.asarray(sk, dtype=float), nan=0.0) > log_skew)
    T = X.copy()
    T[:, log] = np.log1p(np.maximum(T[:, log], 0.0))
    mean = np.nanmean(T, axis=0)
    sd = np.nanstd(T, axis=0)
    varying = sd > 1e-9 * np.maximum(1.0, np.abs(mean))
    n_const = int((~varying).sum())
    final = [n for n, v in zip(kept_names, varying, strict=True) if v]
    if not final:
        raise UserError(
            "no usable features: every feature is mostly missing or constant in the training "
            "days — check the input data (e.g. a longer simulation with `--days`)"
        )
    group_of = [error_group(n, input_kind) for n in final]
    group_names = tuple(dict.fromkeys(group_of))  # first-seen order (names are sorted)
    index = {g: i for i, g in enumerate(group_names)}
    # Inputs ordered by group, so each group is one contiguous run (a cheap reduction).
    order = sorted(range(len(final)), key=lambda i: (index[group_of[i]], final[i]))
    spec = FeatureSpec(
        names=tuple(final[i] for i in order),
        mean=mean[varying][order],
        sd=sd[varying][order],
        log=log[varying][order],
        clip=clip,
        groups=np.array([index[group_of[i]] for i in order], dtype=np.int64),
        group_names=group_names,
    )
    return spec, n_null, n_const


def data_sha256(records: Iterable[Any], labels: Mapping[str, Sequence[date]] | None) -> str:
    """sha256 of the training input: every record's JSON (msgspec) in order, then the labels."""
    h = hashlib.sha256()
    enc = msgspec.json.Encoder()
    for rec in records:
        h.update(enc.encode(rec))
        h.update(b"\n")
    for pid, days in sorted((labels or {}).items()):  # ids are unique: sorted by id alone
        h.update(f"label:{pid}:{','.join(d.isoformat() for d in sorted(days))}\n".encode())
    return h.hexdigest()


def _day_of(rec: Any, input_kind: str) -> str:
    if input_kind == "rhythm":
        return str(field_of(rec, "day"))
    return local_day_iso(field_of(rec, "hour_start"), field_of(rec, "utc_offset_min"))


def _split_days(
    keys: Iterable[tuple[str, str]], val_frac: float
) -> set[tuple[str, str]]:
    """Held-out (participant, day) pairs: the last ``val_frac`` of each participant's days.

    A time-ordered split, not a random one: rhythm windows of neighbouring days
    overlap, so random held-out days would leak into training.
    """
    per: dict[str, set[str]] = {}
    for pid, day in keys:
        per.setdefault(pid, set()).add(day)
    val: set[tuple[str, str]] = set()
    for pid, days in per.items():
        ordered = sorted(days)
        n_val = int(len(ordered) * val_frac) if len(ordered) >= 5 else 0
        val.update((pid, d) for d in ordered[len(ordered) - n_val :] if n_val)
    return val


def train_model(
    records: Sequence[Any],
    labels: Mapping[str, list[date]] | None,
    out: str | Path,
    *,
    input_kind: InputKind = "rhythm",
    model_kind: ModelKind = "autoencoder",
    hidden: int = 40,
    seed: int = 0,
    max_epochs: int = 200,
    patience: int = 15,
    bottleneck: int | None = None,
    windows: Sequence[int] | None = DEFAULT_WINDOWS,
    max_null_frac: float = 0.5,
    val_frac: float = 0.2,
    batch_size: int = 64,
    lr: float = 1e-3,
    clip: float = 10.0,
    refit: bool = True,
) -> TrainSummary:
    """Train on healthy RhythmDaily (``rhythm``) or HourlyFeatures (``hourly``) records; export ONNX.

    ``model_kind="gru"`` (hourly input only) trains the GRU seq2seq model on the
    24-h subsequences of local days. Early stopping on held-out healthy days (the
    last ``val_frac`` of each participant's days) picks the number of epochs; with
    ``refit`` the exported model is then retrained from the same initial weights on
    all healthy days for that many epochs. Same inputs and seed → identical ONNX file.
    """
    t0 = time.perf_counter()
    if input_kind not in ("rhythm", "hourly"):
        raise UserError(f"unknown input kind {input_kind!r} — use rhythm or hourly")
    if model_kind not in ("autoencoder", "gru"):
        raise UserError(f"unknown model kind {model_kind!r} — use autoencoder or gru")
    if model_kind == "gru" and input_kind != "hourly":
        raise UserError("the GRU model reads 24-h subsequences of hourly features — use --input hourly")
    records = list(records)
    if not records:
        raise UserError("no training records — check that the cohort has data")
    try:
        import torch  # noqa: F401 - only checks that the optional `train` extra is installed
    except ImportError:
        raise UserError(
            "training needs PyTorch — install the train extra: pip install 'phenoflow[train]'"
        ) from None
    from phenoflow.models.autoencoder import DenseAutoencoder, GruSeq2Seq, deterministic, fit
    from phenoflow.models.export import export_onnx

    sha = data_sha256(records, labels)
    relapses = {pid: [d if isinstance(d, date) else date.fromisoformat(str(d)) for d in ds]
                for pid, ds in (labels or {}).items()}
    keys = [(str(field_of(r, "participant")), _day_of(r, input_kind)) for r in records]
    healthy = [
        i for i, (pid, day) in enumerate(keys)
        if not is_near_relapse(date.fromisoformat(day), relapses.get(pid, ()))
    ]
    excluded = len(records) - len(healthy)
    val_keys = _split_days((keys[i] for i in healthy), val_frac)
    train_idx = [i for i in healthy if keys[i] not in val_keys]
    val_idx = [i for i in healthy if keys[i] in val_keys]

    all_names = sorted({n for i in train_idx for n in features_of(records[i])})
    names = _window_filter(all_names, windows if input_kind == "rhythm" else None)
    if input_kind == "hourly" and names:
        names = names + list(CONTEXT_INPUTS)  # hour of day, day of week, filled: as the seed
    if not names:
        raise UserError("the training records carry no features — check the input data")
    spec, n_null, n_const = fit_feature_spec(
        raw_matrix((records[i] for i in train_idx), names), names,
        input_kind=input_kind, max_null_frac=max_null_frac, clip=clip,
    )
    if model_kind == "gru":
        tr_days = [h for _, h in group_hours_by_day(records[i] for i in train_idx)
                   if len(h) >= SEQ_LEN // 2]
        va_days = [h for _, h in group_hours_by_day(records[i] for i in val_idx)
                   if len(h) >= SEQ_LEN // 2]
        X_train = hourly_sequences(spec, tr_days)[0]
        X_val = hourly_sequences(spec, va_days)[0]
    else:
        X_train = spec.vectorize(records[i] for i in train_idx)
        X_val = spec.vectorize(records[i] for i in val_idx)
    if X_train.shape[0] < 8:
        raise UserError(
            f"only {X_train.shape[0]} training samples of relative health — use more days "
            "(e.g. `phenoflow simulate --days 120`)"
        )
    p = len(spec.names)

    def build() -> Any:
        with deterministic(seed):  # weight initialisation is seeded too
            if model_kind == "gru":
                return GruSeq2Seq(p, hidden)
            return DenseAutoencoder(p, hidden, bottleneck)

    model = build()
    result = fit(model, X_train, X_val, seed=seed, max_epochs=max_epochs, patience=patience,
                 batch_size=batch_size, lr=lr)
    final_loss = result.train_loss
    if refit and X_val.shape[0]:
        # Early stopping chose the epoch count; the shipped model then learns from every
        # healthy day for that many epochs, so no participant's days are a mix of seen
        # (training) and unseen (validation) days with different error levels.
        model = build()
        X_all = np.concatenate([X_train, X_val], axis=0)
        final = fit(model, X_all, X_all[:0], seed=seed, max_epochs=max(result.best_epoch, 1),
                    patience=max_epochs + 1, batch_size=batch_size, lr=lr)
        final_loss = final.train_loss
    meta = spec.to_metadata()
    meta.update(
        {
            "format": METADATA_FORMAT,
            "phenoflow_version": phenoflow.__version__,
            "input_kind": input_kind,
            "model_kind": model_kind,
            "hidden": str(hidden),
            "bottleneck": str(getattr(model, "bottleneck", "")),
            "seq_len": str(SEQ_LEN if model_kind == "gru" else 1),
            "seed": str(seed),
            "training_data_sha256": sha,
            "n_train": str(X_train.shape[0]),
            "n_val": str(X_val.shape[0]),
            "best_epoch": str(result.best_epoch),
            "best_val_loss": repr(result.best_val_loss),
            "refit_on_all_healthy_days": str(bool(refit and X_val.shape[0])).lower(),
            "near_relapse_days": str(NEAR_RELAPSE_DAYS),
        }
    )
    check = X_val[:256] if X_val.shape[0] else X_train[:256]
    path = export_onnx(model, X_train[:2], out, meta, check=check)
    # κ needs the exported model's errors on the training days; the file is then rewritten
    # with κ in its metadata (a second, deterministic export of the same weights).
    factor = _threshold_factor(path, records, relapses)
    meta.update(factor)
    path = export_onnx(model, X_train[:2], out, meta, check=check)
    model_id = f"{path.stem}@{hashlib.sha256(path.read_bytes()).hexdigest()[:12]}"
    return TrainSummary(
        out=path, model_id=model_id, input_kind=input_kind, model_kind=model_kind,
        n_features=p, n_error_groups=len(spec.group_names),
        n_participants=len({k[0] for k in keys}),
        n_train=int(X_train.shape[0]), n_val=int(X_val.shape[0]),
        n_near_relapse_excluded=excluded, dropped_mostly_null=n_null, dropped_constant=n_const,
        dropped_windows=len(all_names) - len(names), epochs=result.epochs,
        best_epoch=result.best_epoch, best_val_loss=result.best_val_loss,
        train_loss=final_loss, threshold_factor=float(factor["threshold_factor"]),
        data_sha256=sha, seed=seed, hidden=hidden,
        seconds=time.perf_counter() - t0,
    )


def _threshold_factor(path: Path, records: Sequence[Any],
                      relapses: Mapping[str, Sequence[date]]) -> dict[str, str]:
    """Metadata κ (``threshold_factor``) and its ``threshold_setup``: the default calibration
    replayed with the exported model on the training days of relative health, without
    NR30 and the days whose rhythm windows still reach back before a relapse."""
    scorer = OnnxScorer(path)
    lag = max((int(m.group(1)) for n in scorer.feature_names
               if (m := WINDOW_SUFFIX.search(n))), default=1) - 1

    def healthy(pid: str, day: str) -> bool:
        d = date.fromisoformat(day)
        return not any(-lag <= (r - d).days <= NEAR_RELAPSE_DAYS for r in relapses.get(pid, ()))

    config = CalibrationConfig()
    est = estimate_threshold_factor(scorer.day_errors(records), scorer.error_space(), config,
                                    healthy=healthy)
    factor, used = est if est is not None else (1.0, 0)
    return {"threshold_factor": repr(factor), "threshold_factor_participants": str(used),
            "threshold_setup": json.dumps(config.setup(), sort_keys=True)}


def load_topic_dump(path: Path, input_kind: InputKind) -> list[Any]:
    """JSON lines of ``rhythm.daily`` / ``features.hourly`` values → contract records."""
    from phenoflow.core.contract import DeadLetter, decode

    topic = "rhythm.daily" if input_kind == "rhythm" else "features.hourly"
    out: list[Any] = []
    with path.open("rb") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            rec = decode(topic, None, line.strip())
            if isinstance(rec, DeadLetter):
                raise UserError(
                    f"{path}:{n}: not a {topic} value ({rec.error}) — pass a cohort directory or a "
                    f"`phenoflow subscribe {topic} --out FILE` dump matching --input {input_kind}"
                )
            out.append(rec)
    return out


def train_from_cohort(
    cohort_dir: str | Path,
    out: str | Path,
    *,
    input_kind: InputKind = "rhythm",
    model_kind: ModelKind = "autoencoder",
    hidden: int = 40,
    seed: int = 0,
    labels: str | Path | None = None,
    max_epochs: int = 200,
    patience: int = 15,
    progress: Callable[[str], None] | None = None,
) -> TrainSummary:
    """``phenoflow train COHORT_OR_TOPIC --out FILE``: features offline, then :func:`train_model`.

    ``cohort_dir`` is a cohort directory (raw logs; hourly features are computed
    with ``phenoflow.offline.features`` and rhythm statistics with ``RhythmState``; its
    labels.csv, if present, excludes NR30 days) or a JSON-lines dump of the
    ``rhythm.daily`` / ``features.hourly`` topic. ``labels`` overrides labels.csv.
    """
    src = Path(cohort_dir)
    say = progress or (lambda _msg: None)
    if not src.exists():
        raise UserError(f"{src} not found — pass a cohort directory (`phenoflow simulate --out DIR`) "
                        "or a topic dump (`phenoflow subscribe rhythm.daily --out FILE`)")
    if src.is_file():
        say(f"reading {src}")
        records = load_topic_dump(src, input_kind)
    else:
        from phenoflow.offline.features import hourly_features_from_cohort

        say("computing hourly features")
        hourly = hourly_features_from_cohort(src)
        if input_kind == "rhythm":
            say("computing rhythm statistics")
            from phenoflow.offline.day_scores import rhythm_from_hourly

            records = rhythm_from_hourly(hourly)
        else:
            records = list(hourly)
    label_path = Path(labels) if labels is not None else (src / "labels.csv" if src.is_dir() else None)
    label_map = None
    if label_path is not None and (labels is not None or label_path.exists()):
        # participants without a relapse add nothing to exclude (and keep the data hash as before)
        label_map = {p: d for p, d in read_labels(label_path).items() if d}
    say(f"training on {len(records)} records")
    return train_model(records, label_map, out, input_kind=input_kind, model_kind=model_kind,
                       hidden=hidden, seed=seed, max_epochs=max_epochs, patience=patience)
