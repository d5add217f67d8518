"""``phenoflow run``: the Bytewax dataflow as a subprocess, with a live progress line from its /metrics."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

import typer

from phenoflow.cli.app import BootstrapOpt, ConfigOpt, app, err, settings_from_flags
from phenoflow.core.errors import UserError

__all__ = ["run"]


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
    from phenoflow.connectors.kafka.clients import ensure_topics
    from phenoflow.core.config import settings_env
    from phenoflow.core.contract import ALL_TOPICS
    from phenoflow.flows.pipeline import parse_stages

    settings = settings_from_flags(bootstrap, config, metrics_port=metrics_port, source=source)
    chosen = parse_stages(stages)
    if settings.source == "radar":
        from phenoflow.connectors.kafka.clients import list_topics
        from phenoflow.connectors.radar.live import radar_topics, schema_store

        if not settings.schema_registry_url:
            schema_store(settings)  # fail fast on a missing or bad schema directory
        existing = list_topics(settings)
        missing = [t for t in radar_topics(settings) if t not in existing]
        if missing:
            raise UserError(f"RADAR-base topic {missing[0]} does not exist on {settings.bootstrap} — "
                            "create it or leave it out of radar_topics")
    if workers < 1:
        raise UserError(f"--workers {workers} must be ≥ 1")
    if (process_id is None) != (addresses is None):
        raise UserError("--process-id and --addresses go together — pass both (or neither for one process)")
    if recovery is not None and no_recovery:
        raise UserError("--recovery and --no-recovery contradict each other — pass one")
    if recovery is None and not no_recovery and not until_end:
        recovery = Path(".phenoflow") / "recovery"
    secret: bytes | None = None
    if settings.source == "radar" or "hourly" in chosen:
        # The study's key pseudonymises RADAR-base ids and keys the private place frame of the
        # hourly stage. Create it here, once, not in each flow process.
        from phenoflow.core.pseudonym import study_secret

        secret, created = study_secret(settings)
        if created:
            err.print(f"generated pseudonym key in {settings.pseudonym_key_file} — keep it with the study's config "
                      "and away from recovery directories; it maps raw ids to participant ids and keys "
                      "the private place frame", soft_wrap=True)
    if recovery is not None and recovery.is_dir():
        from phenoflow.flows.recovery import check_state_versions

        # Snapshots of another state layout, or GPS state under another key: one line, before anything starts.
        check_state_versions(recovery, frame_key=secret)
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

    from phenoflow.cli.progress import describe, scrape

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
