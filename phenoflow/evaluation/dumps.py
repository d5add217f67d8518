"""Reading a cohort directory for ``phenoflow evaluate`` and ``phenoflow audit``.

Layout (README.md, "Historical logs (replay format)"): ``DIR/labels.csv`` (participant,
relapse_date ``YYYY-MM-DD``; one row per relapse, an empty date lists a
participant without relapse), ``DIR/participants.csv`` (participant +
attribute columns) and ``DIR/outputs/`` holding topic dumps written by
``phenoflow subscribe TOPIC --out FILE`` (``<topic>.jsonl``, optionally
``.gz``), one contract value per line, decoded with
:func:`phenoflow.core.contract.decode`. Lines that do not meet the contract are
skipped and counted; a dump with no valid line is an error.
"""

from __future__ import annotations

import gzip
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from io import BufferedReader
from pathlib import Path
from typing import Iterator, Literal, Mapping, Sequence

import numpy as np

from phenoflow.core.contract import DeadLetter, Event, decode
from phenoflow.core.errors import UserError
from phenoflow.core.timebase import local_day_hour

__all__ = [
    "NR30_DAYS", "NO_RELAPSE", "resolve_outputs", "dump_path", "DumpStats", "iter_dump", "read_dump",
    "CohortDays", "days_before_relapse", "load_cohort", "FeatureTable", "load_feature_table"
]

#: Days before a relapse that count as "near relapse" (Adler et al. 2020).
NR30_DAYS = 30
#: ``days_before`` of a day with no later relapse.
NO_RELAPSE = 1_000_000

_PARTICIPANT = re.compile(rb'"participant"\s*:\s*"([^"]*)"')


def resolve_outputs(cohort_dir: Path, outputs: Path | None) -> Path:
    """The dumps folder: ``--outputs`` or ``DIR/outputs``; UserError if absent."""
    cohort_dir = Path(cohort_dir)
    if not cohort_dir.is_dir():
        raise UserError(
            f"cohort directory {cohort_dir} not found — pass the folder that holds labels.csv "
            "and outputs/ (see docs/evaluation.md)"
        )
    out = Path(outputs) if outputs is not None else cohort_dir / "outputs"
    if not out.is_dir():
        raise UserError(
            f"no topic dumps folder {out} — write the dumps with `phenoflow subscribe "
            f"scores.daily --from-beginning --out {out}/scores.daily.jsonl` (likewise "
            "events.anomaly, events.stepup) or pass --outputs PATH"
        )
    return out


def dump_path(out: Path, topic: str) -> Path | None:
    """``out/<topic>.jsonl`` or ``.jsonl.gz`` if present."""
    for name in (f"{topic}.jsonl", f"{topic}.jsonl.gz"):
        if (out / name).is_file():
            return out / name
    return None


def _open(path: Path) -> gzip.GzipFile | BufferedReader:
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


@dataclass
class DumpStats:
    """Lines read from a dump and how many did not meet the contract."""

    lines: int = 0
    bad: int = 0
    first_error: str = ""


def iter_dump(
    path: Path, topic: str, stats: DumpStats, wanted: set[str] | None = None
) -> Iterator[Event]:
    """Decode each line of a dump; skip (and count) dead letters.

    ``wanted`` keeps only those participants; lines are pre-filtered on the
    first ``"participant"`` key before decoding, so reading a few participants
    out of a large rhythm dump stays cheap.
    """
    wanted_b = {w.encode() for w in wanted} if wanted is not None else None
    with _open(path) as fh:
        for raw in fh:
            raw = raw.strip()
            if not raw:
                continue
            if wanted_b is not None:
                # encoders put `participant` first; look at the head before scanning a 100-kB line
                m = _PARTICIPANT.search(raw, 0, 256) or _PARTICIPANT.search(raw)
                if m is not None and m.group(1) not in wanted_b:
                    continue
            stats.lines += 1
            event = decode(topic, None, raw)
            if isinstance(event, DeadLetter):
                stats.bad += 1
                stats.first_error = stats.first_error or f"line {stats.lines}: {event.error}"
                continue
            if wanted is not None and event.participant not in wanted:
                continue
            yield event


def read_dump(path: Path, topic: str, notes: list[str], wanted: set[str] | None = None) -> list:
    """All valid values of a dump; a note for skipped lines; UserError if none is valid."""
    stats = DumpStats()
    events = list(iter_dump(path, topic, stats, wanted))
    if stats.bad:
        notes.append(f"{path.name}: skipped {stats.bad} of {stats.lines} lines that do not meet the contract ({stats.first_error})")
        if not events:
            raise UserError(
                f"{path}: none of its {stats.lines} lines is a valid {topic} value "
                f"({stats.first_error}) — check that the file is the dump of {topic}"
            )
    return events


@dataclass
class CohortDays:
    """Evaluated participant-days, sorted by participant then day.

    ``days_before`` = days to the next relapse strictly after the day
    (:data:`NO_RELAPSE` if none); ``nr30`` = 1 ≤ days_before ≤ 30.
    """

    participants: list[str]
    starts: np.ndarray  # row offsets, len(participants)+1
    day: np.ndarray  # datetime64[D]
    score: np.ndarray
    threshold: np.ndarray
    flagged: np.ndarray
    days_before: np.ndarray
    relapses: dict[str, np.ndarray]
    model: str
    excluded_calibrating: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def nr30(self) -> np.ndarray:
        """Whether each day lies within ``NR30_DAYS`` days before a relapse."""
        return self.days_before <= NR30_DAYS

    def slice(self, p: int) -> slice:
        """The rows of participant ``p``."""
        return slice(int(self.starts[p]), int(self.starts[p + 1]))

    def index(self) -> dict[tuple[str, np.datetime64], int]:
        """(participant, day) → row."""
        return {
            (pid, d): i
            for p, pid in enumerate(self.participants)
            for i, d in zip(range(self.starts[p], self.starts[p + 1]), self.day[self.slice(p)], strict=True)
        }


def days_before_relapse(days: np.ndarray, relapses: np.ndarray) -> np.ndarray:
    """Days from each day to the first relapse date strictly after it (NO_RELAPSE if none)."""
    if relapses.size == 0:
        return np.full(days.size, NO_RELAPSE, dtype=np.int64)
    nxt = np.searchsorted(relapses, days, side="right")
    out = np.full(days.size, NO_RELAPSE, dtype=np.int64)
    has = nxt < relapses.size
    out[has] = (relapses[nxt[has]] - days[has]).astype(np.int64)
    return out


def load_cohort(out: Path, relapse_dates: Mapping[str, Sequence[date]]) -> CohortDays:
    """Evaluated days from the scores.daily and events.anomaly dumps.

    A day counts when scores.daily has it non-calibrating with a score (last
    record wins if a replay duplicated it), or when an anomaly event exists for
    it. Without an events.anomaly dump, flags are score > threshold (noted).
    """
    labels = {p: np.array(d, dtype="datetime64[D]") for p, d in relapse_dates.items()}
    notes: list[str] = []
    scores_path = dump_path(out, "scores.daily")
    if scores_path is None:
        raise UserError(
            f"no scores.daily dump in {out} — write it with `phenoflow subscribe scores.daily "
            f"--from-beginning --out {out}/scores.daily.jsonl` or pass --outputs"
        )
    rows: dict[tuple[str, str], list] = {}
    calibrating: set[tuple[str, str]] = set()
    models: Counter[str] = Counter()
    for ev in read_dump(scores_path, "scores.daily", notes):
        key = (ev.participant, ev.day)
        models[ev.model] += 1
        if ev.calibrating or ev.score is None:
            calibrating.add(key)
            rows.pop(key, None)
            continue
        calibrating.discard(key)
        rows[key] = [ev.score, ev.threshold if ev.threshold is not None else np.nan, False]
    anomaly_path = dump_path(out, "events.anomaly")
    if anomaly_path is None:
        notes.append("no events.anomaly dump: flagged days derived from scores.daily score > threshold")
        for r in rows.values():
            r[2] = bool(r[1] == r[1] and r[0] > r[1])
    else:
        for ev in read_dump(anomaly_path, "events.anomaly", notes):
            key = (ev.participant, ev.day)
            if key in calibrating:
                continue
            rows.setdefault(key, [ev.score, ev.threshold, True])[2] = True
    if not rows:
        raise UserError(
            f"{scores_path}: no scored, non-calibrating day — run the flows over more days "
            "(each participant first calibrates) and dump scores.daily again"
        )
    if len(models) > 1:
        notes.append(f"scores.daily holds several models ({', '.join(models)}); all are evaluated together")
    keys = sorted(rows)
    participants = sorted({k[0] for k in keys})
    pid_arr = np.array([k[0] for k in keys])
    day = np.array([k[1] for k in keys], dtype="datetime64[D]")
    starts = np.searchsorted(pid_arr, participants + [chr(0x10FFFF)], side="left")
    vals = np.array([rows[k][:2] for k in keys], dtype=float)
    flagged = np.array([rows[k][2] for k in keys], dtype=bool)
    before = np.concatenate(
        [
            days_before_relapse(day[starts[p] : starts[p + 1]], labels.get(pid, np.array([], dtype="datetime64[D]")))
            for p, pid in enumerate(participants)
        ]
    )
    unknown = sorted(set(labels) - set(participants))
    if unknown:
        notes.append(f"{len(unknown)} participant(s) in labels.csv have no scored day and are left out")
    return CohortDays(
        participants=participants,
        starts=starts,
        day=day,
        score=vals[:, 0],
        threshold=vals[:, 1],
        flagged=flagged,
        days_before=before,
        relapses={p: labels.get(p, np.array([], dtype="datetime64[D]")) for p in participants},
        model=models.most_common(1)[0][0] if models else "unknown",
        excluded_calibrating=len(calibrating),
        notes=notes,
    )


@dataclass
class FeatureTable:
    """Feature rows of cohort days: one per day (rhythm) or per hour (hourly).

    ``X`` holds raw values (NaN = null), ``row_day`` the cohort row of each
    feature row; rows are ordered by cohort row (participant, day), hours by
    time. Hourly tables also keep ``meta`` arrays ``hour_start``,
    ``utc_offset_min``, ``local_hour``, ``weekday``, ``filled`` so that contract
    records can be rebuilt for model code that takes records.
    """

    kind: Literal["rhythm", "hourly"]
    names: list[str]
    X: np.ndarray
    row_day: np.ndarray
    meta: dict[str, np.ndarray] = field(default_factory=dict)


def load_feature_table(
    out: Path,
    kind: Literal["rhythm", "hourly"],
    cohort: CohortDays,
    notes: list[str],
    participants: set[str] | None = None,
) -> FeatureTable | None:
    """rhythm.daily or features.hourly rows of the cohort's evaluated days; None if no dump.

    Hourly records are assigned to the local day of ``hour_start +
    utc_offset_min`` (offset 0 when absent). Duplicates keep the last record.
    """
    topic = "rhythm.daily" if kind == "rhythm" else "features.hourly"
    path = dump_path(out, topic)
    if path is None:
        return None
    index = cohort.index()
    names: dict[str, int] = {}
    key_cache: tuple[tuple[str, ...], np.ndarray] = ((), np.empty(0, dtype=np.int64))
    latest: dict[tuple, tuple[int, float, np.ndarray, np.ndarray, tuple]] = {}
    for ev in read_dump(path, topic, notes, participants):
        if kind == "rhythm":
            d = np.datetime64(ev.day, "D")
            uniq: tuple = (ev.participant, ev.day)
            meta: tuple = ()
            order_key = 0.0
        else:
            d = np.datetime64(local_day_hour(ev.hour_start, ev.utc_offset_min)[0], "D")
            uniq = (ev.participant, ev.hour_start)
            meta = (ev.hour_start, ev.utc_offset_min or 0, ev.local_hour, ev.weekday, ev.filled)
            order_key = ev.hour_start
        row = index.get((ev.participant, d))
        if row is None:
            continue
        keys = tuple(ev.features)
        if keys != key_cache[0]:
            key_cache = (keys, np.array([names.setdefault(k, len(names)) for k in keys], dtype=np.int64))
        latest[uniq] = (row, order_key, key_cache[1], np.array(list(ev.features.values()), dtype=float), meta)
    items = sorted(latest.values(), key=lambda t: (t[0], t[1]))
    X = np.full((len(items), len(names)), np.nan, dtype=np.float32)
    for i, (_, _, idx, vals, _) in enumerate(items):
        X[i, idx] = vals
    metas: dict[str, np.ndarray] = {}
    if kind == "hourly" and items:
        cols_meta = list(zip(*(t[4] for t in items), strict=True))
        for name, values, dtype in zip(
            ("hour_start", "utc_offset_min", "local_hour", "weekday", "filled"), cols_meta, (float, int, int, int, float), strict=True
        ):
            metas[name] = np.array(values, dtype=dtype)
    order = sorted(names, key=names.__getitem__)
    cols = np.argsort(order)
    return FeatureTable(
        kind=kind,
        names=sorted(names),
        X=X[:, cols] if len(names) else X,
        row_day=np.array([t[0] for t in items], dtype=np.int64),
        meta=metas,
    )
