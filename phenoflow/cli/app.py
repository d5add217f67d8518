"""The Typer application and what every command shares: consoles, common options, settings.

Commands live in the ``cmd_*`` modules and import their work lazily to start fast;
:mod:`phenoflow.cli.main` registers them and is the entry point.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

__all__ = ["BootstrapOpt", "ConfigOpt", "app", "err", "out", "settings_from_flags"]

app = typer.Typer(
    name="phenoflow",
    help="Streaming passive-sensing features, rhythm statistics and anomaly events.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, highlight=False)
out = Console(highlight=False)

BootstrapOpt = typer.Option(None, "--bootstrap", help="Kafka host:port (default: $PHENOFLOW_BOOTSTRAP, else localhost:9092).")
ConfigOpt = typer.Option(None, "--config", help="TOML settings file (default: $PHENOFLOW_CONFIG).")


def settings_from_flags(bootstrap: str | None, config: Path | None = None, **overrides: object):
    """Settings from the config file, the ``--bootstrap`` flag and other flag overrides."""
    from phenoflow.core.config import load_settings

    return load_settings(config, bootstrap=bootstrap, **overrides)
