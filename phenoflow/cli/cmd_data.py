"""Commands that move data: ``broker``, ``simulate``, ``replay``, ``subscribe``, ``import``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from phenoflow.cli.app import (
    BootstrapOpt,
    ConfigOpt,
    app,
    err,
    out,
    settings_from_flags,
)
from phenoflow.core.errors import UserError

__all__ = ["broker", "simulate", "replay", "subscribe"]


@app.command()
def broker(
    port: int = typer.Option(9092, help="TCP port on 127.0.0.1."),
    log_file: Optional[Path] = typer.Option(None, help="Write the broker's own log here."),
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Run the embedded Kafka-protocol broker (Tansu, in memory) in the foreground."""
    import signal
    import time

    from phenoflow.connectors.broker import EmbeddedBroker

    def _stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # The broker runs in its own session (Ctrl-C reaches us, not it), so stop it on SIGTERM too.
    signal.signal(signal.SIGTERM, _stop)

    from phenoflow.connectors.kafka.clients import ensure_topics
    from phenoflow.core.contract import ALL_TOPICS

    with EmbeddedBroker(port=port, log_file=log_file) as b:
        settings = settings_from_flags(b.bootstrap, config)
        ensure_topics(settings, ALL_TOPICS)
        err.print(f"embedded broker listening on [bold]{b.bootstrap}[/] (in memory; Ctrl-C stops it); "
                  f"created {len(ALL_TOPICS)} topics {settings.topic_prefix}* with {settings.partitions} partitions")
        try:
            while b.process is not None and b.process.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            err.print("stopping broker")
            return
    raise UserError("the embedded broker stopped unexpectedly — run `phenoflow broker --log-file F` to see why")


@app.command()
def simulate(
    out_dir: Path = typer.Option(..., "--out", help="Cohort directory to write."),
    participants: int = typer.Option(20, help="Number of participants."),
    days: int = typer.Option(60, help="Days of data per participant."),
    seed: int = typer.Option(0, help="Random seed (same seed → identical files)."),
    relapse_share: float = typer.Option(0.3, help="Share of participants who relapse (1–3 relapses each)."),
    accel_hz: Optional[float] = typer.Option(None, help="Accelerometer sampling rate, Hz (default: see README)."),
    gzip_accelerometer: bool = typer.Option(False, "--gzip", help="Write accelerometer.jsonl.gz."),
    signature_strength: float = typer.Option(1.0, help="Scale of the pre-relapse signature (0 = none)."),
    missing_min: float = typer.Option(0.1, help="Smallest per-participant share of hours with no data."),
    missing_max: float = typer.Option(0.3, help="Largest per-participant share of hours with no data."),
    life_events: bool = typer.Option(
        False, "--life-events/--no-life-events",
        help="Add healthy life events (holidays, travel across time zones, illness, new phone), "
             "daylight saving, seasonal drift, data thinning before relapse and one-modality "
             "signatures; listed in life_events.csv."),
) -> None:
    """Write a simulated CrossCheck-style cohort in the replay format.

    The accelerometer is duty-cycled by default (a 10-s burst at 1 Hz every
    5 min) to keep cohorts small; the seed's phones sampled 50–100 Hz.
    ``--signature-strength 0`` is the null cohort (relapse labels, no relapse
    signal). Seeds ≥ 1000 are reserved for benchmarks/bench_detection.py: do
    not tune on them (docs/evaluation.md).
    """
    from phenoflow.simulate.simulator import DEFAULT_ACCEL_HZ, simulate_cohort

    with err.status("simulating cohort…") as status:
        summary = simulate_cohort(out_dir, participants, days, seed, relapse_share=relapse_share,
                                  accel_hz=DEFAULT_ACCEL_HZ if accel_hz is None else accel_hz,
                                  gzip_accelerometer=gzip_accelerometer, signature_strength=signature_strength,
                                  missing_share=(missing_min, missing_max), life_events=life_events,
                                  progress=lambda done, total: status.update(f"simulating cohort… {done}/{total}"))
    err.print(f"wrote cohort to {out_dir}: {summary}")


@app.command()
def replay(
    directory: Path = typer.Argument(..., help="Cohort directory (or a folder of subscribe dumps)."),
    bootstrap: Optional[str] = BootstrapOpt,
    speed: float = typer.Option(0.0, help="0 = as fast as possible; X = X times real time."),
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Produce a cohort's files to their topics, merged in event-time order."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from phenoflow.connectors.cohort import cohort_files
    from phenoflow.connectors.replay import replay as do_replay

    settings = settings_from_flags(bootstrap, config)
    total = sum(f.size() for f in cohort_files(directory))
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), TimeRemainingColumn(), console=err, transient=True) as bar:
        task = bar.add_task("replaying", total=total)
        summary = do_replay(directory, settings, speed=speed, progress=lambda n: bar.advance(task, n))
    for topic, n in summary.sent.items():
        bad = summary.malformed.get(topic, 0)
        note = f"  ({bad} malformed → will be dead-lettered)" if bad else ""
        out.print(f"{settings.topic(topic):<40} {n:>10,}{note}")
    out.print(f"{'total':<40} {summary.total:>10,} messages in {summary.seconds:.1f} s "
              f"({summary.rate:,.0f} msg/s; {summary.accelerometer_samples:,} accelerometer samples)")


@app.command()
def subscribe(
    topic: str = typer.Argument(..., help="Short topic name, e.g. events.anomaly."),
    bootstrap: Optional[str] = BootstrapOpt,
    from_beginning: bool = typer.Option(False, "--from-beginning", help="Start at the oldest message."),
    limit: Optional[int] = typer.Option(None, help="Stop after N messages."),
    timeout: Optional[float] = typer.Option(None, help="Stop after S seconds without a new message."),
    out_file: Optional[Path] = typer.Option(None, "--out", help="Write JSON lines here instead of stdout."),
    group: Optional[str] = typer.Option(None, help="Consumer group (default: none; read by partition)."),
    dedupe: bool = typer.Option(False, "--dedupe", help="Drop records re-sent after a recovery (same event_id, or same participant-hour/day)."),
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Write a topic's values as JSON lines (the replay format)."""
    from phenoflow.connectors.subscribe import subscribe as do_subscribe

    settings = settings_from_flags(bootstrap, config)
    if out_file is not None:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        with open(out_file, "wb") as fh, err.status(f"reading {settings.topic(topic)}…") as status:
            seen = [0]

            def tick(n: int) -> None:
                seen[0] += n
                status.update(f"reading {settings.topic(topic)}… {seen[0]:,} messages")

            summary = do_subscribe(settings, topic, fh, from_beginning=from_beginning, limit=limit,
                                   timeout=timeout, group=group, dedupe=dedupe, on_message=tick)
        dropped = f" ({summary.duplicates:,} duplicates dropped)" if dedupe else ""
        err.print(f"wrote {summary.messages:,} messages to {out_file}{dropped}")
    else:
        do_subscribe(settings, topic, sys.stdout.buffer, from_beginning=from_beginning, limit=limit,
                     timeout=timeout, group=group, dedupe=dedupe)


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
    settings = settings_from_flags(None, config)
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
