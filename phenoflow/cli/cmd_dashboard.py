"""``phenoflow dashboard``: the live clinician view (phenoflow.dashboard)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from phenoflow.cli.app import BootstrapOpt, ConfigOpt, app, err, settings_from_flags

__all__ = ["dashboard"]


@app.command()
def dashboard(
    bootstrap: Optional[str] = BootstrapOpt,
    port: int = typer.Option(8050, help="Port to serve on."),
    host: str = typer.Option("127.0.0.1", help="Address to bind (default: this machine only)."),
    no_auth: bool = typer.Option(False, "--no-auth", help="Serve without a token (only on a trusted machine)."),
    clock: str = typer.Option("wall", help="'wall' (live use) or 'data' (newest record: replays) as 'now' for the 7/30-day counts."),
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Live clinician view of scores, anomalies and step-ups (token from PHENOFLOW_DASHBOARD_TOKEN)."""
    from phenoflow.dashboard import serve

    serve(settings_from_flags(bootstrap, config), host=host, port=port, no_auth=no_auth, clock=clock,
          say=lambda msg: err.print(msg, soft_wrap=True, markup=False))
