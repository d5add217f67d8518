"""Reading a cohort directory in the replay format (README.md, "Historical logs (replay format)").

A cohort directory holds one JSON-lines file per raw topic
(``accelerometer.jsonl[.gz]``, ``screen.jsonl``, ...), ``participants.csv`` and,
where known, ``labels.csv``. Files written by ``phenoflow subscribe TOPIC --out``
are named after the short topic (``features.hourly.jsonl``) and are read back
the same way, so any stage can be replayed on its own.
"""

from __future__ import annotations

import csv
import gzip
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO, Iterator, Sequence, cast

from phenoflow.core.contract import ALL_TOPICS, RAW_TOPICS
from phenoflow.core.errors import UserError

__all__ = ["STEMS", "CohortFile", "cohort_files", "read_lines", "read_csv", "read_labels"]

#: File stem → short topic. Raw topics use the bare sensor name; any contract topic
#: name also works as a stem (``events.anomaly.jsonl``).
STEMS: dict[str, str] = {t.removeprefix("raw."): t for t in RAW_TOPICS}
STEMS.update({t: t for t in ALL_TOPICS})


@dataclass(frozen=True)
class CohortFile:
    """One replay-format file of a cohort directory and the short topic it holds."""

    topic: str
    path: Path

    def open(self) -> IO[bytes]:
        """Binary reader; transparently gunzips ``.gz`` files."""
        if self.path.suffix == ".gz":
            return cast(IO[bytes], gzip.open(self.path, "rb"))  # a GzipFile is a binary file object
        return open(self.path, "rb", buffering=1 << 20)

    def size(self) -> int:
        """Uncompressed size in bytes (for progress bars)."""
        if self.path.suffix == ".gz":
            # gzip's trailer stores the uncompressed size modulo 2**32 (RFC 1952, ISIZE).
            with open(self.path, "rb") as fh:
                fh.seek(-4, 2)
                return int.from_bytes(fh.read(4), "little")
        return self.path.stat().st_size


def _stem(path: Path) -> str | None:
    name = path.name
    for suffix in (".jsonl.gz", ".jsonl"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return None


def cohort_files(directory: Path, topics: set[str] | None = None) -> list[CohortFile]:
    """The topic files of a cohort directory, one per topic, in contract order.

    Raises UserError when the directory is missing or holds no topic file.
    """
    if not directory.exists():
        raise UserError(f"cohort directory {directory} does not exist — create one with "
                        "`phenoflow simulate --out DIR` or check the path")
    if not directory.is_dir():
        raise UserError(f"{directory} is a file, not a cohort directory — pass the folder that "
                        "holds accelerometer.jsonl, screen.jsonl, …")
    found: dict[str, CohortFile] = {}
    for path in sorted(directory.iterdir()):
        stem = _stem(path)
        topic = STEMS.get(stem) if stem else None
        if topic is None or (topics is not None and topic not in topics):
            continue
        if topic in found:
            raise UserError(f"{directory} has two files for {topic} ({found[topic].path.name}, "
                            f"{path.name}) — keep one")
        found[topic] = CohortFile(topic, path)
    if not found:
        raise UserError(
            f"{directory} holds no topic files — expected accelerometer.jsonl[.gz], screen.jsonl, "
            "call.jsonl, sms.jsonl, location.jsonl, ambient.jsonl, survey.jsonl "
            "(write a cohort with `phenoflow simulate`)"
        )
    order = {t: i for i, t in enumerate(ALL_TOPICS)}
    return sorted(found.values(), key=lambda f: order[f.topic])


def read_lines(f: CohortFile) -> Iterator[bytes]:
    """Non-empty lines of a topic file, without the line terminator."""
    with f.open() as fh:
        for line in fh:
            line = line.rstrip(b"\r\n")
            if line.strip():
                yield line


def read_csv(path: Path, required: Sequence[str], how_to_fix: str) -> tuple[list[str], list[dict[str, str]]]:
    """Columns and rows (stripped strings) of a UTF-8 CSV with the ``required`` columns; UserError naming the problem."""
    if not path.is_file():
        raise UserError(f"{path} not found — {how_to_fix}")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            columns = [c.strip() for c in (reader.fieldnames or [])]
            missing = [c for c in required if c not in columns]
            if missing:
                raise UserError(
                    f"{path}: missing column(s) {', '.join(missing)} (found {', '.join(columns) or 'none'}) "
                    f"— the header must include {', '.join(required)}"
                )
            rows = []
            for n, row in enumerate(reader, start=2):
                if None in row:
                    raise UserError(f"{path} line {n}: more fields than columns — fix that line")
                rows.append({k.strip(): (v or "").strip() for k, v in row.items()})
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text — save it as UTF-8 CSV") from None
    except csv.Error as exc:
        raise UserError(f"{path} is not valid CSV ({exc}) — fix the file") from None
    return columns, rows


def read_labels(path: Path) -> dict[str, list[date]]:
    """``labels.csv`` (participant, relapse_date YYYY-MM-DD; one row per relapse) → participant →
    sorted unique relapse dates. A row with an empty date lists a participant without relapse ([]).

    ``path`` is the file, or a cohort directory: then its ``labels.csv``, and {} when it has none.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "labels.csv"
        if not path.exists():
            return {}
    _, rows = read_csv(
        path, ("participant", "relapse_date"),
        "write labels.csv with columns participant,relapse_date (YYYY-MM-DD, one row per relapse)",
    )
    dates: dict[str, set[date]] = {}
    for n, row in enumerate(rows, start=2):
        pid, text = row["participant"], row["relapse_date"]
        if not pid:
            raise UserError(f"{path} line {n}: empty participant — fill it in or delete the line")
        dates.setdefault(pid, set())
        if text:
            try:
                dates[pid].add(date.fromisoformat(text))
            except ValueError:
                raise UserError(f"{path} line {n}: relapse_date {text!r} is not YYYY-MM-DD — fix the date") from None
    return {p: sorted(d) for p, d in dates.items()}
