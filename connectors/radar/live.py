"""Live RADAR-base input: Confluent-framed Avro messages → contract events, inside the flow.

Two pieces, wired by ``flows/radar_input.py``:

* :func:`radar_decoder` — stateless, per Bytewax batch: key and value through
  :mod:`~phenoflow.connectors.radar.wire`, the key to a pseudonym, the value
  through :func:`~phenoflow.connectors.radar.mapping.map_value`. Consecutive
  acceleration samples of a participant in the batch become one chunk. Any
  failure becomes a dead letter with the original value bytes and the reason.
  The dead letter's key is the pseudonym (or none when the key is undecodable):
  the original key bytes carry the raw ``userId`` and must not leave this stage.
* :class:`LocalTimeState` — keyed by participant: keeps the
  ``application_time_zone`` history (:class:`~phenoflow.connectors.radar.mapping.LocalTime`)
  and sets ``utc_offset_min``. At start the flow reads the whole
  ``application_time_zone`` topic (:func:`time_zone_history`), so data already on
  the cluster gets the offset in force at its time whatever order librdkafka
  hands the topics out in. A change that arrives later applies by event time to
  every event processed after it; events processed before it keep the offset
  known then (the configured zone until the first change arrives).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Union

import msgspec

from phenoflow.connectors.kafka.source import RawMessage, SourceError
from phenoflow.connectors.radar.mapping import (
    ACCELERATION,
    TIME_ZONE,
    Drop,
    LocalTime,
    TimeZoneChange,
    map_value,
    participant_of,
)
from phenoflow.connectors.radar.schemas import SchemaStore
from phenoflow.connectors.radar.wire import WireError, decode
from phenoflow.core import telemetry as metrics
from phenoflow.core.config import Settings
from phenoflow.core.contract import MAX_CHUNK, TOPIC_TYPES, DeadLetter, Event, dead_letter
from phenoflow.core.errors import UserError
from phenoflow.core.pseudonym import memoised_pseudonyms, study_secret
from phenoflow.core.state import PickleSnapshot

__all__ = ["radar_topics", "schema_store", "pseudonymizer", "radar_decoder", "time_zone_history", "LocalTimeState"]

log = logging.getLogger("phenoflow.radar")

#: What the decoder emits, keyed by participant ("" for dead letters without one).
Payload = Union[tuple[str, dict[str, Any]], TimeZoneChange, DeadLetter]


def radar_topics(settings: Settings) -> list[str]:
    """The RADAR-base topics to read (full names)."""
    topics = [t.strip() for t in settings.radar_topics.split(",") if t.strip()]
    if not topics:
        raise UserError("radar_topics is empty — list the RADAR-base topics to read")
    return topics


def schema_store(settings: Settings) -> SchemaStore:
    """Schemas from the registry (with the directory as a fallback) or the directory alone."""
    from pathlib import Path

    folder = Path(settings.radar_schemas_dir) if settings.radar_schemas_dir else None
    if settings.schema_registry_url:
        return SchemaStore.from_registry(settings.registry_config(), folder)
    if folder is None:
        raise UserError("--source radar needs schemas — set schema_registry_url or radar_schemas_dir "
                        "(PHENOFLOW_RADAR_SCHEMAS_DIR=path/to/RADAR-Schemas/commons)")
    return SchemaStore.from_dir(folder)


def pseudonymizer(settings: Settings) -> Callable[[str, str], str]:
    """``(project, user) → participant`` with the configured secret, memoised per raw id."""
    secret, _ = study_secret(settings)
    return memoised_pseudonyms(secret)


def radar_decoder(settings: Settings, store: SchemaStore | None = None,
                  pseudonym: Callable[[str, str], str] | None = None
                  ) -> Callable[[list[Union[RawMessage, SourceError]]], list[tuple[str, Payload]]]:
    """A batch mapper: RADAR messages → ``(participant, payload)``. Never raises on bad input."""
    store = store or schema_store(settings)
    pseudonym = pseudonym or pseudonymizer(settings)
    key_cache: dict[bytes, str] = {}  # key bytes → pseudonym: a participant's key repeats on every record

    def _decode(batch: list[Union[RawMessage, SourceError]]) -> list[tuple[str, Payload]]:
        zones: list[tuple[str, Payload]] = []
        out: list[tuple[str, Payload]] = []
        runs: dict[str, list[dict[str, Any]]] = {}
        seen: dict[str, int] = {}
        for item in batch:
            if isinstance(item, SourceError):
                metrics.KAFKA_ERRORS.labels(topic=item.topic, code=item.code).inc()
                log.warning("Kafka consumer error on %s: %s — retrying", item.topic or "?", item.text)
                continue
            topic, key, value, partition, offset = item
            seen[topic] = seen.get(topic, 0) + 1

            # defaults bind this message's fields (the closure is called within this iteration only)
            def dead(reason: str, pid: str | None, topic: str = topic, value: Any = value,
                     partition: int = partition, offset: int = offset) -> None:
                metrics.DEAD_LETTERS.labels(topic=topic, reason="radar").inc()
                out.append((pid or "", dead_letter(topic, b"" if value is None else bytes(value),
                                                   f"{topic}: {reason}", key=None if pid is None else pid.encode(),
                                                   partition=partition, offset=offset)))

            pid = key_cache.get(key) if key is not None else None
            if pid is None:
                try:
                    _, key_record = decode(key, store, "key")
                    pid = participant_of(key_record, pseudonym)
                except WireError as exc:
                    dead(str(exc), None)
                    continue
                except (KeyError, TypeError):
                    dead("key is not an ObservationKey with a userId", None)
                    continue
                if len(key_cache) < 100_000:
                    key_cache[bytes(key)] = pid  # type: ignore[arg-type]
            try:
                schema, record = decode(value, store, "value")
            except WireError as exc:
                dead(str(exc), pid)
                continue
            mapped = map_value(schema, pid, record)
            if isinstance(mapped, Drop):
                dead(mapped.reason, pid)
            elif isinstance(mapped, TimeZoneChange):
                zones.append((pid, mapped))
            elif schema == ACCELERATION:
                run = runs.setdefault(pid, [])
                v = mapped[1]
                if run and len(run[-1]["ts"]) < MAX_CHUNK and v["ts"][0] >= run[-1]["ts"][-1]:
                    last = run[-1]
                    last["ts"].append(v["ts"][0])
                    last["x"].append(v["x"][0])
                    last["y"].append(v["y"][0])
                    last["z"].append(v["z"][0])
                else:
                    run.append(v)
            else:
                out.append((pid, mapped))
        for topic, n in seen.items():  # one metric update per topic per batch, not per message
            metrics.MESSAGES_IN.labels(topic=topic).inc(n)
        # Time-zone changes first, so they apply to the batch's own events; chunks last.
        for pid, chunks in runs.items():
            out.extend((pid, ("raw.accelerometer", c)) for c in chunks)
        return zones + out

    return _decode


def time_zone_history(settings: Settings, store: SchemaStore, pseudonym: Callable[[str, str], str],
                      timeout: float = 30.0) -> dict[str, list[tuple[float, int]]]:
    """Every ``application_time_zone`` record on the cluster now, per participant (read to the end at start).

    The topic is tiny (a record when the app starts or the zone changes), and
    reading it first means a flow that starts on existing data (a restart, a
    batch re-computation) gives every event the offset in force at its time,
    whatever order librdkafka hands out the topics in. Records that arrive later
    are applied as they come.
    """
    from confluent_kafka import KafkaError

    from phenoflow.connectors.kafka.clients import assign_all, consumer, topic_partitions

    history: dict[str, list[tuple[float, int]]] = {}
    for topic in (t for t in radar_topics(settings) if t.endswith("application_time_zone")):
        parts = topic_partitions(settings, topic)
        c = consumer(settings)
        try:
            assign_all(c, topic, parts, 0)
            done: set[int] = set()
            deadline = time.monotonic() + timeout
            while len(done) < len(parts) and time.monotonic() < deadline:
                for m in c.consume(500, 0.5):
                    err = m.error()
                    if err is not None:
                        if err.code() == KafkaError._PARTITION_EOF:
                            done.add(m.partition())
                        continue
                    try:
                        _, key = decode(m.key(), store, "key")
                        _, value = decode(m.value(), store, "value")
                        change = map_value(TIME_ZONE, participant_of(key, pseudonym), value)
                    except (WireError, KeyError, TypeError):
                        continue  # the flow itself dead-letters it when it reads the topic
                    if isinstance(change, TimeZoneChange):
                        history.setdefault(change.participant, []).append((change.time, change.offset_min))
        finally:
            c.close()
    return history


_CONVERT = {short: tp for short, tp in TOPIC_TYPES.items() if short.startswith("raw.")}


def _participant(p: Payload) -> str:
    if isinstance(p, TimeZoneChange):
        return p.participant
    if isinstance(p, DeadLetter):
        return p.key or ""
    return p[1]["participant"]


class LocalTimeState(PickleSnapshot):
    """Per participant: time-zone history; payloads → contract events with ``utc_offset_min``.

    Has ``update_batch``/``flush`` so ``flows.stages.OperatorLogic`` can run it.
    """

    def __init__(self, zone: str | None = None, history: dict[str, list[tuple[float, int]]] | None = None) -> None:
        self.local = LocalTime(zone)
        self._history = history  # read at start (time_zone_history); taken on the first payload

    def __getstate__(self) -> dict[str, Any]:
        return {"local": self.local, "_history": None}  # snapshots keep the participant's own history only

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def update_batch(self, payloads: list[Payload], now: float | None = None) -> list[Union[Event, DeadLetter]]:
        """Give decoded RADAR payloads their participant's local offset; return contract events and dead letters."""
        out: list[Union[Event, DeadLetter]] = []
        if self._history is not None:
            pid = next((_participant(p) for p in payloads), "")
            for t, off in self._history.get(pid, ()):
                self.local.add(t, off)
            self._history = None
        for p in payloads:
            if isinstance(p, TimeZoneChange):
                self.local.add(p.time, p.offset_min)
        for p in payloads:
            if isinstance(p, DeadLetter):
                out.append(p)
            elif not isinstance(p, TimeZoneChange):
                short, value = p
                for piece in self.local.apply(short, value):
                    try:
                        out.append(msgspec.convert(piece, _CONVERT[short]))
                    except msgspec.ValidationError as exc:  # mapping checks ranges; this is the backstop
                        out.append(dead_letter(short, msgspec.json.encode(piece), f"{short}: {exc}",
                                               key=piece["participant"].encode()))
        return out

    def flush(self) -> list[Any]:
        """Nothing is buffered: end of input emits nothing."""
        return []
