"""Background thread that reads the output topics into a :class:`~.view.DashboardView`.

Reads by partition *assignment* from the beginning (no consumer group: a group join
takes ≈ 23 s on the embedded broker, and every dashboard instance must see every
record anyway). Start-up catches up topic by topic, in an order chosen so that the
view can resolve what depends on other topics: acknowledgements after the events
they acknowledge, rhythm vectors after the anomalies whose contributors they give a
direction to. Then one consumer follows every topic from where catch-up stopped.
A restart therefore rebuilds the same view from the topics.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import Callable

import msgspec
from confluent_kafka import KafkaError, Message, TopicPartition

from phenoflow.connectors.kafka import clients as kafka_io
from phenoflow.core.config import Settings
from phenoflow.core.contract import DeadLetter, decode
from phenoflow.dashboard.view import DashboardView

__all__ = ["FOLLOWED", "Follower"]

log = logging.getLogger("phenoflow.dashboard")

#: Catch-up order (see the module docstring); also the set of topics followed.
FOLLOWED: tuple[str, ...] = ("events.anomaly", "events.stepup", "events.ack", "scores.daily",
                             "rhythm.daily", "features.hourly")

#: Low fetch wait: an event should reach the browser in well under a second.
_CONSUMER = {"fetch.wait.max.ms": 50, "fetch.min.bytes": 1}


class _Observed(msgspec.Struct, forbid_unknown_fields=False):
    observed: list[str] | None = None


_OBSERVED = msgspec.json.Decoder(_Observed)


class Follower(threading.Thread):
    """Feeds ``view`` from the topics; ``notify`` gets the view's live notifications.

    ``ready`` is set once every topic was read to the end it had at start-up.
    ``stats`` counts records per topic and undecodable ones (``rejected``): the
    pipeline dead-letters bad input, so a rejected record here means a writer that
    does not follow the contract; it is logged, not shown.
    """

    def __init__(self, settings: Settings, view: DashboardView,
                 notify: Callable[[list[dict]], None] = lambda _n: None) -> None:
        super().__init__(name="dashboard-follower", daemon=True)
        self.settings, self.view, self.notify = settings, view, notify
        self.ready = threading.Event()
        self.stopping = threading.Event()
        self.stats: Counter[str] = Counter()
        self.error: str | None = None

    def stop(self) -> None:
        """Ask the follower thread to stop after its current poll."""
        self.stopping.set()

    def _apply(self, msg: Message) -> None:
        full = msg.topic()
        topic = self.settings.short(full)
        value = msg.value()
        ev = decode(topic, msg.key(), value, partition=msg.partition(), offset=msg.offset())
        if isinstance(ev, DeadLetter):
            self.stats["rejected"] += 1
            log.warning("skipping a record that breaks the contract: %s", ev.error[:200])
            return
        observed = None
        if topic == "features.hourly" and value and b'"observed"' in value:
            try:
                observed = _OBSERVED.decode(value).observed
            except msgspec.DecodeError:
                observed = None
        self.stats[topic] += 1
        notes = self.view.apply(topic, ev, observed)
        if notes:
            self.notify(notes)

    def _catch_up(self, topic: str) -> list[TopicPartition]:
        """Read ``topic`` from the beginning to its current end; return the next offsets."""
        full = self.settings.topic(topic)
        parts = kafka_io.topic_partitions(self.settings, full)
        c = kafka_io.consumer(self.settings, group=None, **_CONSUMER)
        nxt = {p: 0 for p in parts}
        try:
            lows_highs = {p: c.get_watermark_offsets(TopicPartition(full, p), timeout=10) for p in parts}
            ends = {p: hi for p, (_lo, hi) in lows_highs.items()}
            pending = {p for p in parts if ends[p] > 0}
            c.assign([TopicPartition(full, p, 0) for p in pending])
            while pending and not self.stopping.is_set():
                for msg in c.consume(10_000, timeout=0.2):
                    err = msg.error()
                    if err is not None:
                        if err.code() == KafkaError._PARTITION_EOF:
                            pending.discard(msg.partition())
                        continue
                    self._apply(msg)
                    nxt[msg.partition()] = msg.offset() + 1
                    if nxt[msg.partition()] >= ends[msg.partition()]:
                        pending.discard(msg.partition())
        finally:
            c.close()
        return [TopicPartition(full, p, nxt[p]) for p in parts]

    def run(self) -> None:
        """Thread body: read every topic to its end, then follow them all."""
        try:
            t0 = time.monotonic()
            start: list[TopicPartition] = []
            for topic in FOLLOWED:
                start += self._catch_up(topic)
            log.info("dashboard view built in %.1f s: %s", time.monotonic() - t0, dict(self.stats))
            self.ready.set()
            c = kafka_io.consumer(self.settings, group=None, **_CONSUMER)
            try:
                c.assign(start)
                while not self.stopping.is_set():
                    # poll() returns on the first message (consume(n, t) waits out t unless n arrive),
                    # then whatever else is already fetched is taken without waiting.
                    first = c.poll(0.2)
                    batch = [] if first is None else [first, *c.consume(1000, timeout=0)]
                    for msg in batch:
                        if msg.error() is None:
                            self._apply(msg)
                        elif msg.error().code() != KafkaError._PARTITION_EOF:
                            log.warning("reading the topics: %s (retrying)", msg.error().str())
            finally:
                c.close()
        except Exception as exc:  # noqa: BLE001 - surfaced to the page and the log, not swallowed
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("dashboard follower stopped: %s", self.error)
            self.ready.set()
