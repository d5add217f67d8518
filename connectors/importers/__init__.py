"""Importers: historical study exports → a replay-format cohort (``phenoflow import FORMAT SRC --out DIR``).

Reader interface (every format implements it; AWARE and Beiwe plug in here too)::

    def read_FORMAT(src: Path, *, pseudonym: Callable[[str, str], str], report: ImportReport,
                    participant: str | None = None, **options) -> Iterator[tuple[str, dict]]

* ``src``: the export (file or folder) as the user passed it.
* ``pseudonym(project, user)``: the participant id for raw ids (keyed HMAC,
  ``phenoflow.core.pseudonym``); call it at the first place a raw id is read and never
  yield, log or report the raw id. Formats without a project id pass ``""``.
* ``report``: count every input row per stream — ``report.read(stream)``, then
  ``report.mapped(stream)`` or ``report.drop(stream, reason)`` — so that
  ``read == mapped + dropped``; file-level damage goes to ``report.file_error``;
  unit conversions to ``report.conversions``, local-time provenance per
  participant to ``report.timezone_source``.
* ``participant``: import only this raw participant (folder or id); None = all.
* yields ``(short_topic, value)``: a contract short topic (``raw.screen``) and a
  value dict of the event contract including ``participant`` and, when known,
  ``utc_offset_min``. Order: per input file in time order; the
  :class:`~phenoflow.connectors.importers.writer.CohortWriter` sorts across files.
* optional keyword ``timezone`` (IANA zone for times with no recorded offset) and
  ``progress(n_bytes)`` (called per input file with its size) are passed when the
  reader's signature has them.

Register a reader in :data:`IMPORTERS` under its format name.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

__all__ = ["IMPORTERS", "get_reader"]

#: Format name → "module:function" of its reader (imported on use).
IMPORTERS: dict[str, str] = {
    "radar": "phenoflow.connectors.importers.radar:read_radar",
    "aware": "phenoflow.connectors.importers.aware:read_aware",
    "beiwe": "phenoflow.connectors.importers.beiwe:read_beiwe",
}


def get_reader(fmt: str) -> Callable[..., Any]:
    """The reader function of ``fmt``; UserError when it is unknown or not installed."""
    from phenoflow.core.errors import UserError

    target = IMPORTERS.get(fmt)
    if target is None:
        raise UserError(f"unknown import format {fmt!r} — choose one of {', '.join(sorted(IMPORTERS))}")
    module, _, name = target.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise UserError(f"import format {fmt!r} is not available in this build — choose one of "
                        f"{', '.join(sorted(IMPORTERS))} that is") from None
