"""Scoring throughput, participant-days/s on one core: batched (1,024) vs one at a time.

Run: ``.venv/bin/python benchmarks/bench_scoring.py [--model models/default.onnx]``.
Without ``--model`` it exports an untrained autoencoder of the default rhythm
size (the 2,022 rhythm features of the default modalities in windows 2, 6 and
14 days: 854 inputs, 127 error groups, hidden 40) — inference cost does not
depend on the weights' values. Stages:

- vectorize: RhythmDaily dicts → standardised matrix (Python dict look-ups);
- inference: ONNX Runtime |x − x̂|, one run per batch vs one run per day;
- Mahalanobis: per-participant distance, batched (``distances``) vs ``update``;
- end to end: vectorize + inference + ``ParticipantScorer.update`` per day,
  the path the score flow runs, batched vs one at a time.

The peer for each batched figure is the same work one participant-day at a time
in the same run, both timed as the best of ``--repeats`` runs (default 3); the
ratio is printed. Goal: ≥ 50,000 participant-days/s
batched for inference + Mahalanobis.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")  # one core, before numpy loads its BLAS

import argparse
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from phenoflow.core.contract import RhythmDaily
from phenoflow.operators.scoring.calibration import CalibrationConfig, ParticipantScorer
from phenoflow.operators.scoring.reconstruction import FeatureSpec, OnnxScorer


def synthetic_model(path: Path, hidden: int) -> Path:
    """Export an untrained DenseAutoencoder over the default rhythm inputs (needs the train extra).

    Inputs: every rhythm.daily feature name of the default modalities in the
    default windows (2, 6, 14 days), grouped as ``phenoflow train`` groups them.
    """
    from phenoflow.models.autoencoder import DenseAutoencoder, deterministic
    from phenoflow.models.export import export_onnx
    from phenoflow.models.train import DEFAULT_WINDOWS, _window_filter, error_group
    from phenoflow.operators.rhythm.statistics import feature_names

    raw = sorted(_window_filter(feature_names(), DEFAULT_WINDOWS))
    group_names = tuple(dict.fromkeys(error_group(n, "rhythm") for n in raw))
    index = {g: i for i, g in enumerate(group_names)}
    names = tuple(sorted(raw, key=lambda n: (index[error_group(n, "rhythm")], n)))  # as train does
    group_of = [error_group(n, "rhythm") for n in names]
    p = len(names)
    spec = FeatureSpec(names, np.zeros(p), np.ones(p), np.zeros(p, bool), 10.0,
                       np.array([index[g] for g in group_of]), group_names)
    with deterministic(0):
        model = DenseAutoencoder(p, hidden)
    meta = {**spec.to_metadata(), "input_kind": "rhythm", "model_kind": "autoencoder"}
    return export_onnx(model, np.zeros((2, p)), path, meta)


def rate(n: int, fn: Callable[[], object], repeat: int) -> float:
    """Items per second of ``fn`` (which handles ``n`` items), best of ``repeat`` runs."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path)
    ap.add_argument("--hidden", type=int, default=40)
    ap.add_argument("--participants", type=int, default=1024)
    ap.add_argument("--days", type=int, default=8, help="scored days per participant")
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=3,
                    help="best of N runs, the same N for batched and one-at-a-time")
    args = ap.parse_args()

    tmp = tempfile.TemporaryDirectory()
    path = args.model or synthetic_model(Path(tmp.name) / "bench.onnx", args.hidden)
    scorer = OnnxScorer(path, intra_op_num_threads=1, batch_size=args.batch)
    spec = scorer.spec
    p, k = len(spec.names), len(spec.group_names)
    rng = np.random.default_rng(0)
    n_cal = CalibrationConfig().calibration_days
    start = date(2024, 1, 1)

    def day_records(d: int) -> list[RhythmDaily]:
        X = rng.normal(size=(args.participants, p))
        return [RhythmDaily(participant=f"p{j}", day=(start + timedelta(days=d)).isoformat(),
                            features=dict(zip(spec.names, map(float, X[j]), strict=True)), coverage={"w14": 1.0})
                for j in range(args.participants)]

    # calibrate every participant on 14 days (not timed)
    space = scorer.error_space()
    states = {f"p{j}": ParticipantScorer(f"p{j}", space) for j in range(args.participants)}
    for d in range(n_cal):
        for e in scorer.day_errors(day_records(d)):
            states[e.participant].update_day(e)
    # streaming order: day-major, each day one record per participant
    recs = [r for d in range(n_cal, n_cal + args.days) for r in day_records(d)]
    n = len(recs)
    X = scorer.vectorize(recs)
    E = scorer.reconstruction_errors(X)
    print(f"model: {p} inputs, {k} error groups, batch {args.batch}, {args.participants} participants, "
          f"{n} participant-days")

    b = args.batch
    batches = [recs[i : i + b] for i in range(0, n, b)]
    r_vec_b = rate(n, lambda: [scorer.vectorize(c) for c in batches], repeat=args.repeats)
    r_vec_1 = rate(n, lambda: [scorer.vectorize([r]) for r in recs], repeat=args.repeats)
    r_inf_b = rate(n, lambda: [scorer.reconstruction_errors(X[i : i + b]) for i in range(0, n, b)], repeat=args.repeats)
    r_inf_1 = rate(n, lambda: [scorer.reconstruction_errors(X[i : i + 1]) for i in range(n)], repeat=args.repeats)
    # Mahalanobis: batched = one call per participant over its days; streaming = update per day
    by_pid: dict[str, list[int]] = {}
    for i, r in enumerate(recs):
        by_pid.setdefault(r.participant, []).append(i)
    r_mah_b = rate(n, lambda: [states[pid].distances(E[idx]) for pid, idx in by_pid.items()], repeat=args.repeats)
    r_mah_1 = rate(n, lambda: [states[r.participant].distances(E[i]) for i, r in enumerate(recs)], repeat=args.repeats)

    def inf_mah_batched() -> None:
        for i in range(0, n, b):
            Eb = scorer.reconstruction_errors(X[i : i + b])
            Gb = space.reduce(Eb)  # group errors for the whole batch at once
            for j, r in enumerate(recs[i : i + b]):
                states[r.participant].score_day(Eb[j], Gb[j])

    r_im_b = rate(n, inf_mah_batched, repeat=args.repeats)
    r_im_1 = rate(n, lambda: [states[r.participant].score_day(scorer.reconstruction_errors(X[i : i + 1])[0])
                              for i, r in enumerate(recs)], repeat=args.repeats)

    import pickle

    snapshot = pickle.dumps(states)

    def end_to_end(batch: int) -> Callable[[], None]:
        def run() -> None:
            st = pickle.loads(snapshot)  # fresh state each repeat: days are not replays
            for i in range(0, n, batch):
                for e in scorer.day_errors(recs[i : i + batch]):
                    st[e.participant].update_day(e)
        return run

    r_e2e_b = rate(n, end_to_end(b), repeat=args.repeats)
    r_e2e_1 = rate(n, end_to_end(1), repeat=args.repeats)
    rows = [
        ("vectorize (dict → matrix)", r_vec_b, r_vec_1),
        ("inference |x − x̂| (ORT)", r_inf_b, r_inf_1),
        ("Mahalanobis distance", r_mah_b, r_mah_1),
        ("inference + Mahalanobis", r_im_b, r_im_1),
        ("end to end (vectorize+ORT+update)", r_e2e_b, r_e2e_1),
    ]
    print(f"{'stage':36} {'batched/s':>12} {'one-at-a-time/s':>16} {'ratio':>7}")
    for name, rb, r1 in rows:
        print(f"{name:36} {rb:12,.0f} {r1:16,.0f} {rb / r1:7.1f}")
    print(f"goal ≥ 50,000 participant-days/s batched (inference + Mahalanobis): "
          f"{'met' if r_im_b >= 50_000 else 'NOT met'} ({r_im_b:,.0f}/s)")
    print(f"per-participant state after calibration: {len(snapshot) / args.participants:,.0f} bytes pickled")


if __name__ == "__main__":
    main()
