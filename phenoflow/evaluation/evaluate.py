"""``phenoflow evaluate``: emitted anomaly flags against relapse labels, per participant.

Reads a cohort's topic dumps (:mod:`phenoflow.evaluation.dumps`), runs the
streaming count or the Adler protocol (:mod:`phenoflow.evaluation.protocol`),
the optional model comparison (:mod:`phenoflow.evaluation.compare`) and the
feature explanations (:mod:`phenoflow.evaluation.explain`). Rendering the
result is :mod:`phenoflow.reports`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np

from phenoflow.connectors.cohort import read_labels
from phenoflow.core.errors import UserError
from phenoflow.evaluation.compare import compare_models, parse_models
from phenoflow.evaluation.detection import Confusion, Spread
from phenoflow.evaluation.dumps import (
    CohortDays,
    FeatureTable,
    load_cohort,
    load_feature_table,
    resolve_outputs,
)
from phenoflow.evaluation.explain import daily_matrix, explain, trajectories
from phenoflow.evaluation.protocol import (
    SplitFractions,
    make_splits,
    run_protocol,
    streaming_rates,
)

__all__ = ["EvaluationResult", "ParticipantRow", "evaluate_dir"]


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
    """Everything ``phenoflow evaluate`` reports; :mod:`phenoflow.reports` renders it."""

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
        """Spread of per-participant sensitivity."""
        return Spread.of([r.conf.sensitivity for r in self.participants])

    @property
    def specificity(self) -> Spread:
        """Spread of per-participant specificity."""
        return Spread.of([r.conf.specificity for r in self.participants])

    @property
    def tpr_fpr(self) -> Spread:
        """Spread of per-participant TPR/FPR."""
        return Spread.of([r.conf.tpr_fpr for r in self.participants])

    @property
    def pooled(self) -> Confusion:
        """Confusion counts summed over participants."""
        return sum((r.conf for r in self.participants), Confusion())



def _explain_table(out: Path, cohort: CohortDays, wanted: set[str], tables: dict[str, FeatureTable | None], notes: list[str]) -> FeatureTable | None:
    """Rhythm statistics (else hourly features) of the participants to explain."""
    for kind in ("rhythm", "hourly"):
        table = tables[kind] if kind in tables else load_feature_table(out, kind, cohort, notes, wanted)
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
    compare: Sequence[str] | str | None = None,
    compare_iterations: int = 10,
    fractions: SplitFractions = SplitFractions(),
) -> EvaluationResult:
    """Evaluate emitted anomaly flags against ``DIR/labels.csv`` (see module doc and docs/evaluation.md).

    ``protocol="streaming"`` counts the published events on every evaluated
    day; ``"adler"`` runs :func:`run_protocol` on ``iterations`` Monte Carlo
    splits of the published scores and can write the fitted thresholds
    (``thresholds_out``: JSON {participant: τ}, the file the scoring stage
    loads). ``compare`` (model names, see :mod:`phenoflow.evaluation.compare`) adds the
    model comparison on ``compare_iterations`` shared splits.
    """
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
    return result
