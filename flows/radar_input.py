"""Wiring of the live RADAR-base input: decode → per-participant local time → contract events.

The logic lives in ``phenoflow.connectors.radar.live``; this module only turns
it into Bytewax steps for ``flows/pipeline.py`` (``source = "radar"``).
"""

from __future__ import annotations

from typing import Optional

import bytewax.operators as op
from bytewax.dataflow import Stream

from phenoflow.connectors.radar.live import (
    LocalTimeState,
    pseudonymizer,
    radar_decoder,
    schema_store,
    time_zone_history,
)
from phenoflow.core.config import Settings
from phenoflow.flows.stages import OperatorLogic

__all__ = ["radar_events"]


def radar_events(raw: Stream, settings: Settings) -> Stream:
    """Source items → ``(participant, contract event)`` or ``(participant or "", DeadLetter)``."""
    store, pseudonym = schema_store(settings), pseudonymizer(settings)
    decoded = op.flat_map_batch("radar_decode", raw, radar_decoder(settings, store, pseudonym))
    zone = settings.radar_timezone or None
    history = time_zone_history(settings, store, pseudonym)

    def build(resume: Optional[LocalTimeState]) -> OperatorLogic[LocalTimeState]:
        return OperatorLogic(resume if resume is not None else LocalTimeState(zone, history))

    return op.stateful_batch("radar_local_time", decoded, build)
