"""Hourly-stage throughput, raw topics → hourly records, against two peers in one run.

One embedded broker, one simulated cohort replayed once onto the raw topics,
then each contender reads all six hourly raw topics (accelerometer, screen,
call, sms, location, ambient) to their end and writes one record per
participant-hour to an output topic:

1. **phenoflow**: the Bytewax hourly flow (``build_flow(settings, ("hourly",),
   until_end=True)`` run in-process with ``bytewax.testing.run_main``): contract
   decode and validation, per-participant :class:`HourlyAggregator` (the 31
   features of ``FEATURE_NAMES``: places by DBSCAN, sleep, imputation, …),
   ``features.hourly`` sink.
   Timed from the start of ``run_main`` to its return (end of input, windows
   flushed, sink flushed).
2. **plain loop** ("our practical limit"): the flow's consumer layout — one
   confluent-kafka consumer per partition index, assigned partition *i* of every
   raw topic (4 consumers for 4 partitions), polled in turn by one thread —
   ``consume(10000)`` batches to partition EOF, msgspec
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

Durability is the same for both frameworks (``--durable``, the default): phenoflow
runs with Bytewax recovery (a state snapshot every 5 s) and Quix with its changelog
topics and its default 5-s commit interval; ``--no-durable`` runs phenoflow without
recovery and Quix without changelog topics (Quix cannot run without committing
offsets, so it still commits every 5 s). The plain loop keeps no state.

Reference rows: the flow's source (``connectors/kafka/source.py``) → one map →
a null sink, the floor of any flow on that source, and the same with Bytewax's
own ``KafkaSource``. Rates are accelerometer samples/s and discrete
(non-accelerometer) events/s over the same time (all topics are processed
together); wall and CPU time (this process, all threads) are both printed, and
the ratios by CPU time are the headline: on a shared 2-core machine wall time is
mostly waiting for a core. When phenoflow is below 0.5× the plain loop, the breakdown
of ``bench_hourly_breakdown.py`` follows.

Run: ``.venv/bin/python benchmarks/bench_hourly.py [--participants 10 --days 14]
[--accel-hz 1] [--skip-quix] [--breakdown] [--profile 40]`` (``--profile N``
runs the flow once more under cProfile and prints the top N functions).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench_hourly_breakdown import breakdown, cross_check, profile_flow
from bench_hourly_peers import (
    HOURLY_INPUTS,
    PLAIN_OUT,
    QUIX_OUT,
    Result,
    run_plain,
    run_quix,
)
from confluent_kafka import KafkaError, TopicPartition

from phenoflow.connectors.broker import EmbeddedBroker
from phenoflow.connectors.kafka import clients as kafka_io
from phenoflow.connectors.replay import replay
from phenoflow.core.config import Settings, load_settings
from phenoflow.core.contract import ALL_TOPICS
from phenoflow.flows.pipeline import build_flow

#: Seconds between durable checkpoints in ``--durable`` runs: Quix's default ``commit_interval``,
#: used as phenoflow's recovery snapshot interval so both persist state equally often.
DURABLE_INTERVAL_S = 5.0

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


def run_phenoflow(settings: Settings, gc_tuned: bool = True, recovery_dir: Path | None = None) -> Result:
    """The hourly flow in-process until end of input; wall and CPU time of ``run_main``.

    With the flow process's GC setting (``tune_gc``, as ``get_flow`` applies; ``gc_tuned=False``:
    Python's default), restored afterwards. ``recovery_dir``: Bytewax recovery on, a state
    snapshot every :data:`DURABLE_INTERVAL_S` (Quix's default commit interval).
    """
    import gc
    from datetime import timedelta

    from bytewax.recovery import RecoveryConfig
    from bytewax.testing import run_main

    from phenoflow.flows.pipeline import tune_gc
    from phenoflow.flows.recovery import prepare_recovery

    flow = build_flow(settings, ("hourly",), until_end=True, flow_id=f"bench_{uuid.uuid4().hex[:6]}")
    kw: dict[str, Any] = {}
    if recovery_dir is not None:
        prepare_recovery(recovery_dir, 1)
        kw = {"epoch_interval": timedelta(seconds=DURABLE_INTERVAL_S), "recovery_config": RecoveryConfig(recovery_dir)}
    old = gc.get_threshold()
    if gc_tuned:
        tune_gc()
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        run_main(flow, **kw)
    finally:
        gc.set_threshold(*old)
    return Result("phenoflow (Bytewax hourly flow)", time.perf_counter() - t0, 0, cpu=time.process_time() - c0)


def run_bytewax_floor(settings: Settings, bytewax_source: bool = False) -> Result:
    """Reference: the flow's source (same batch size) → one map → a null sink.

    ``bytewax_source`` uses Bytewax's own ``KafkaSource`` instead (one consumer
    per topic-partition), the source the flow used before connectors/kafka/source.py.
    """
    import bytewax.operators as op
    from bytewax.connectors.kafka import KafkaSource
    from bytewax.dataflow import Dataflow
    from bytewax.outputs import DynamicSink, StatelessSinkPartition
    from bytewax.testing import run_main

    from phenoflow.connectors.kafka.source import PartitionGroupSource
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
    ap.add_argument("--durable", action=argparse.BooleanOptionalAction, default=True,
                    help="both with durable state (default): phenoflow with Bytewax recovery snapshots every 5 s, "
                         "Quix with its changelog topics and 5-s commits; --no-durable: phenoflow without "
                         "recovery, Quix without changelog topics (it still commits offsets every 5 s)")
    ap.add_argument("--quix-timeout", type=float, default=240.0, help="give up on Quix after this many s")
    ap.add_argument("--breakdown", action="store_true",
                    help="time the flow's pieces alone (automatic when phenoflow < 0.5× plain)")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="run the phenoflow flow again under cProfile and print the top N functions")
    args = ap.parse_args()
    logging.getLogger("phenoflow").setLevel(logging.WARNING)

    from phenoflow.simulate.simulator import simulate_cohort

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
        r = run_phenoflow(settings, recovery_dir=Path(tmp) / "recovery" if args.durable else None)
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
                                            settings.allowed_lateness_s, args.quix_timeout,
                                            changelog=args.durable)
                dumps["quix"] = read_topic(settings, QUIX_OUT)
                quix.outputs = quix_whole.outputs = len(dumps["quix"])
                results += [quix, quix_whole]
            except Exception as exc:  # a failed peer is reported, not fatal
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
        mode = ("durable: phenoflow recovery snapshots and Quix changelog + commits, every 5 s" if args.durable
                else "not durable: phenoflow without recovery, Quix without changelog topics (commits every 5 s)")
        print(f"\nheadline, by CPU time ({mode}):")
        print(f"phenoflow / plain loop   = {plain.cpu / pf.cpu:.2f}× by CPU time ({plain.seconds / pf.seconds:.2f}× "
              f"by wall time)  (goal ≥ 0.5×)")
        if quix is not None:
            print(f"phenoflow / Quix Streams = {quix.cpu / pf.cpu:.2f}× by CPU time ({quix.seconds / pf.seconds:.2f}× "
                  f"by wall time), against Quix's steady state  (goal > 1×)")
        print("outputs: phenoflow emits every participant-hour from first to last (imputed hours too); the peers "
              "emit only hours with data, and Quix's last window per partition stays open (no end-of-input flush).")
        cross_check(dumps)

        if plain.seconds / pf.seconds < 0.5 or args.breakdown:
            breakdown(settings, pf.cpu, run_phenoflow)
        if args.profile:
            profile_flow(settings, args.profile)


if __name__ == "__main__":
    main()
