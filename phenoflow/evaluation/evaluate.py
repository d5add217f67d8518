"""``phenoflow evaluate``: emitted anomaly flags against relapse labels, per participant.

Reads a cohort's topic dumps (:mod:`phenoflow.evaluation.dumps`), runs the
streaming count or the Adler protocol (:mod:`phenoflow.evaluation.protocol`),
the optional model comparison (:mod:`phenoflow.evaluation.compare`) and the
feature explanations (:mod:`phenoflow.evaluation.explain`). Rendering the
result is :mod:`phenoflow.reports`.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np

from phenoflow.connectors.cohort import read_labels
from phenoflow.core.errors import UserError
from phenoflow.evaluation.adherence import AdherenceResult, adherence, read_score_records
from phenoflow.evaluation.burden import BurdenRow, alert_burden
from phenoflow.evaluation.compare import compare_models, parse_models
from phenoflow.evaluation.detection import Confusion, Spread
from phenoflow.evaluation.dumps import (
    CohortDays,
    FeatureTable,
    days_before_relapse,
    load_cohort,
    load_feature_table,
    resolve_outputs,
)
from phenoflow.evaluation.explain import daily_matrix, explain, trajectories
from phenoflow.evaluation.protocol import (
    GUARD_DAYS,
    SplitFractions,
    fitted_days,
    make_splits,
    run_protocol,
    streaming_rates,
)
from phenoflow.evaluation.provenance import InSample, check_in_sample, write_thresholds
from phenoflow.evaluation.uncertainty import (
    PERMUTATIONS,
    RESAMPLES,
    Interval,
    NullResult,
    bootstrap_intervals,
    confusion_arrays,
    draw_shifts,
    median_rows,
    permutation_null,
    ratios,
    summarise_null,
)

#: Default permutations of the Adler-protocol null (each re-runs splits and τ search).
ADLER_PERMUTATIONS = 100

__all__ = ["ADLER_PERMUTATIONS", "EvaluationResult", "ParticipantRow", "evaluate_dir"]


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
    intervals: dict[str, Interval] = field(default_factory=dict)  # bootstrap, see uncertainty.py
    null: NullResult | None = None
    provenance: InSample | None = None
    adherence: AdherenceResult | None = None
    burden: list[BurdenRow] = field(default_factory=list)
    resamples: int = 0

    @property
    def in_sample(self) -> bool:
        """True when the stream's τ were fitted on this cohort's labels (allowed by --allow-in-sample)."""
        return self.provenance is not None and self.provenance.in_sample

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


def _null_spans(cohort: CohortDays, horizon: int = 30) -> list[int]:
    return [int((cohort.day[sl][-1] - cohort.day[sl][0]).astype(np.int64)) + 1 + horizon
            for sl in map(cohort.slice, range(len(cohort.participants)))]


def streaming_null(cohort: CohortDays, conf: list[Confusion], permutations: int, seed: int) -> NullResult:
    """Median TPR/FPR of the emitted flags against circularly shifted relapse dates (uncertainty.py)."""
    per_p = []
    for p, pid in enumerate(cohort.participants):
        sl = cohort.slice(p)
        d0 = cohort.day[sl][0]
        per_p.append(((cohort.day[sl] - d0).astype(np.int64), cohort.flagged[sl],
                      (cohort.relapses[pid] - d0).astype(np.int64)))
    return permutation_null(per_p, confusion_arrays(conf), permutations, seed)


def adler_null(cohort: CohortDays, permutations: int, iterations: int, seed: int,
               fractions: SplitFractions) -> NullResult:
    """The whole Adler protocol (blocked splits, τ search) re-run on shifted labels, ``iterations`` splits each.

    τ is re-fitted on every permutation: the search itself inflates TPR/FPR, and
    the null must include that.
    """
    def stat(conf: list[Confusion]) -> float:
        return float(median_rows(ratios(confusion_arrays(conf))[2][None, :])[0])

    spans = _null_spans(cohort)
    shifts = draw_shifts(spans, permutations, seed)
    null = np.empty(permutations)
    for k in range(permutations):
        relapses = {}
        for p, pid in enumerate(cohort.participants):
            d0 = cohort.day[cohort.slice(p)][0]
            rel = (cohort.relapses[pid] - d0).astype(np.int64)
            relapses[pid] = np.sort(d0 + (rel + shifts[k, p]) % spans[p]) if rel.size else cohort.relapses[pid]
        before = np.concatenate([days_before_relapse(cohort.day[cohort.slice(p)], relapses[pid])
                                 for p, pid in enumerate(cohort.participants)])
        perm = dataclasses.replace(cohort, days_before=before, relapses=relapses)
        res = run_protocol(perm, make_splits(perm, iterations, seed, fractions), lambda i: cohort.score)
        null[k] = stat(res.confusion)
    # the observed value with the same number of splits, so both sides have the same noise
    real = run_protocol(cohort, make_splits(cohort, iterations, seed, fractions), lambda i: cohort.score)
    return summarise_null(stat(real.confusion), null)


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
    resamples: int = RESAMPLES,
    permutations: int | None = None,
    null_iterations: int = 5,
    thresholds: Sequence[Path] = (),
    allow_in_sample: bool = False,
) -> EvaluationResult:
    """Evaluate emitted anomaly flags against ``DIR/labels.csv`` (see module doc and docs/evaluation.md).

    ``protocol="streaming"`` counts the published events on every evaluated
    day; ``"adler"`` runs :func:`run_protocol` on ``iterations`` Monte Carlo
    splits of the published scores and can write the fitted thresholds
    (``thresholds_out``: JSON {participant: τ}, the file the scoring stage
    loads, with its provenance: :mod:`phenoflow.evaluation.provenance`). ``compare``
    (model names, see :mod:`phenoflow.evaluation.compare`) adds the model
    comparison on ``compare_iterations`` shared splits.

    Every figure gets a participant-bootstrap interval (``resamples``) and the
    median TPR/FPR a permutation null (``permutations``, default 1,000; the
    Adler protocol re-runs itself on each of, by default, 100 permutations with
    ``null_iterations`` splits)
    (:mod:`phenoflow.evaluation.uncertainty`). A stream whose τ came from a
    thresholds file fitted on this cohort's labels is refused (UserError)
    unless ``allow_in_sample``; ``thresholds`` are such files to check against.
    """
    t0 = time.perf_counter()
    if protocol not in ("streaming", "adler"):
        raise UserError(f"unknown protocol {protocol!r} — use streaming or adler")
    if iterations < 1 or compare_iterations < 1 or null_iterations < 1:
        raise UserError("iterations must be ≥ 1 — pass e.g. --iterations 100")
    if permutations is None:  # the Adler null re-runs the protocol: bounded to stay within seconds
        permutations = PERMUTATIONS if protocol == "streaming" else ADLER_PERMUTATIONS
    if resamples < 100 or permutations < 0:
        raise UserError("bootstrap resamples must be ≥ 100 and permutations ≥ 0 — pass e.g. "
                        "--resamples 1000 --permutations 1000")
    if thresholds_out is not None and protocol != "adler":
        raise UserError("thresholds are fitted by the Monte Carlo protocol — add --protocol adler")
    models = parse_models(compare) if compare else []
    out = resolve_outputs(dir, outputs)
    cohort = load_cohort(out, read_labels(Path(dir) / "labels.csv"))
    notes = list(cohort.notes)
    records = read_score_records(out)
    # every evaluated participant, also those without relapse (their τ may come from the others' labels)
    prov = check_in_sample(records.sources, records.source_participants, cohort.relapses, Path(dir),
                           [Path(t) for t in thresholds], allow_in_sample)
    if prov.in_sample:
        notes.append(f"IN-SAMPLE: the thresholds of {len(prov.participants)} participant(s) were fitted on this "
                     "cohort's own labels (--allow-in-sample); these figures overstate real performance")
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
        assert roles is not None  # need ≥ iterations ≥ 1 under the adler protocol
        res = run_protocol(cohort, roles[:iterations], lambda i: cohort.score)
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
    inputs = {i for k, i in models if k != "emitted"}  # parse_models admits only rhythm or hourly here
    feature_inputs: tuple[Literal["rhythm", "hourly"], ...] = ("hourly", "rhythm")  # sorted, as before: notes keep their order
    for inp in feature_inputs:
        if inp in inputs:
            tables[inp] = load_feature_table(out, inp, cohort, notes)
    # roles is set whenever models are compared (need ≥ compare_iterations ≥ 1)
    comparison = compare_models(cohort, roles[:compare_iterations], models, tables, seed) if models and roles is not None else []
    wanted = {pid for pid in cohort.participants if cohort.relapses[pid].size}
    table = _explain_table(out, cohort, wanted, tables, notes)
    daily = daily_matrix(table, cohort.day.size) if table is not None else None
    names = table.names if table is not None else []
    expl = explain(cohort, flagged, daily, names) if daily is not None else []
    if expl:
        notes.append(f"Cohen's d explanations are descriptive: the largest |d| of {len(names):,} features, with no "
                     "null reference" + (", on flags from the final τ, which was fitted on these same days"
                                         if protocol == "adler" else ""))
    trajs = trajectories(cohort, flagged, threshold, daily, names, expl)
    if thresholds_out is not None:
        split = {"protocol": "adler", "seed": seed, "iterations": iterations, "guard_days": GUARD_DAYS,
                 **dataclasses.asdict(fractions)}
        assert roles is not None  # thresholds_out needs the adler protocol, so need ≥ iterations ≥ 1
        fit = fitted_days(cohort, roles[:iterations])
        write_thresholds(Path(thresholds_out), taus, cohort.relapses, split,
                         {pid: fit[p] for p, pid in enumerate(cohort.participants)}, cohort_dir=Path(dir))
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
    result.intervals = bootstrap_intervals(confusion_arrays(conf), resamples, seed)
    result.resamples = resamples
    if permutations:
        result.null = (streaming_null(cohort, conf, permutations, seed) if protocol == "streaming"
                       else adler_null(cohort, permutations, min(null_iterations, iterations), seed, fractions))
    result.provenance = prov
    result.adherence = adherence(out, cohort, records)
    result.burden = alert_burden(out, cohort, records, resamples, seed)
    if thresholds_out is not None:
        result.files.append(Path(thresholds_out))
    result.seconds = time.perf_counter() - t0
    return result
