"""connectors/kafka/source.py against the embedded broker: complete reads, resume, end, errors."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, run_main

from phenoflow.connectors.kafka.clients import ensure_topics, producer
from phenoflow.connectors.kafka.source import (
    PartitionGroupSource,
    SourceError,
    consumer_lags,
)
from phenoflow.core.config import Settings

pytestmark = pytest.mark.integration


def _produce(settings: Settings, counts: dict[str, int]) -> set[tuple[str, bytes]]:
    """``counts[short]`` messages per topic, keyed by 13 participants; returns (full topic, value)."""
    prod = producer(settings)
    sent = set()
    for short, n in counts.items():
        for i in range(n):
            value = f"{short}:{i}".encode()
            prod.produce(settings.topic(short), value, key=f"p{i % 13:03d}".encode())
            sent.add((settings.topic(short), value))
    assert prod.flush(10) == 0
    return sent


def _drain(part, limit: int | None = None) -> list:
    out: list = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (limit is None or len(out) < limit):
        try:
            out.extend(part.next_batch())
        except StopIteration:
            part.close()
            return out
    if limit is None:
        raise AssertionError("source partition did not reach its end within 30 s")
    return out


def test_reads_every_message_once_and_stops_at_the_end(kafka: Settings) -> None:
    # Two topics with different partition counts: source partition 3 covers only the first.
    ensure_topics(kafka, ["raw.screen"])
    ensure_topics(dataclasses.replace(kafka, partitions=2), ["raw.sms"])
    sent = _produce(kafka, {"raw.screen": 500, "raw.sms": 120})
    src = PartitionGroupSource(kafka.bootstrap, [kafka.topic("raw.screen"), kafka.topic("raw.sms")],
                               tail=False, batch_size=37)
    assert src.list_parts() == ["0", "1", "2", "3"]

    flow = Dataflow("source_test")
    got: list = []
    op.output("out", op.input("in", flow, src), TestingSink(got))
    run_main(flow)
    assert not [m for m in got if isinstance(m, SourceError)]
    pairs = [(topic, value) for topic, _key, value, _p, _o in got]
    assert Counter(pairs).most_common(1)[0][1] == 1  # no duplicates
    assert set(pairs) == sent
    # A message's partition is the source partition that read it; offsets are consecutive per partition.
    per_tp: dict[tuple[str, int], list[int]] = {}
    for topic, _key, _value, partition, offset in got:
        per_tp.setdefault((topic, partition), []).append(offset)
    assert {p for _t, p in per_tp} == {0, 1, 2, 3}
    assert all(sorted(o) == list(range(len(o))) for o in per_tp.values())


def test_resume_from_snapshot_continues_without_loss_or_duplicates(kafka: Settings) -> None:
    ensure_topics(kafka, ["raw.screen", "raw.call"])
    _produce(kafka, {"raw.screen": 1500, "raw.call": 600})
    topics = [kafka.topic("raw.screen"), kafka.topic("raw.call")]
    src = PartitionGroupSource(kafka.bootstrap, topics, tail=False, batch_size=25)
    whole = _drain(src.build_part("in", "1", None))

    part = src.build_part("in", "1", None)
    first = _drain(part, limit=60)
    state = part.snapshot()
    part.close()
    assert sum(state.values()) == len(first)  # next offsets: everything before was handed out
    rest = _drain(src.build_part("in", "1", state))
    assert sorted(first + rest) == sorted(whole)
    assert len(first) + len(rest) == len(whole) > 60


def test_tail_mode_keeps_polling_after_the_end(kafka: Settings) -> None:
    ensure_topics(dataclasses.replace(kafka, partitions=1), ["raw.screen"])
    _produce(kafka, {"raw.screen": 40})
    part = PartitionGroupSource(kafka.bootstrap, [kafka.topic("raw.screen")], tail=True).build_part("in", "0", None)
    seen: list = []
    deadline = time.monotonic() + 20
    while len(seen) < 40 and time.monotonic() < deadline:
        seen += part.next_batch()
    quiet_until = time.monotonic() + 1.5
    while time.monotonic() < quiet_until:
        seen += part.next_batch()  # raises StopIteration if the source ended: it must not while tailing
    _produce(kafka, {"raw.screen": 3})  # values repeat "raw.screen:0..2": read again as new messages
    deadline = time.monotonic() + 20
    while len(seen) < 43 and time.monotonic() < deadline:
        seen += part.next_batch()
    part.close()
    assert [o for *_, o in seen] == list(range(43))


def test_missing_topic_is_named_in_the_error(kafka: Settings) -> None:
    src = PartitionGroupSource(kafka.bootstrap, [kafka.topic("raw.nope")], tail=False)
    with pytest.raises(RuntimeError, match=r"raw\.nope.*create it"):
        src.list_parts()


def test_consumer_lag_from_librdkafka_statistics() -> None:
    stats = {"topics": {"a": {"partitions": {"2": {"ls_offset": 120, "lo_offset": 20}}},
                        "b": {"partitions": {"2": {"ls_offset": -1001, "lo_offset": -1001}}}}}
    assert consumer_lags(stats, {"a": 100, "b": 0}, 2) == {"a": 20}
    assert consumer_lags(stats, {"a": 0}, 2) == {"a": 100}  # below the log start: counts from it
    assert consumer_lags(stats, {"a": 130}, 2) == {"a": 0}
    assert consumer_lags(stats, {"a": 5}, 1) == {}
