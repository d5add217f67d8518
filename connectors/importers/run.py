"""One import: pick the format's reader, pseudonymise with the study's key, write the cohort and the report."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from phenoflow.connectors.importers import get_reader
from phenoflow.connectors.importers.report import ImportReport
from phenoflow.connectors.importers.writer import CohortWriter
from phenoflow.core.config import Settings
from phenoflow.core.pseudonym import memoised_pseudonyms, salt_id, study_secret

__all__ = ["ImportResult", "run_import", "source_size"]


@dataclass
class ImportResult:
    """What one import wrote: its mapping report, the cohort files, and a newly created pseudonym key file."""

    report: ImportReport
    files: list[Path]
    key_created: Path | None  # the key file, when this import generated the pseudonym key


def source_size(src: Path) -> int:
    """Bytes of all files under ``src`` (the progress bar's total)."""
    if src.is_file():
        return src.stat().st_size
    return sum(f.stat().st_size for f in src.rglob("*") if f.is_file()) if src.is_dir() else 0


def run_import(fmt: str, src: Path, out: Path, settings: Settings, *, participant: str | None = None,
               timezone: str | None = None, progress: Callable[[int], None] | None = None,
               spill_bytes: int | None = None) -> ImportResult:
    """Import ``src`` (format ``fmt``) into the cohort directory ``out``; returns the report."""
    reader = get_reader(fmt)
    secret, created = study_secret(settings)
    pseudonym = memoised_pseudonyms(secret)
    report = ImportReport(format=fmt, salt_id=salt_id(secret))
    writer = CohortWriter(out, report, **({} if spill_bytes is None else {"spill_bytes": spill_bytes}))
    params = inspect.signature(reader).parameters
    extra: dict[str, object] = {}
    if "timezone" in params:
        extra["timezone"] = timezone
    if "progress" in params and progress is not None:
        extra["progress"] = progress
    try:
        for short, value in reader(src, pseudonym=pseudonym, report=report, participant=participant, **extra):
            writer.add(short, value)
    except BaseException:
        writer.abort()
        raise
    files = writer.close()
    return ImportResult(report, files, Path(settings.pseudonym_key_file) if created else None)
