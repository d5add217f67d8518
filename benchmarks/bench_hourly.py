"""Hourly-stage throughput, raw topics → hourly records, against two peers in one run.

One embedded broker, one simulated cohort replayed once onto the raw topics,
then each contender reads all six hourly raw topics (accelerometer, screen,
call, sms, location, ambient) to their end and writes one record per
participant-hour to an output topic:

1. **phenoflow**: the Bytewax hourly flow (``build_flow(settings, ("hourly",),
   until_end=True)`` run in-process with ``bytewax.testing.run_main``): contract
   decode and validation, per-participant :class:`HourlyAggregator` (≈40
   features: places by DBSCAN, sleep, imputation, …), ``features.hourly`` sink.
   Timed from the start of ``run_main`` to its return (end of input, windows
   flushed, sink flushed).
2. **plain loop** ("our practical limit"): one confluent-kafka consumer assigned
   to every raw partition, ``consume(10000)`` batches to partition EOF, msgspec
   decode into field-only Structs (no validation), numpy magnitude of every
   accelerometer sample per batch, per participant-hour: mean ‖a‖, screen
   unlocks, calls, SMS, location fixes, mean light and sound; one JSON message
   per participant-hour produced at end of input. Timed from ``assign`` to the
   producer's final flush.
3. **Quix Streams** (the peer the issue names): one ``StreamingDataFrame`` per
   raw topic, concatenated (Quix aligns the partitions by event time), event time
   from the value (``timestamp_extractor``), 1-h tumbling windows per message key
   (= participant) with a ``reduce`` computing the same simplified aggregates
   (numpy magnitude of each chunk inside the reducer), ``.final()`` to an output
   topic. Quix needs a consumer group; its join takes ≈ 23 s on this broker, so
   it is timed from the first processed message (``on_message_processed``):
   at steady state (first 90 % of the input, see :func:`run_quix`) and to the
   last expected message, then stopped with ``app.stop()``.

Reference rows: the flow's source (``connectors/kafka_source.py``) → one map →
a null sink, the floor of any flow on that source, and the same with Bytewax's
own ``KafkaSource``. Rates are accelerometer samples/s and discrete
(non-accelerometer) events/s over the same time (all topics are processed
together); wall and CPU time (this process, all threads) are both printed, the
machine being shared. When phenoflow is below 0.5× the plain loop, the breakdown
of ``bench_hourly_breakdown.py`` follows.

Run: ``.venv/bin/python benchmarks/bench_hourly.py [--participants 10 --days 14]
[--accel-hz 1] [--skip-quix] [--breakdown] [--profile 40]`` (``--profile N``
runs the flow once more under cProfile and prints the top N functions).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
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

from phenoflow.config import Settings, load_settings
from phenoflow.connectors import kafka_io
from phenoflow.connectors.broker import EmbeddedBroker
from phenoflow.connectors.replay import replay
from phenoflow.contract import ALL_TOPICS
from phenoflow.flows.pipeline import build_flow, input_topics

from bench_hourly_breakdown import breakdown, cross_check, profile_flow  # noqa: E402 (benchmarks/ is on sys.path)

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


# --- helpers ----------------------------------------------------------------------------


def read_topic(settings: Settings, short: str, timeout: float = 2.0) -> list[tuple[bytes | None, bytes]]:
    """(key, value) of every message on a topic, read by assignment to partition EOF (no group join)."""
    topic = settings.topic(short)
    parts = kafka_io.topic_partitions(settings, topic)
    c = kafka_io.consumer(settings, group=f"bench-read-{uuid.uuid4().hex[:8]}")
    c.assign([TopicPartition(topic, p, 0) for p in parts])
    out, pending, deadline = [], set(parts), time.monotonic() + 120
    while pending and time.monotonic() < deadline:
        for m in c.consume(10_000, timeout):
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    pending.discard(m.partition())
                continue
            out.append((m.key(), m.value()))
    c.close()
    return out


# --- (1) phenoflow ----------------------------------------------------------------------


def run_phenoflow(settings: Settings, gc_tuned: bool = True) -> Result:
    """The hourly flow in-process until end of input; wall and CPU time of ``run_main``.

    With the flow process's GC setting (``tune_gc``, as ``get_flow`` applies; ``gc_tuned=False``:
    Python's default), restored afterwards.
    """
    import gc

    from bytewax.testing import run_main

    from phenoflow.flows.pipeline import tune_gc

    flow = build_flow(settings, ("hourly",), until_end=True, flow_id=f"bench_{uuid.uuid4().hex[:6]}")
    old = gc.get_threshold()
    if gc_tuned:
        tune_gc()
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        run_main(flow)
    finally:
        gc.set_threshold(*old)
    return Result("phenoflow (Bytewax hourly flow)", time.perf_counter() - t0, 0, cpu=time.process_time() - c0)


def run_bytewax_floor(settings: Settings, bytewax_source: bool = False) -> Result:
    """Reference: the flow's source (same batch size) → one map → a null sink.

    ``bytewax_source`` uses Bytewax's own ``KafkaSource`` instead (one consumer
    per topic-partition), the source the flow used before connectors/kafka_source.py.
    """
    import bytewax.operators as op
    from bytewax.connectors.kafka import KafkaSource
    from bytewax.dataflow import Dataflow
    from bytewax.outputs import DynamicSink, StatelessSinkPartition
    from bytewax.testing import run_main

    from phenoflow.connectors.kafka_source import PartitionGroupSource
    from phenoflow.flows.stages import SOURCE_BATCH

    class _Null(StatelessSinkPartition[Any]):
        def write_batch(self, items: list[Any]) -> None:
            pass

    class _NullSink(DynamicSink[Any]):
        def build(self, _step_id: str, _worker_index: int, _worker_count: int) -> _Null:
            return _Null()

    flow = Dataflow(f"floor_{uuid.uuid4().hex[:6]}")
    topics = [settings.topic(t) for t in HOURLY_INPUTS]
    if bytewax_source:
        src: Any = KafkaSource([settings.bootstrap], topics, tail=False, batch_size=SOURCE_BATCH,
                               raise_on_errors=False)
        size, name, note = (lambda m: len(m.value or b"")), "ref: Bytewax KafkaSource → map → null", \
            "Bytewax's own source (one consumer per topic-partition)"
    else:
        src = PartitionGroupSource(settings.bootstrap, topics, tail=False, batch_size=SOURCE_BATCH)
        size, name, note = (lambda m: len(m[2] or b"")), "ref: flow's source → map → null", \
            "floor of any flow on this source"
    op.output("out", op.map("size", op.input("in", flow, src), size), _NullSink())
    t0, c0 = time.perf_counter(), time.process_time()
    run_main(flow)
    return Result(name, time.perf_counter() - t0, 0, cpu=time.process_time() - c0, note=note)


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
    from phenoflow.connectors.kafka_source import UNTIL_END_FETCH_WAIT_MS

    # The same end-of-partition setting as the flow's source when it reads to the end.
    c = kafka_io.consumer(settings, group=f"bench-plain-{uuid.uuid4().hex[:8]}",
                          **{"fetch.wait.max.ms": UNTIL_END_FETCH_WAIT_MS})
    prod = kafka_io.producer(settings, **{"delivery.report.only.error": True})

    t0, c0 = time.perf_counter(), time.process_time()
    c.assign([TopicPartition(t, p, 0) for t in topics for p in parts[t]])
    pending = {(t, p) for t in topics for p in parts[t]}
    while pending:
        msgs = c.consume(10_000, 0.05)  # a long timeout would idle on the last, short batch
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
            for u, nk, sk in zip(uniq.tolist(), n.tolist(), tot.tolist()):
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
             timeout_s: float) -> tuple[Result, Result]:
    """Quix Streams 1-h tumbling windows per participant; timed after the group join.

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
    deciles = " ".join(f"{b - a:.1f}" for a, b in zip([progress["t_first"], *marks], marks))
    print(f"Quix: seconds per 10 % of the input: {deciles}")
    steady = Result("Quix Streams 3.28, steady (first 90 %)",
                    (progress["t_steady"] - progress["t_first"]) * expected / steady_n, 0,
                    cpu=(progress["c_steady"] - progress["c_first"]) * expected / steady_n,
                    note=f"group join + start-up {join:.1f} s not counted")
    whole = Result("Quix Streams 3.28, first → last msg", progress["t_last"] - progress["t_first"], 0,
                   cpu=progress["c_last"] - progress["c_first"],
                   note=f"incl. end-of-input wait; {late[0]:,} msgs dropped as late (grace {grace_s / 3600:.0f} h)")
    return steady, whole


# --- main -------------------------------------------------------------------------------


def _rate(x: float, seconds: float) -> str:
    return f"{x / seconds:>12,.0f}" if seconds > 0 else f"{'n/a':>12}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--participants", type=int, default=10)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--accel-hz", type=float, default=1.0,
                    help="simulated accelerometer rate (10-s bursts every 5 min: chunk = 10 × Hz samples)")
    ap.add_argument("--skip-quix", action="store_true", help="leave out the Quix Streams peer")
    ap.add_argument("--quix-timeout", type=float, default=240.0, help="give up on Quix after this many s")
    ap.add_argument("--breakdown", action="store_true",
                    help="time the flow's pieces alone (automatic when phenoflow < 0.5× plain)")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="run the phenoflow flow again under cProfile and print the top N functions")
    args = ap.parse_args()
    logging.getLogger("phenoflow").setLevel(logging.WARNING)

    from phenoflow.simulate import simulate_cohort

    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(port=0) as broker:
        cohort = Path(tmp) / "cohort"
        simulate_cohort(cohort, args.participants, args.days, seed=args.seed, accel_hz=args.accel_hz)
        settings = load_settings(bootstrap=broker.bootstrap, topic_prefix="bench.hourly.")
        kafka_io.ensure_topics(settings, [*ALL_TOPICS, PLAIN_OUT, QUIX_OUT])
        summary = replay(cohort, settings, topics=set(HOURLY_INPUTS))
        samples = summary.accelerometer_samples
        chunks = summary.sent["raw.accelerometer"]
        events = summary.total - chunks
        print(f"cohort: {args.participants} participants × {args.days} days (seed {args.seed}): "
              f"{summary.total:,} messages = {chunks:,} accelerometer chunks ({samples:,} samples) "
              f"+ {events:,} discrete events; replayed in {summary.seconds:.1f} s")

        results: list[Result] = []
        r = run_phenoflow(settings)
        dumps = {"phenoflow": read_topic(settings, "features.hourly")}
        r.outputs = len(dumps["phenoflow"])
        results.append(r)
        r = run_plain(settings)
        dumps["plain"] = read_topic(settings, PLAIN_OUT)
        r.outputs = len(dumps["plain"])
        results.append(r)
        floors = [run_bytewax_floor(settings), run_bytewax_floor(settings, bytewax_source=True)]
        quix: Result | None = None
        if not args.skip_quix:
            try:
                quix, quix_whole = run_quix(settings, summary.total, Path(tmp) / "quix-state",
                                            settings.allowed_lateness_s, args.quix_timeout)
                dumps["quix"] = read_topic(settings, QUIX_OUT)
                quix.outputs = quix_whole.outputs = len(dumps["quix"])
                results += [quix, quix_whole]
            except Exception as exc:  # noqa: BLE001 - a failed peer is reported, not fatal
                print(f"Quix Streams failed: {type(exc).__name__}: {exc}")

        print(f"\n{'contender':<40}{'wall s':>8}{'CPU s':>7}{'samples/s':>13}{'events/s':>12}{'msgs/s':>10}"
              f"{'outputs':>9}")
        for r in results:
            print(f"{r.name:<40}{r.seconds:>8.2f}{r.cpu:>7.2f}{_rate(samples, r.seconds)}"
                  f"{_rate(events, r.seconds)[1:]}{_rate(summary.total, r.seconds)[2:]}{r.outputs:>9,}  {r.note}")
        for r in floors:
            print(f"{r.name:<40}{r.seconds:>8.2f}{r.cpu:>7.2f}{_rate(samples, r.seconds)}"
                  f"{_rate(events, r.seconds)[1:]}{_rate(summary.total, r.seconds)[2:]}{'-':>9}  {r.note}")
        pf, plain = results[0], results[1]
        print(f"\nphenoflow / plain loop   = {plain.seconds / pf.seconds:.2f}× by wall time, "
              f"{plain.cpu / pf.cpu:.2f}× by CPU time  (goal ≥ 0.5×)")
        if quix is not None:
            print(f"phenoflow / Quix Streams = {quix.seconds / pf.seconds:.2f}× by wall time, "
                  f"{quix.cpu / pf.cpu:.2f}× by CPU time, against Quix's steady state  (goal > 1×)")
        print("outputs: phenoflow emits every participant-hour from first to last (imputed hours too); the peers "
              "emit only hours with data, and Quix's last window per partition stays open (no end-of-input flush).")
        cross_check(dumps)

        if plain.seconds / pf.seconds < 0.5 or args.breakdown:
            breakdown(settings, pf.cpu, run_phenoflow)
        if args.profile:
            profile_flow(settings, args.profile)


if __name__ == "__main__":
    main()
