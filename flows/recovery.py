"""Bytewax recovery set-up for ``phenoflow run --recovery DIR``.

The flow's Kafka source (connectors/kafka/source.py) keeps its offsets only in
recovery snapshots, so a flow without recovery starts again from the beginning
of its topics on restart.
"""

from __future__ import annotations

import pickle
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

from phenoflow.core.errors import UserError
from phenoflow.core.pseudonym import salt_id
from phenoflow.core.state import StateVersionError
from phenoflow.operators.hourly.aggregator import HourlyAggregator

__all__ = ["SNAPSHOT_INTERVAL_S", "BACKUP_INTERVAL_S", "prepare_recovery"]

#: Seconds between state snapshots; on resume at most this much input is re-read.
SNAPSHOT_INTERVAL_S = 10
#: Seconds of older snapshots kept, for backing up the recovery partitions.
BACKUP_INTERVAL_S = 0


def prepare_recovery(directory: Path, partitions: int, *, snapshot_s: int = SNAPSHOT_INTERVAL_S,
                     backup_s: int = BACKUP_INTERVAL_S, process: tuple[int, int] | None = None) -> list[str]:
    """Create recovery partitions in ``directory`` if missing; return the ``bytewax.run`` flags.

    One process: ``partitions`` partitions, created once. A cluster process
    (``process`` = (index i, process count n)) creates only partition i of n, as
    the Kubernetes init container does: every process keeps its own partition,
    and a directory shared by the processes of one machine ends up complete.
    The partition count must never change afterwards (Bytewax refuses a resume
    with missing partitions).
    """
    if directory.exists() and not directory.is_dir():
        raise UserError(f"--recovery {directory} is a file — pass a directory")
    directory.mkdir(parents=True, exist_ok=True)
    if process is None:
        if not any(directory.glob("part-*.sqlite3")):
            _init(directory, max(1, partitions))
    else:
        index, count = process
        target = directory / f"part-{index}.sqlite3"
        if not target.exists():
            with tempfile.TemporaryDirectory(dir=directory) as scratch:
                _init(Path(scratch), count)
                shutil.move(str(Path(scratch) / target.name), target)
    return ["-r", str(directory), "-s", str(snapshot_s), "-b", str(backup_s)]


def _init(directory: Path, count: int) -> None:
    res = subprocess.run([sys.executable, "-m", "bytewax.recovery", str(directory), str(count)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        last = res.stderr.strip().splitlines()[-1] if res.stderr.strip() else f"exit code {res.returncode}"
        raise UserError(f"could not create recovery partitions in {directory}: {last} — check the path's permissions")


#: The latest snapshot of every (step, key) in a Bytewax recovery partition.
_LATEST = """SELECT ser_change FROM snaps AS s WHERE ser_change IS NOT NULL AND snap_epoch =
             (SELECT MAX(snap_epoch) FROM snaps WHERE step_id = s.step_id AND state_key = s.state_key)"""


def check_state_versions(directory: Path, frame_key: bytes | None = None) -> int:
    """Refuse a recovery directory whose snapshots hold state of another layout; return snapshots checked.

    With ``frame_key`` (the study's pseudonym secret), also refuse hourly state
    whose GPS fixes are in the private frame of another key (a lost or changed key
    file): resuming would mix two frames and silently give wrong places.

    Every state class carries a ``STATE_VERSION`` (phenoflow/core/state.py) and
    refuses to unpickle another. Bytewax would hit that inside the dataflow, with a
    traceback; checking here first gives one line that names the directory and the
    fix. Bytewax stores each snapshot as a plain pickle in ``snaps.ser_change``.
    """
    checked = 0
    for part in sorted(Path(directory).glob("part-*.sqlite3")):
        try:
            with sqlite3.connect(f"file:{part}?mode=ro", uri=True) as db:
                rows = db.execute(_LATEST).fetchall()
        except sqlite3.Error:
            continue  # not a snapshot store this version can read: Bytewax reports it
        for (blob,) in rows:
            try:
                state = pickle.loads(blob)
            except StateVersionError as exc:
                raise UserError(
                    f"recovery directory {directory} was written by another phenoflow version ({exc.short}) — "
                    f"delete {directory} to start over from the topics, or run with "
                    "`phenoflow run --recovery NEW_DIR` (docs/deploy.md, \"Reset recovery\")"
                ) from None
            except Exception:  # noqa: BLE001,S112 - anything else is Bytewax's to report on resume
                continue
            if frame_key is not None and isinstance(state, HourlyAggregator) and not state.frame_key_matches(frame_key):
                raise UserError(
                    f"recovery directory {directory} holds GPS state under the pseudonym secret with salt id "
                    f"{state.frame_salt}, "
                    f"this run's secret has salt id {salt_id(frame_key)} — configure the study's pseudonym_secret or "
                    f"pseudonym_key_file that wrote it, or delete {directory} to start over from the topics "
                    "(docs/deploy.md, \"Reset recovery\")")
            checked += 1
    return checked
