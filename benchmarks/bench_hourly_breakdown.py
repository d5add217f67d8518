"""Diagnostics for ``bench_hourly.py``: do the contenders agree, and where does phenoflow's time go.

* :func:`cross_check`: the peers' hourly records against the plain loop's, and
  phenoflow's ``accel_mean`` against the plain loop's mean ‖a‖ (same definition),
  so the throughput figures compare the same work.
* :func:`breakdown`: each piece of the flow's work re-run alone on the same
  messages, in CPU seconds and without profiler overhead (Kafka read, Bytewax's
  message objects, the decode mapper, ``HourlyAggregator``, the sink encoder),
  the aggregator's methods timed one by one, and the whole flow re-run with the
  aggregator stubbed out (wiring cost) and with Python's default GC thresholds.
* :func:`profile_flow`: the flow under cProfile, top functions by cumulative
  and by own time (cProfile inflates per-call-heavy Python code; read it with
  the breakdown's numbers).
"""

from __future__ import annotations

import cProfile
import gc
import io
import json
import math
import pstats
import time
import uuid
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from confluent_kafka import KafkaError, TopicPartition

from phenoflow.connectors.kafka import clients as kafka_io
from phenoflow.core.config import Settings
from phenoflow.flows.pipeline import build_flow, input_topics

HOURLY_INPUTS: tuple[str, ...] = input_topics(("hourly",))


def _close(a: float | None, b: float | None) -> bool:
    return (a is None) == (b is None) and (a is None or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9))


def cross_check(dumps: dict[str, list[tuple[bytes | None, bytes]]]) -> None:
    """Print how many hourly values of phenoflow and Quix agree with the plain loop's.

    The plain loop keys its records by (participant, hour_start); Quix carries
    the participant in the message key. phenoflow is compared on ``accel_mean``
    for the hours where the plain loop saw accelerometer samples.
    """
    plain = {(r["participant"], r["hour_start"]): r["features"]
             for r in (json.loads(v) for _, v in dumps["plain"])}
    if "quix" in dumps:
        n = bad = 0
        for key, value in dumps["quix"]:
            rec = json.loads(value)
            ref = plain.get(((key or b"").decode(), rec["hour_start"]), {})
            for name, x in rec["features"].items():
                n += 1
                bad += not _close(x, ref.get(name))
        print(f"cross-check: Quix vs plain loop, {n:,} window values compared, {bad:,} differ")
    n = bad = 0
    for _, value in dumps["phenoflow"]:
        rec = json.loads(value)
        ref = plain.get((rec["participant"], rec["hour_start"]))
        if ref is not None and ref["accel_mean"] is not None:
            n += 1
            bad += not _close(rec["features"]["accel_mean"], ref["accel_mean"])
    print(f"cross-check: phenoflow accel_mean vs plain loop, {n:,} participant-hours compared, {bad:,} differ")


def profile_flow(settings: Settings, top: int) -> None:
    """Run the hourly flow once more under cProfile; print the ``top`` functions."""
    from bytewax.testing import run_main

    flow = build_flow(settings, ("hourly",), until_end=True, flow_id=f"prof_{uuid.uuid4().hex[:6]}")
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.runcall(run_main, flow)
    dt = time.perf_counter() - t0
    for key, title in (("cumulative", "by cumtime"), ("tottime", "by tottime")):
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats(key).print_stats(top)
        print(f"\n--- cProfile of the phenoflow hourly flow ({dt:.1f} s under the profiler), {title} ---")
        print(buf.getvalue())


def breakdown(settings: Settings, flow_cpu: float, run_flow: Callable[..., Any]) -> None:
    """Where the flow's CPU time goes, without profiler overhead: each piece of the flow's
    work re-run alone over the same messages (read by assignment, as the flow's source
    does), timed in CPU seconds (robust on a shared machine); the rest of the flow's CPU
    time is Bytewax's runtime, its per-partition source consumers and the sink."""
    # Each piece holds all messages in memory at once, which the flow never does: keep the
    # cyclic GC (whose full passes over 10⁵ live objects would be charged to the piece) off.
    gc.collect()
    gc.disable()
    try:
        _breakdown(settings, flow_cpu)
    finally:
        gc.enable()
    _whole_flow_variants(settings, flow_cpu, run_flow)


class _StubAggregator:
    """Stands in for HourlyAggregator to time phenoflow's wiring alone (no features)."""

    def __init__(self, *_a: Any, **_k: Any) -> None:
        pass

    def update_batch(self, _events: Any, now: float | None = None) -> Any:
        from phenoflow.operators.hourly.aggregator import HourlyStep

        return HourlyStep()

    def flush(self) -> list[Any]:
        return []

    def snapshot(self) -> "_StubAggregator":
        return self  # stateless: the OperatorState protocol's snapshot is itself


def _whole_flow_variants(settings: Settings, flow_cpu: float, run_flow: Callable[..., Any]) -> None:
    """The whole flow again (a) with the aggregator stubbed out, (b) with Python's default GC."""
    from phenoflow.flows import stages

    real = stages.HourlyAggregator
    stages.HourlyAggregator = _StubAggregator  # type: ignore[misc,assignment]
    try:
        stub = run_flow(settings)
    finally:
        stages.HourlyAggregator = real  # type: ignore[misc]
    gc.collect()
    default_gc = run_flow(settings, gc_tuned=False)
    print("whole flow again, same input (wall s / CPU s):")
    print(f"  phenoflow wiring with the aggregator stubbed out       {stub.seconds:>6.2f} / {stub.cpu:.2f} "
          f"({100 * stub.cpu / flow_cpu:.0f} % of the flow's CPU)")
    print(f"  full flow with Python's default GC thresholds           {default_gc.seconds:>6.2f} / "
          f"{default_gc.cpu:.2f} ({100 * default_gc.cpu / flow_cpu:.0f} % of the flow's CPU)")


def _breakdown(settings: Settings, flow_cpu: float) -> None:
    from phenoflow.core.contract import DeadLetter, _check, decode
    from phenoflow.core.pseudonym import study_secret
    from phenoflow.flows.stages import SOURCE_BATCH, hourly_config
    from phenoflow.flows.wiring import decoder, to_sink
    from phenoflow.operators.hourly.aggregator import HourlyAggregator

    topics = [settings.topic(t) for t in HOURLY_INPUTS]
    c = kafka_io.consumer(settings, group=f"bench-bd-{uuid.uuid4().hex[:8]}")
    t0 = time.process_time()
    c.assign([TopicPartition(t, p, 0) for t in topics for p in kafka_io.topic_partitions(settings, t)])
    pending, msgs = len(c.assignment()), []
    while pending:
        for m in c.consume(10_000, 0.05):
            if m.error():
                pending -= m.error().code() == KafkaError._PARTITION_EOF
                continue
            msgs.append(m)
    t_read = time.process_time() - t0
    c.close()
    t0 = time.process_time()
    raw = [(m.topic(), m.key(), m.value(), m.partition(), m.offset()) for m in msgs]
    t_wrap = time.process_time() - t0
    t0 = time.process_time()
    for m in raw:
        decode(settings.short(m[0]), m[1], m[2])
    t_contract = time.process_time() - t0
    checked = [decode(settings.short(m[0]), m[1], m[2]) for m in raw]
    t0 = time.process_time()
    for e in checked:
        _check(e)
    t_check = time.process_time() - t0
    dec = decoder(settings)
    t0 = time.process_time()
    batches = [dec(raw[i:i + SOURCE_BATCH]) for i in range(0, len(raw), SOURCE_BATCH)]
    t_decode = time.process_time() - t0
    # Per source batch, each participant's events in one update_batch call, as stateful_batch does.
    per_batch: list[dict[str, list[Any]]] = []
    for batch in batches:
        groups: dict[str, list[Any]] = {}
        for key, e in batch:
            if not isinstance(e, DeadLetter):
                groups.setdefault(key, []).append(e)
        per_batch.append(groups)
    config = hourly_config(settings)
    frame_key, _ = study_secret(settings)  # the key the flow's hourly stage uses

    def aggregate() -> tuple[float, list[Any]]:
        aggs: dict[str, HourlyAggregator] = {}
        out: list[Any] = []
        t0 = time.process_time()
        for groups in per_batch:
            for key, evs in groups.items():
                agg = aggs.get(key)
                if agg is None:
                    agg = aggs[key] = HourlyAggregator(config=config, frame_key=frame_key)
                out += agg.update_batch(evs, now=time.time()).records
        for agg in aggs.values():
            out += agg.flush()
        return time.process_time() - t0, out

    t_agg, records = aggregate()
    with _timed_aggregator() as parts:
        t_agg_timed, _ = aggregate()
    sink = to_sink(settings, "features.hourly")
    t0 = time.process_time()
    for r in records:
        sink(r)
    t_enc = time.process_time() - t0
    n = len(raw)
    rows = [("Kafka read (confluent, assign, consume(10000))", t_read),
            ("source tuples (connectors/kafka/source.py)", t_wrap),
            ("decode: flow batch mapper (contract + metrics + key)", t_decode),
            ("  of which contract.decode", t_contract),
            ("    of which contract._check (lengths, finiteness loop)", t_check),
            ("HourlyAggregator.update + flush (all participants)", t_agg),
            ("features.hourly encode (to_sink mapper)", t_enc)]
    print(f"\n--- phenoflow's work re-run piece by piece on the same {n:,} messages (CPU s, no profiler) ---")
    rows.append(("rest: Bytewax runtime, steps, source partitions, sink",
                 flow_cpu - t_read - t_wrap - t_decode - t_agg - t_enc))
    for name, secs in rows:
        print(f"{name:<58}{secs:>6.2f} s {1e6 * secs / n:>6.1f} µs/msg {100 * secs / flow_cpu:>4.0f} % of flow CPU")
    print(f"inside HourlyAggregator (second run with timers: {t_agg_timed:.2f} s; calls, s, µs per call):")
    for name, (calls, secs) in parts.items():
        print(f"  {name:<56}{calls:>7,} {secs:>6.2f} s {1e6 * secs / max(calls, 1):>8.1f} µs")


@contextmanager
def _timed_aggregator() -> Iterator[dict[str, list[float]]]:
    """Temporarily wrap HourlyAggregator/PlaceModel methods (and the accelerometer reducer) with CPU timers.

    Only in this benchmark process; a timer costs ≈ 1 µs per call, so the
    per-event methods read a little high and nested totals exceed the untimed run.
    """
    from phenoflow.operators.hourly import aggregator as hourly
    from phenoflow.operators.places import clusters as places

    targets = [(hourly.HourlyAggregator, "update_batch", "update_batch (whole; one per participant per batch)"),
               (hourly, "add_accel_batch", "  add_accel_batch (a batch's accelerometer chunks)"),
               (hourly.HourlyAggregator, "_advance", "  _advance (close check, once per batch)"),
               (hourly.HourlyAggregator, "_close", "_close (one local day → 24 records)"),
               (hourly.HourlyAggregator, "_places_and_distance", "  of which _places_and_distance"),
               (places.PlaceModel, "refit", "    of which PlaceModel.refit (DBSCAN)")]
    parts: dict[str, list[float]] = {label: [0, 0.0] for _, _, label in targets}
    saved: list[tuple[type, str, Any]] = []

    def wrap(fn: Callable[..., Any], acc: list[float]) -> Callable[..., Any]:
        def timed(*a: Any, **k: Any) -> Any:
            t = time.thread_time()
            try:
                return fn(*a, **k)
            finally:
                acc[0] += 1
                acc[1] += time.thread_time() - t
        return timed

    for cls, name, label in targets:
        if name not in cls.__dict__:
            continue
        saved.append((cls, name, cls.__dict__[name]))
        setattr(cls, name, wrap(cls.__dict__[name], parts[label]))
    wm = hourly.HourlyAggregator.__dict__["watermark"]
    saved.append((hourly.HourlyAggregator, "watermark", wm))
    parts["watermark (property, once per batch)"] = acc = [0, 0.0]
    hourly.HourlyAggregator.watermark = property(wrap(wm.fget, acc))  # type: ignore[method-assign]
    try:
        yield parts
    finally:
        for cls, name, orig in saved:
            setattr(cls, name, orig)


if __name__ == "__main__":
    print("helper module of bench_hourly.py (run that; --breakdown/--profile select these diagnostics)")
