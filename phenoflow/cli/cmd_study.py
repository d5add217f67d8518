"""Research commands: ``rhythm``, ``demo``, ``evaluate``, ``audit``, ``train``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from phenoflow.cli.app import ConfigOpt, app, err, out, settings_from_flags
from phenoflow.core.errors import UserError

if TYPE_CHECKING:  # for annotations only: commands import their work lazily to start fast
    from phenoflow.core.config import Settings
    from phenoflow.demo.run_demo import DemoResult

__all__ = ["rhythm", "demo", "evaluate", "audit", "train"]


@app.command()
def rhythm(
    hourly_csv: Path = typer.Argument(..., help="CSV: a `time` column (local hour start, ISO 8601) and one column per modality."),
    out_file: Optional[Path] = typer.Option(None, "--out", help="Write JSON lines here instead of stdout."),
    min_coverage: Optional[float] = typer.Option(None, "--min-coverage", help="Below this share of valid hours a window's statistic is null (default: $PHENOFLOW_RHYTHM_MIN_COVERAGE, config rhythm_min_coverage, else 0.5)."),
    count_columns: Optional[str] = typer.Option(None, "--count-columns", help="Comma-separated columns without IS/IV (default: $PHENOFLOW_COUNT_COLUMNS, config count_columns, else every column gets them)."),
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Rhythm statistics offline on any hourly series: one JSON line per local day."""
    from phenoflow.offline.rhythm_csv import rhythm_from_csv

    settings = settings_from_flags(None, config, count_columns=count_columns, rhythm_min_coverage=min_coverage)
    counts = [c.strip() for c in settings.count_columns.split(",") if c.strip()]
    n = rhythm_from_csv(hourly_csv, out_file, count_columns=counts, min_coverage=settings.rhythm_min_coverage)
    if out_file is not None:
        err.print(f"wrote {n:,} days to {out_file}")


@app.command()
def demo(
    out_dir: Path = typer.Option(Path("demo-output"), "--out", help="Where the cohort and topic dumps go."),
    participants: int = typer.Option(12, help="Simulated participants."),
    days: int = typer.Option(90, help="Simulated days per participant."),
    seed: int = typer.Option(7, help="Random seed."),
    dashboard: bool = typer.Option(False, "--dashboard", help="Afterwards keep the broker and serve the clinician dashboard on it."),
    port: int = typer.Option(8050, help="Dashboard port (with --dashboard)."),
) -> None:
    """One command: embedded broker, simulated cohort, replay, all stages, summary."""
    import shutil
    import time

    from phenoflow.demo.run_demo import run_demo

    if out_dir.exists():
        shutil.rmtree(out_dir)
    t0 = time.perf_counter()
    if dashboard:
        from phenoflow.dashboard.server import check_port

        check_port("127.0.0.1", port)
    with err.status("starting") as status:
        def then(settings: Settings, result: DemoResult) -> None:  # inside the demo, while its broker runs
            status.stop()
            _demo_summary(result, out_dir, t0)
            _demo_dashboard(settings, port)

        result = run_demo(out_dir, participants=participants, days=days, seed=seed,
                          status=lambda msg: status.update(msg), then=then if dashboard else None)
    if not dashboard:
        _demo_summary(result, out_dir, t0)


def _demo_dashboard(settings: Settings, port: int) -> None:
    """Serve the dashboard on the demo's broker until Ctrl-C, with a fresh token."""
    import dataclasses
    import secrets

    from phenoflow.dashboard.server import Dashboard

    token = secrets.token_urlsafe(18)
    dash = Dashboard(dataclasses.replace(settings, dashboard_token=token), token=token, clock="data")
    out.print(f"dashboard: http://127.0.0.1:{port}/?token={token}   (Ctrl-C stops it and the demo broker)")
    try:
        dash.run("127.0.0.1", port)
    except KeyboardInterrupt:
        pass


def _demo_summary(result: DemoResult, out_dir: Path, t0: float) -> None:
    import time

    from rich.table import Table

    table = Table(title="phenoflow demo — per participant")
    for col in ("participant", "relapses", "scored days", "anomalous", "first alert (d before)", "step-ups s/p"):
        table.add_column(col, overflow="fold")
    for s in result.participants:
        table.add_row(
            s.participant,
            ", ".join(d.isoformat() for d in s.relapses) or "—",
            str(s.days_scored),
            str(len(s.anomalous_days)),
            ", ".join("none" if x is None else str(x) for x in s.lead_days) or "—",
            f"{s.stepups['survey']}/{s.stepups['passive']}",
        )
    out.print(table)
    c = result.counts
    out.print(f"replayed {result.replay.total:,} raw messages ({result.replay.rate:,.0f} msg/s); "
              f"dataflow wrote {c.get('features.hourly', 0):,} hourly records, {c.get('rhythm.daily', 0):,} rhythm days, "
              f"{c.get('scores.daily', 0):,} scores, {c.get('events.anomaly', 0):,} anomaly and "
              f"{c.get('events.stepup', 0):,} step-up events, {c.get('deadletter', 0):,} dead letters")
    timing = ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items())
    out.print(f"wall time {time.perf_counter() - t0:.1f} s ({timing})")
    out.print(f"cohort: {out_dir / 'cohort'}   topic dumps: {out_dir / 'outputs'}   "
              f"next: phenoflow evaluate {out_dir / 'cohort'} --outputs {out_dir / 'outputs'}")


@app.command()
def evaluate(
    directory: Path = typer.Argument(..., help="Cohort directory with labels.csv."),
    outputs: Optional[Path] = typer.Option(None, help="Folder of topic dumps (default: DIR/outputs)."),
    protocol: str = typer.Option("streaming", help="streaming (emitted events) or adler (Monte Carlo τ fitting)."),
    iterations: int = typer.Option(100, help="Monte Carlo splits (adler protocol)."),
    seed: int = typer.Option(0, help="Seed of the splits."),
    thresholds_out: Optional[Path] = typer.Option(None, help="Write fitted per-participant thresholds (JSON; adler)."),
    report: Optional[Path] = typer.Option(None, help="HTML report file or folder (Markdown and CSV beside it)."),
    compare: Optional[str] = typer.Option(None, help="Models to compare on the same splits, e.g. emitted,lof:hourly,hst:rhythm,ae:rhythm."),
    compare_iterations: int = typer.Option(3, help="Monte Carlo splits for the model comparison."),
    resamples: int = typer.Option(1000, help="Participant-bootstrap resamples for the 95 % intervals."),
    permutations: Optional[int] = typer.Option(None, help="Label permutations for the null (0: none; default 1000, adler 100)."),
    null_iterations: int = typer.Option(5, help="Monte Carlo splits per permutation (adler protocol)."),
    thresholds: list[Path] = typer.Option([], "--thresholds", help="Thresholds file(s) the stream used, to check their provenance."),
    allow_in_sample: bool = typer.Option(False, "--allow-in-sample", help="Evaluate even if τ were fitted on this cohort's labels (marked in the report)."),
) -> None:
    """Sensitivity/specificity of the emitted anomalies against relapse labels (Adler et al. 2020),
    with bootstrap intervals, a permutation null, adherence and alert burden."""
    from phenoflow.evaluation.evaluate import evaluate_dir
    from phenoflow.reports.evaluation_report import (
        evaluation_markdown,
        write_evaluation_report,
    )

    if protocol not in ("streaming", "adler"):
        raise UserError(f"--protocol {protocol!r} is unknown — use streaming or adler")
    with err.status("evaluating…"):
        # protocol is one of the two names (checked above); the conditional gives mypy the literal type
        result = evaluate_dir(directory, outputs=outputs, protocol="adler" if protocol == "adler" else "streaming",
                              iterations=iterations, seed=seed,
                              thresholds_out=thresholds_out, compare=compare,
                              compare_iterations=compare_iterations, resamples=resamples,
                              permutations=permutations, null_iterations=null_iterations,
                              thresholds=thresholds, allow_in_sample=allow_in_sample)
        if report is not None:
            result.files += write_evaluation_report(result, report)
    out.print(evaluation_markdown(result))
    if result.in_sample:
        out.print("[bold red]IN-SAMPLE: thresholds were fitted on this cohort's own labels — "
                  "these figures overstate performance[/]")


@app.command()
def audit(
    directory: Path = typer.Argument(..., help="Cohort directory with participants.csv."),
    outputs: Optional[Path] = typer.Option(None, help="Folder of topic dumps (default: DIR/outputs)."),
    report: Optional[Path] = typer.Option(None, help="HTML report file or folder (Markdown beside it)."),
    min_group_share: float = typer.Option(0.1, help="Smallest group share of participants to test."),
) -> None:
    """Fairness audit: event rates per protected group, Fisher's exact test, Benjamini–Yekutieli."""
    from phenoflow.evaluation.audit import audit_dir
    from phenoflow.reports.audit_report import audit_markdown, write_audit_report

    result = audit_dir(directory, outputs=outputs, min_group_share=min_group_share)
    if report is not None:
        result.files = write_audit_report(result, report)
    out.print(audit_markdown(result))


@app.command()
def train(
    source: Path = typer.Argument(..., help="Cohort directory, or a rhythm.daily / features.hourly topic dump."),
    out_file: Path = typer.Option(..., "--out", help="ONNX file to write, e.g. models/NAME.onnx."),
    input_kind: str = typer.Option("rhythm", "--input", help="rhythm (default) or hourly."),
    model_kind: str = typer.Option("autoencoder", "--model", help="autoencoder or gru (hourly input)."),
    hidden: int = typer.Option(40, help="Hidden units (seed's best: 40)."),
    seed: int = typer.Option(0, help="Training seed (same seed and data → identical file)."),
    labels: Optional[Path] = typer.Option(None, help="labels.csv (default: the cohort's own)."),
) -> None:
    """Train the anomaly autoencoder on days of relative health and export it to ONNX."""
    try:
        from phenoflow.models.train import train_from_cohort
    except ImportError as exc:
        raise UserError(f"training needs PyTorch ({exc.name} is missing) — install the extra: "
                        "pip install 'phenoflow[train]'") from None
    if input_kind not in ("rhythm", "hourly"):
        raise UserError(f"--input {input_kind!r} is unknown — use rhythm or hourly")
    if model_kind not in ("autoencoder", "gru"):
        raise UserError(f"--model {model_kind!r} is unknown — use autoencoder or gru")
    with err.status("training…") as status:
        # both are one of their two names (checked above); the conditionals give mypy the literal types
        summary = train_from_cohort(source, out_file, input_kind="hourly" if input_kind == "hourly" else "rhythm",
                                    model_kind="gru" if model_kind == "gru" else "autoencoder",
                                    hidden=hidden, seed=seed, labels=labels,
                                    progress=lambda msg: status.update(msg))
    out.print(f"wrote {out_file}: {summary}")
