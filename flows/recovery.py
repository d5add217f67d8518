"""Bytewax recovery set-up for ``phenoflow run --recovery DIR``.

Bytewax's KafkaSource keeps its offsets only in recovery snapshots, so a flow
without recovery starts again from the beginning of its topics on restart.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from phenoflow.errors import UserError

#: Seconds between state snapshots; on resume at most this much input is re-read.
SNAPSHOT_INTERVAL_S = 10
#: Seconds of older snapshots kept, for backing up the recovery partitions.
BACKUP_INTERVAL_S = 0


def prepare_recovery(directory: Path, partitions: int, *, snapshot_s: int = SNAPSHOT_INTERVAL_S,
                     backup_s: int = BACKUP_INTERVAL_S) -> list[str]:
    """Create recovery partitions in ``directory`` if it has none; return the ``bytewax.run`` flags."""
    if directory.exists() and not directory.is_dir():
        raise UserError(f"--recovery {directory} is a file — pass a directory")
    existing = sorted(directory.glob("part-*.sqlite3")) if directory.exists() else []
    if not existing:
        directory.mkdir(parents=True, exist_ok=True)
        res = subprocess.run([sys.executable, "-m", "bytewax.recovery", str(directory), str(max(1, partitions))],
                             capture_output=True, text=True)
        if res.returncode != 0:
            raise UserError(f"could not create recovery partitions in {directory}: "
                            f"{res.stderr.strip().splitlines()[-1] if res.stderr else res.returncode}")
    return ["-r", str(directory), "-s", str(snapshot_s), "-b", str(backup_s)]
