"""Where per-participant thresholds came from, and the in-sample check of ``phenoflow evaluate``.

A thresholds file written by ``phenoflow evaluate --protocol adler
--thresholds-out FILE`` is ``{"thresholds": {participant: τ}, "provenance":
{…}}``. The provenance names the cohort (:func:`cohort_hash` of its labels and
one label hash per participant), the split (protocol, seed, iterations, shares,
guard) and, per participant, the days τ was fitted on (as date ranges).

The score stage writes the file's :func:`file_hash` into every
``scores.daily`` record (``threshold_source``; ``"calibration"`` when τ came
from the participant's own calibration days). ``phenoflow evaluate`` finds the
file behind each hash — ``--thresholds FILE``, else the copy that
``--thresholds-out`` leaves in ``DIR/.thresholds/<hash>.json`` — and refuses to
score a stream whose τ were fitted on the same participants' labels
(:func:`check_in_sample`) unless ``--allow-in-sample`` is given. A hash that
no file explains is refused as well: its provenance cannot be checked.

Only pseudonymous participant ids and dates are stored; no raw data.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from phenoflow.core.errors import UserError

__all__ = [
    "CALIBRATION",
    "REGISTRY",
    "UNRECORDED",
    "InSample",
    "check_in_sample",
    "cohort_hash",
    "day_ranges",
    "file_hash",
    "label_hashes",
    "read_provenance",
    "write_thresholds",
]

#: ``threshold_source`` of a τ set by the participant's own calibration days.
CALIBRATION = "calibration"
#: ``threshold_source`` of records from dumps written before the field existed.
UNRECORDED = "unrecorded"
#: Folder in the cohort directory where ``--thresholds-out`` keeps a copy of each file, by hash.
REGISTRY = ".thresholds"
_HASH_CHARS = 16


def file_hash(path: Path) -> str:
    """First 16 hex digits of the SHA-256 of the file's bytes (UserError if unreadable)."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:_HASH_CHARS]
    except OSError as exc:
        raise UserError(f"thresholds file {path} cannot be read ({exc.strerror}) — check the path") from None


def _labels_text(pid: str, dates: Iterable[Any]) -> str:
    return pid + ":" + ",".join(sorted(str(np.datetime64(d, "D")) for d in dates))


def label_hashes(labels: Mapping[str, Sequence[date] | np.ndarray]) -> dict[str, str]:
    """Per participant: SHA-256 prefix of its id and sorted relapse dates (the labels τ could learn from)."""
    return {
        pid: hashlib.sha256(_labels_text(pid, d).encode()).hexdigest()[:_HASH_CHARS]
        for pid, d in sorted(labels.items())
    }


def cohort_hash(labels: Mapping[str, Sequence[date] | np.ndarray]) -> str:
    """SHA-256 prefix of the whole cohort's labels, normalised (order and formatting do not matter)."""
    text = "\n".join(_labels_text(pid, d) for pid, d in sorted(labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:_HASH_CHARS]


def day_ranges(days: np.ndarray) -> list[list[str]]:
    """Sorted days (datetime64[D]) as inclusive [first, last] ISO ranges of consecutive days."""
    d = np.unique(np.asarray(days, dtype="datetime64[D]"))
    if d.size == 0:
        return []
    cut = np.flatnonzero(np.diff(d).astype(np.int64) > 1) + 1
    return [[str(run[0]), str(run[-1])] for run in np.split(d, cut)]


def write_thresholds(
    path: Path,
    thresholds: Mapping[str, float],
    labels: Mapping[str, Sequence[date] | np.ndarray],
    split: Mapping[str, Any],
    fitted: Mapping[str, np.ndarray],
    cohort_dir: Path | None = None,
) -> str:
    """Write the thresholds file with its provenance; return its :func:`file_hash`.

    ``split`` describes the procedure (protocol, seed, iterations, shares, guard);
    ``fitted`` gives each participant's fitting days. With ``cohort_dir`` a
    byte-identical copy goes to ``cohort_dir/.thresholds/<hash>.json``, so
    ``phenoflow evaluate`` can check a later stream from the cohort directory alone.
    """
    hashes = label_hashes(labels)
    doc = {
        "thresholds": {k: float(v) for k, v in sorted(thresholds.items())},
        "provenance": {
            "cohort_hash": cohort_hash(labels),
            "label_hashes": {p: hashes[p] for p in sorted(thresholds) if p in hashes},
            "split": dict(split),
            "fitted_days": {p: day_ranges(fitted[p]) for p in sorted(thresholds) if p in fitted},
        },
    }
    data = (json.dumps(doc, indent=1) + "\n").encode()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()[:_HASH_CHARS]
    if cohort_dir is not None:
        reg = Path(cohort_dir) / REGISTRY
        reg.mkdir(exist_ok=True)
        (reg / f"{digest}.json").write_bytes(data)
    return digest


def read_provenance(path: Path) -> dict[str, Any] | None:
    """The provenance block of a thresholds file; None for a plain {participant: τ} file."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"thresholds file {path} cannot be read as JSON ({exc}) — pass the file "
                        "`phenoflow evaluate --thresholds-out` wrote") from None
    prov = doc.get("provenance") if isinstance(doc, dict) else None
    return prov if isinstance(prov, dict) else None


@dataclass
class InSample:
    """Result of :func:`check_in_sample`: sources seen and participants scored in-sample."""

    sources: dict[str, int] = field(default_factory=dict)  # threshold_source → scored records
    files: dict[str, Path] = field(default_factory=dict)  # hash → file that explains it
    participants: list[str] = field(default_factory=list)  # τ fitted on their own labels
    allowed: bool = False

    @property
    def in_sample(self) -> bool:
        """True when some participant's τ was fitted on the labels evaluated here."""
        return bool(self.participants)


def _candidates(thresholds: Sequence[Path], cohort_dir: Path) -> dict[str, Path]:
    files = list(thresholds)
    reg = Path(cohort_dir) / REGISTRY
    if reg.is_dir():
        files += sorted(reg.glob("*.json"))
    return {file_hash(f): f for f in files}


def check_in_sample(
    sources: Mapping[str, int],
    source_participants: Mapping[str, set[str]],
    labels: Mapping[str, Sequence[date] | np.ndarray],
    cohort_dir: Path,
    thresholds: Sequence[Path] = (),
    allow: bool = False,
) -> InSample:
    """Refuse (UserError) a stream whose τ came from this cohort's labels, unless ``allow``.

    ``sources``: the ``threshold_source`` values in scores.daily with their record
    counts; ``source_participants``: which participants carry each source. A
    participant is in-sample when the file's provenance holds the same label hash
    for it as this cohort's ``labels`` (its τ saw these very relapse dates) and
    at least one such participant has relapse dates (pseudonyms like ``P001``
    without relapse recur across cohorts; matching relapse dates do not).
    """
    res = InSample(sources=dict(sources), allowed=allow)
    files = [h for h in sources if h not in (CALIBRATION, UNRECORDED, "")]
    if not files:
        return res
    known = _candidates(thresholds, cohort_dir)
    ours = label_hashes(labels)
    for h in sorted(files):
        path = known.get(h)
        if path is None:
            if allow:
                continue
            raise UserError(
                f"scores.daily used a thresholds file (sha256 {h}…) whose provenance is unknown — pass it "
                "with --thresholds FILE so evaluate can check it was not fitted on this cohort, "
                "or --allow-in-sample"
            )
        res.files[h] = path
        prov = read_provenance(path) or {}
        theirs = prov.get("label_hashes", {})
        if not prov:
            if allow:
                continue
            raise UserError(f"thresholds file {path} has no provenance — refit it with `phenoflow evaluate "
                            "--protocol adler --thresholds-out` on another cohort, or pass --allow-in-sample")
        same = sorted(p for p in source_participants.get(h, set()) if p in ours and theirs.get(p) == ours[p])
        # "no relapse" is the same label in any cohort that reuses a pseudonym: a participant
        # without relapse only counts once a relapsing one shows that this is the same cohort
        if any(len(labels[p]) for p in same):
            res.participants += same
    if res.participants and not allow:
        raise UserError(
            f"the thresholds of {len(res.participants)} participant(s) were fitted on this cohort's own labels "
            f"({res.files[next(iter(res.files))].name}): their scores are in-sample — fit thresholds on another "
            "cohort, or pass --allow-in-sample (the report then marks the result)"
        )
    return res
