"""The two peers of ``bench_hourly.py``: a plain confluent-kafka + numpy loop and Quix Streams.

Each reads the six hourly raw topics to their end and writes one record per
participant-hour to its own output topic (what they compute and how they are
timed: ``bench_hourly.py``'s docstring). Also the :class:`Result` row the
benchmark prints.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
from confluent_kafka import KafkaError, TopicPartition

from phenoflow.connectors.kafka import clients as kafka_io
from phenoflow.core.config import Settings
from phenoflow.flows.pipeline import input_topics

HOURLY_INPUTS: tuple[str, ...] = input_topics(("hourly",))
PLAIN_OUT = "bench.plain_hourly"
QUIX_OUT = "bench.quix_hourly"


@dataclass
class Result:
    name: str
    seconds: float  #: wall time
    outputs: int
    note: str = ""
    cpu: float = 0.0  #: CPU time of this process over the same span (all threads)


# --- (2) plain confluent-kafka + numpy loop ---------------------------------------------


class _Acc(msgspec.Struct):
    participant: str
    ts: list[float]
    x: list[float]
    y: list[float]
    z: list[float]


class _Point(msgspec.Struct):
    """Any discrete raw event: the fields the simplified aggregation needs."""

    participant: str
    ts: float
    state: str | None = None
    direction: str | None = None
    duration_s: float | None = None
    lat: float | None = None
    light_lux: float | None = None
    sound_db: float | None = None


class _Out(msgspec.Struct):
    participant: str
    hour_start: float
    features: dict[str, float | None]


# Slots of the per participant-hour accumulator.
A_N, A_S, SCR, CALL, SMS, LOC, L_N, L_S, S_N, S_S = range(10)


def _hour_record(pid: str, hour: int, a: list[float]) -> _Out:
    def mean(s: float, n: float) -> float | None:
        return s / n if n else None

    return _Out(pid, hour * 3600.0, {
        "accel_mean": mean(a[A_S], a[A_N]), "screen_unlocks": a[SCR], "call_n": a[CALL], "sms_n": a[SMS],
        "location_fixes": a[LOC], "light_lux_mean": mean(a[L_S], a[L_N]), "sound_db_mean": mean(a[S_S], a[S_N]),
    })


def run_plain(settings: Settings) -> Result:
    """confluent-kafka consume(10000) batches + msgspec + numpy, one record per participant-hour."""
    acc_topic = settings.topic("raw.accelerometer")
    topics = [settings.topic(t) for t in HOURLY_INPUTS]
    parts = {t: kafka_io.topic_partitions(settings, t) for t in topics}
    out_topic = settings.topic(PLAIN_OUT)
    dec_acc, dec_pt = msgspec.json.Decoder(_Acc), msgspec.json.Decoder(_Point)
    enc = msgspec.json.Encoder()
    pids: dict[str, int] = {}
    names: list[str] = []
    state: defaultdict[tuple[int, int], list[float]] = defaultdict(lambda: [0.0] * 10)
    from phenoflow.connectors.kafka.source import UNTIL_END_FETCH_WAIT_MS

    # The same end-of-partition setting as the flow's source when it reads to the end.
    # The flow's consumer layout (connectors/kafka/source.py): consumer i reads partition i
    # of every input topic, and one thread polls the consumers in turn.
    indices = sorted({p for t in topics for p in parts[t]})
    consumers = [kafka_io.consumer(settings, group=f"bench-plain-{uuid.uuid4().hex[:8]}",
                                   **{"fetch.wait.max.ms": UNTIL_END_FETCH_WAIT_MS}) for _ in indices]
    prod = kafka_io.producer(settings, **{"delivery.report.only.error": True})

    t0, c0 = time.perf_counter(), time.process_time()
    for i, c in zip(indices, consumers, strict=True):
        c.assign([TopicPartition(t, i, 0) for t in topics if i in parts[t]])
    pending = {(t, p) for t in topics for p in parts[t]}
    turn = 0
    while pending:
        c = consumers[turn % len(consumers)]
        turn += 1
        msgs = c.consume(10_000, 0.001)  # the flow source's poll timeout
        ids: list[int] = []
        ts: list[float] = []
        xs: list[float] = []
        ys: list[float] = []
        zs: list[float] = []
        for m in msgs:
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    pending.discard((m.topic(), m.partition()))
                continue
            if m.topic() == acc_topic:
                a = dec_acc.decode(m.value())
                k = pids.get(a.participant)
                if k is None:
                    k = pids[a.participant] = len(names)
                    names.append(a.participant)
                ids.extend([k] * len(a.ts))
                ts += a.ts
                xs += a.x
                ys += a.y
                zs += a.z
                continue
            e = dec_pt.decode(m.value())
            k = pids.get(e.participant)
            if k is None:
                k = pids[e.participant] = len(names)
                names.append(e.participant)
            s = state[(k, int(e.ts // 3600.0))]
            if e.state is not None:
                s[SCR] += e.state == "unlock"
            elif e.duration_s is not None:
                s[CALL] += 1
            elif e.direction is not None:
                s[SMS] += 1
            elif e.lat is not None:
                s[LOC] += 1
            else:
                if e.light_lux is not None:
                    s[L_N] += 1
                    s[L_S] += e.light_lux
                if e.sound_db is not None:
                    s[S_N] += 1
                    s[S_S] += e.sound_db
        if ts:
            # One vectorised pass per batch: ‖a‖ of every sample, grouped by (participant, hour).
            mag = np.sqrt(np.square(xs) + np.square(ys) + np.square(zs))
            key = np.asarray(ids, np.int64) * 10_000_000 + (np.asarray(ts) // 3600.0).astype(np.int64)
            uniq, inv = np.unique(key, return_inverse=True)
            n, tot = np.bincount(inv), np.bincount(inv, weights=mag)
            for u, nk, sk in zip(uniq.tolist(), n.tolist(), tot.tolist(), strict=True):
                s = state[(u // 10_000_000, u % 10_000_000)]
                s[A_N] += nk
                s[A_S] += sk
    for (k, hour), a in state.items():
        pid = names[k]
        while True:
            try:
                prod.produce(out_topic, enc.encode(_hour_record(pid, hour, a)), key=pid.encode())
                break
            except BufferError:
                prod.poll(0.05)
    prod.flush(60)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    for c in consumers:
        c.close()
    return Result("plain confluent-kafka + numpy", dt, 0, cpu=cpu)

# --- (3) Quix Streams -------------------------------------------------------------------


def _quix_ts(value: Any, _headers: Any, _timestamp: float, _ttype: Any) -> int:
    """Event time in ms from the contract value (first sample of an accelerometer chunk)."""
    ts = value["ts"]
    return int((ts[0] if isinstance(ts, list) else ts) * 1000.0)


def _quix_empty() -> dict[str, float]:
    return {"a_n": 0, "a_s": 0.0, "scr": 0, "call": 0, "sms": 0, "loc": 0, "l_n": 0, "l_s": 0.0, "s_n": 0, "s_s": 0.0}


def _quix_reduce(agg: dict[str, float], v: dict[str, Any]) -> dict[str, float]:
    """The plain loop's simplified aggregates, one event at a time (Quix's model)."""
    if "x" in v:
        mag = np.sqrt(np.square(v["x"]) + np.square(v["y"]) + np.square(v["z"]))
        agg["a_n"] += mag.size
        agg["a_s"] += float(mag.sum())
    elif "state" in v:
        agg["scr"] += v["state"] == "unlock"
    elif "duration_s" in v:
        agg["call"] += 1
    elif "direction" in v:
        agg["sms"] += 1
    elif "lat" in v:
        agg["loc"] += 1
    else:
        if v.get("light_lux") is not None:
            agg["l_n"] += 1
            agg["l_s"] += v["light_lux"]
        if v.get("sound_db") is not None:
            agg["s_n"] += 1
            agg["s_s"] += v["sound_db"]
    return agg


def _quix_record(w: dict[str, Any]) -> dict[str, Any]:
    a = w["value"]

    def mean(s: float, n: float) -> float | None:
        return s / n if n else None

    return {"hour_start": w["start"] / 1000.0, "features": {
        "accel_mean": mean(a["a_s"], a["a_n"]), "screen_unlocks": a["scr"], "call_n": a["call"],
        "sms_n": a["sms"], "location_fixes": a["loc"], "light_lux_mean": mean(a["l_s"], a["l_n"]),
        "sound_db_mean": mean(a["s_s"], a["s_n"])}}


def run_quix(settings: Settings, expected: int, state_dir: Path, grace_s: float,
             timeout_s: float, changelog: bool = True) -> tuple[Result, Result]:
    """Quix Streams 1-h tumbling windows per participant; timed after the group join.

    ``changelog``: Quix's changelog topics back the window state (its default,
    durable); False keeps the state only in the local RocksDB store.

    Returns (steady state, first → last). Steady state: the first 90 % of the
    input, extrapolated to all of it. The last 10 % is excluded there because Quix
    holds buffered messages back while a partition does not look idle by its high
    watermark, and this broker's high watermark lags the real end of a partition
    (see connectors/broker.py): the end of a finite input then costs seconds of
    waiting, not processing.
    """
    from quixstreams import Application

    progress = {"n": 0, "t_first": 0.0, "t_last": 0.0, "c_first": 0.0, "c_last": 0.0}
    marks: list[float] = []  # wall clock at every 10 % of the input
    steady_n = int(0.9 * expected)
    app: Application

    def on_processed(_topic: str, _partition: int, _offset: int) -> None:
        progress["n"] += 1
        if progress["n"] % max(expected // 10, 1) == 0:
            marks.append(time.perf_counter())
        if progress["n"] == steady_n:
            progress["t_steady"], progress["c_steady"] = time.perf_counter(), time.process_time()
        if progress["n"] == 1:
            progress["t_first"], progress["c_first"] = time.perf_counter(), time.process_time()
        if progress["n"] == expected:
            progress["t_last"], progress["c_last"] = time.perf_counter(), time.process_time()
            app.stop()

    app = Application(
        broker_address=settings.bootstrap,
        consumer_group=f"bench-quix-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        state_dir=str(state_dir),
        loglevel="WARNING",
        on_message_processed=on_processed,
        commit_interval=5.0,  # Quix's default, spelled out: phenoflow's snapshot interval matches it
        use_changelog_topics=changelog,
    )
    topics = [app.topic(settings.topic(t), key_deserializer="str", value_deserializer="json",
                        timestamp_extractor=_quix_ts) for t in HOURLY_INPUTS]
    out = app.topic(settings.topic(QUIX_OUT), key_serializer="str", value_serializer="json")
    sdf = app.dataframe(topics[0])
    for t in topics[1:]:
        sdf = sdf.concat(app.dataframe(t))
    late = [0]

    def on_late(*_a: Any, **_k: Any) -> bool:
        late[0] += 1
        return False  # counted here instead of one log line per late message

    sdf = (sdf.tumbling_window(duration_ms=3_600_000, grace_ms=int(grace_s * 1000), on_late=on_late)
           .reduce(reducer=_quix_reduce, initializer=lambda v: _quix_reduce(_quix_empty(), v))
           .final()
           .apply(_quix_record))
    sdf.to_topic(out)
    guard = threading.Timer(timeout_s, app.stop)  # never hang the benchmark
    guard.daemon = True
    t0 = time.perf_counter()
    guard.start()
    try:
        app.run()
    finally:
        guard.cancel()
    if progress["n"] < expected:
        raise RuntimeError(f"Quix processed {progress['n']:,} of {expected:,} messages within {timeout_s:.0f} s")
    join = progress["t_first"] - t0
    deciles = " ".join(f"{b - a:.1f}" for a, b in zip([progress["t_first"], *marks], marks, strict=False))
    print(f"Quix: seconds per 10 % of the input: {deciles}")
    steady = Result("Quix Streams 3.28, steady (first 90 %)",
                    (progress["t_steady"] - progress["t_first"]) * expected / steady_n, 0,
                    cpu=(progress["c_steady"] - progress["c_first"]) * expected / steady_n,
                    note=f"group join + start-up {join:.1f} s not counted")
    whole = Result("Quix Streams 3.28, first → last msg", progress["t_last"] - progress["t_first"], 0,
                   cpu=progress["c_last"] - progress["c_first"],
                   note=f"incl. end-of-input wait; {late[0]:,} msgs dropped as late (grace {grace_s / 3600:.0f} h)")
    return steady, whole
