"""The remaining ``phenoflow`` commands: run, rhythm, train, evaluate, audit, demo."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

import typer

from phenoflow.cli import BootstrapOpt, ConfigOpt, _settings, app, err, out
from phenoflow.errors import UserError


@app.command()
def run(
    bootstrap: Optional[str] = BootstrapOpt,
    stages: str = typer.Option("hourly,rhythm,score", help="Contiguous stages to run in this dataflow."),
    workers: int = typer.Option(1, help="Worker threads in this process (Bytewax -w)."),
    process_id: Optional[int] = typer.Option(None, "--process-id", "-i", help="This process's index in a cluster (Bytewax -i)."),
    addresses: Optional[str] = typer.Option(None, "--addresses", "-a", help="host:port of every process, ';'-separated (Bytewax -a)."),
    recovery: Optional[Path] = typer.Option(None, help="Recovery directory (default when following: .phenoflow/recovery)."),
    no_recovery: bool = typer.Option(False, "--no-recovery", help="Run without recovery: a restart re-reads every topic from the beginning."),
    snapshot_interval: int = typer.Option(10, help="Seconds between recovery snapshots (at most this much is re-processed on resume)."),
    until_end: bool = typer.Option(False, "--until-end", help="Read every input topic to its end, close all windows, exit."),
    metrics_port: Optional[int] = typer.Option(None, help="Serve Prometheus /metrics on this port."),
    source: Optional[str] = typer.Option(None, "--source", help="contract (default) or radar: read a RADAR-base cluster's Avro topics."),
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Run the Bytewax dataflow for the given stages.

    Following the topics (no --until-end) keeps recovery snapshots by default,
    so a restart resumes where it stopped instead of reprocessing everything.
    """
    from phenoflow.config import settings_env
    from phenoflow.connectors.kafka_io import ensure_topics
    from phenoflow.contract import ALL_TOPICS
    from phenoflow.flows.pipeline import parse_stages

    settings = _settings(bootstrap, config, metrics_port=metrics_port, source=source)
    chosen = parse_stages(stages)
    if settings.source == "radar":
        from phenoflow.connectors.radar.live import radar_topics, schema_store

        from phenoflow.connectors.kafka_io import list_topics

        if not settings.schema_registry_url:
            schema_store(settings)  # fail fast on a missing or bad schema directory
        existing = list_topics(settings)
        missing = [t for t in radar_topics(settings) if t not in existing]
        if missing:
            raise UserError(f"RADAR-base topic {missing[0]} does not exist on {settings.bootstrap} — "
                            "create it or leave it out of radar_topics")
        from phenoflow.pseudonym import load_or_create_secret

        # Create the key here, once, not in each flow process (they would race and differ).
        _, created = load_or_create_secret(settings.pseudonym_secret, Path(settings.pseudonym_key_file))
        if created:
            err.print(f"generated pseudonym key in {settings.pseudonym_key_file} — keep it with the study's config; "
                      "it maps raw ids to participant ids", soft_wrap=True)
    if workers < 1:
        raise UserError(f"--workers {workers} must be ≥ 1")
    if (process_id is None) != (addresses is None):
        raise UserError("--process-id and --addresses go together — pass both (or neither for one process)")
    if recovery is not None and no_recovery:
        raise UserError("--recovery and --no-recovery contradict each other — pass one")
    if recovery is None and not no_recovery and not until_end:
        recovery = Path(".phenoflow") / "recovery"
    ensure_topics(settings, ALL_TOPICS)
    cmd = [sys.executable, "-m", "bytewax.run",
           f"phenoflow.flows.pipeline:get_flow({','.join(chosen)!r}, {until_end})", "-w", str(workers)]
    if process_id is not None:
        cmd += ["-i", str(process_id), "-a", str(addresses)]
    if recovery is not None:
        from phenoflow.flows.recovery import prepare_recovery

        if snapshot_interval < 1:
            raise UserError(f"--snapshot-interval {snapshot_interval} must be ≥ 1 second")
        cluster = None if process_id is None else (process_id, len(str(addresses).split(";")))
        cmd += prepare_recovery(recovery, max(4, workers), snapshot_s=snapshot_interval, process=cluster)
    if not settings.metrics_port:
        # The progress line reads the flow's own /metrics; without a port asked for, use a free one.
        from phenoflow.connectors.broker import free_port

        settings = dataclasses.replace(settings, metrics_port=free_port())
    env = {**os.environ, **settings_env(settings)}
    mode = "until the end of the input" if until_end else "following the topics; Ctrl-C stops"
    rec = f"recovery in {recovery}" if recovery is not None else "no recovery (a restart re-reads from the beginning)"
    err.print(f"running stages {','.join(chosen)} against {settings.bootstrap} ({mode}; {rec}); "
              f"metrics on :{settings.metrics_port}/metrics")
    rc = _run_with_progress(cmd, env, settings.metrics_port)
    if rc != 0:
        raise UserError(f"the dataflow exited with code {rc} — see its log above", exit_code=rc)


def _run_with_progress(cmd: list[str], env: dict[str, str], port: int) -> int:
    """Run the dataflow process; show its counters (from /metrics) until it exits."""
    import time

    from phenoflow.progress import describe, scrape

    proc = subprocess.Popen(cmd, env=env)
    try:
        with err.status(describe(None)) as status:
            while proc.poll() is None:
                time.sleep(1.0)
                counters = scrape(port)
                if counters is not None:
                    status.update(describe(counters))
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        return 0


@app.command()
def rhythm(
    hourly_csv: Path = typer.Argument(..., help="CSV: a `time` column (local hour start, ISO 8601) and one column per modality."),
    out_file: Optional[Path] = typer.Option(None, "--out", help="Write JSON lines here instead of stdout."),
    min_coverage: float = typer.Option(0.5, help="Below this share of valid hours a window's statistic is null."),
) -> None:
    """Rhythm statistics offline on any hourly series: one JSON line per local day."""
    from phenoflow.rhythm_csv import rhythm_from_csv

    n = rhythm_from_csv(hourly_csv, out_file, min_coverage=min_coverage)
    if out_file is not None:
        err.print(f"wrote {n:,} days to {out_file}")


@app.command()
def demo(
    out_dir: Path = typer.Option(Path("demo-output"), "--out", help="Where the cohort and topic dumps go."),
    participants: int = typer.Option(12, help="Simulated participants."),
    days: int = typer.Option(90, help="Simulated days per participant."),
    seed: int = typer.Option(7, help="Random seed."),
) -> None:
    """One command: embedded broker, simulated cohort, replay, all stages, summary."""
    import shutil
    import time

    from rich.table import Table

    from phenoflow.demo import run_demo

    if out_dir.exists():
        shutil.rmtree(out_dir)
    t0 = time.perf_counter()
    with err.status("starting") as status:
        result = run_demo(out_dir, participants=participants, days=days, seed=seed,
                          status=lambda msg: status.update(msg))
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
) -> None:
    """Sensitivity/specificity of the emitted anomalies against relapse labels (Adler et al. 2020)."""
    from phenoflow.evaluate import evaluate_dir

    if protocol not in ("streaming", "adler"):
        raise UserError(f"--protocol {protocol!r} is unknown — use streaming or adler")
    with err.status("evaluating…"):
        result = evaluate_dir(directory, outputs=outputs, protocol=protocol, iterations=iterations, seed=seed,  # type: ignore[arg-type]
                              thresholds_out=thresholds_out, report=report, compare=compare,
                              compare_iterations=compare_iterations)
    out.print(result.to_markdown())


@app.command()
def audit(
    directory: Path = typer.Argument(..., help="Cohort directory with participants.csv."),
    outputs: Optional[Path] = typer.Option(None, help="Folder of topic dumps (default: DIR/outputs)."),
    report: Optional[Path] = typer.Option(None, help="HTML report file or folder (Markdown beside it)."),
    min_group_share: float = typer.Option(0.1, help="Smallest group share of participants to test."),
) -> None:
    """Fairness audit: event rates per protected group, Fisher's exact test, Benjamini–Yekutieli."""
    from phenoflow.audit import audit_dir

    result = audit_dir(directory, outputs=outputs, report=report, min_group_share=min_group_share)
    out.print(result.to_markdown())


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
        summary = train_from_cohort(source, out_file, input_kind=input_kind, model_kind=model_kind,  # type: ignore[arg-type]
                                    hidden=hidden, seed=seed, labels=labels,
                                    progress=lambda msg: status.update(msg))
    out.print(f"wrote {out_file}: {summary}")


@app.command("import")
def import_(
    fmt: str = typer.Argument(..., metavar="FORMAT", help="radar, aware or beiwe."),
    src: Path = typer.Argument(..., help="The export: a folder (radar: <userId>/<topic>/*.csv.gz) or file."),
    out_dir: Path = typer.Option(..., "--out", help="Cohort directory to write (replay format)."),
    participant: Optional[str] = typer.Option(None, help="Import only this raw participant (folder or id)."),
    timezone: Optional[str] = typer.Option(None, help="IANA zone for times with no recorded offset (default UTC)."),
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Write a replay-format cohort from a study export, with a mapping report (stdout and DIR/import_report.json)."""
    import json
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    from phenoflow.connectors.importers import get_reader
    from phenoflow.connectors.importers.run import run_import, source_size

    get_reader(fmt)  # unknown format: one line before any work
    if timezone:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise UserError(f"--timezone {timezone!r} is not an IANA zone — use e.g. Europe/London") from None
    if not src.exists():
        raise UserError(f"export {src} not found — check the path")
    settings = _settings(None, config)
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TimeRemainingColumn(), console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task(f"importing {fmt}", total=source_size(src) or None)
        result = run_import(fmt, src, out_dir, settings, participant=participant, timezone=timezone,
                            progress=lambda n: bar.advance(task, n))
    if result.key_created is not None:
        err.print(f"generated pseudonym key in {result.key_created} — keep it with the study's config; "
                  "it maps raw ids to participant ids", soft_wrap=True)
    sys.stdout.write(json.dumps(result.report.to_json(), indent=2, ensure_ascii=False) + "\n")
    for label, reason in result.report.file_errors.items():
        err.print(f"[red]error:[/] {label}: {reason}", soft_wrap=True)
    err.print(f"wrote {', '.join(f.name for f in result.files)} and participants.csv to {out_dir} "
              f"({result.report.participants} participants); report in {out_dir / 'import_report.json'}",
              soft_wrap=True)
    if result.report.file_errors:
        raise UserError(f"{len(result.report.file_errors)} input file(s) damaged (listed above) — the rest was imported",
                        exit_code=1)
