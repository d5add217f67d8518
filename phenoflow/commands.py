"""The remaining ``phenoflow`` commands: run, rhythm, train, evaluate, audit, demo."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from phenoflow.cli import BootstrapOpt, ConfigOpt, _settings, app, err, out
