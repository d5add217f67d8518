"""Deterministic event ids: the same input gives the same id across replays and restarts.

``events.anomaly`` and ``events.stepup`` carry an ``event_id`` (README.md, "Event
contract") so subscribers can de-duplicate: a replay of the same raw logs through
the same model, or a restart from a Bytewax recovery snapshot that re-emits the
last events, must produce byte-identical ids. Ids are RFC 4122 version-5 UUIDs
(SHA-1 name-based, :func:`uuid.uuid5`) in a phenoflow namespace, over a canonical,
unambiguous encoding of the fields that identify the event. No clock, counter or
random number is involved.
"""

from __future__ import annotations

import uuid

__all__ = ["NAMESPACE", "event_id", "anomaly_event_id", "stepup_event_id"]

#: Namespace of every phenoflow event id (itself a uuid5 of a fixed URL).
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://phenoflow.invalid/events/v1")

# Unit separator: cannot occur in participant ids ([A-Za-z0-9_.-]), days or model ids,
# so joined parts cannot collide ("a|b","c" vs "a","b|c").
_SEP = "\x1f"


def _canonical(part: object) -> str:
    """One field as text; floats by ``repr`` (shortest round-trip form, stable)."""
    if part is None:
        return "\x00"
    if isinstance(part, bool):
        return "true" if part else "false"
    if isinstance(part, float):
        return repr(part)
    return str(part)


def event_id(kind: str, *parts: object) -> str:
    """The uuid5 (canonical string form) of ``kind`` and ``parts``, in that order."""
    name = _SEP.join([kind, *(_canonical(p) for p in parts)])
    return str(uuid.uuid5(NAMESPACE, name))


def anomaly_event_id(participant: str, day: str, model: str) -> str:
    """Id of the anomaly on local ``day`` (YYYY-MM-DD) for ``participant`` under ``model``.

    The score is not part of the id: it is a deterministic function of the day's
    input and the model, so (participant, day, model) already identifies it.
    """
    return event_id("anomaly", participant, day, model)


def stepup_event_id(
    participant: str,
    source: str,
    when: str | float,
    from_level: str,
    to_level: str,
    model: str | None = None,
) -> str:
    """Id of a step-up: ``when`` is the survey ``ts`` (epoch s) or the passive ``day``.

    ``model`` is given for passive step-ups (they depend on the anomaly model) and
    None for survey step-ups.
    """
    return event_id("stepup", participant, source, when, from_level, to_level, model)
