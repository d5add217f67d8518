"""Replay throughput to the embedded broker, against two baselines in the same run.

1. ``phenoflow replay`` (confluent-kafka, event-time merge, contract check) on a
   simulated cohort: messages/s and accelerometer samples/s.
2. Plain confluent-kafka producer sending the same lines with no merge or check
   (the practical limit of the client).
3. kafka-python producer (the client the design card named; measured here to
   justify using confluent-kafka for the tools). It is slow, so it sends an
   evenly spaced sample (every k-th line of all files, ``--kafka-python-limit``
   lines): the same message mix, hence the same mean message size, as the
   whole cohort that replay's rate covers. The plain confluent-kafka producer
   sends the same sample too, for a same-input ratio; both mean sizes are
   printed.

Run: ``.venv/bin/python benchmarks/bench_replay.py [--participants 20 --days 14]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from phenoflow.connectors.broker import EmbeddedBroker
from phenoflow.connectors.cohort import cohort_files, read_lines
from phenoflow.connectors.kafka import clients as kafka_io
from phenoflow.connectors.replay import replay
from phenoflow.core.config import load_settings
from phenoflow.simulate.simulator import simulate_cohort


def _plain_confluent(settings, lines: list[tuple[str, bytes]]) -> float:
    prod = kafka_io.producer(settings)
    t0 = time.perf_counter()
    for topic, line in lines:
        while True:
            try:
                prod.produce(topic, line)
                break
            except BufferError:
                prod.poll(0.05)
    prod.flush()
    return time.perf_counter() - t0


def _kafka_python(settings, sample: list[tuple[str, bytes]]) -> float:
    from kafka import KafkaProducer

    prod = KafkaProducer(bootstrap_servers=settings.bootstrap, linger_ms=20, batch_size=1 << 20,
                         max_request_size=8 << 20)
    t0 = time.perf_counter()
    for topic, line in sample:
        prod.send(topic, line)
    prod.flush()
    dt = time.perf_counter() - t0
    prod.close()
    return dt


def _mean_bytes(lines: list[tuple[str, bytes]]) -> float:
    return sum(len(v) for _, v in lines) / max(len(lines), 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--participants", type=int, default=20)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--kafka-python-limit", type=int, default=50_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(port=0) as broker:
        cohort = Path(tmp) / "cohort"
        simulate_cohort(cohort, args.participants, args.days, seed=1)
        files = cohort_files(cohort)
        base = load_settings(bootstrap=broker.bootstrap, topic_prefix="bench.replay.")
        summary = replay(cohort, base)
        n = summary.total
        print(f"cohort: {args.participants} participants × {args.days} days, {n:,} messages, "
              f"{summary.accelerometer_samples:,} accelerometer samples")
        print(f"phenoflow replay (merge + contract check): {summary.rate:>10,.0f} msg/s  "
              f"{summary.accelerometer_samples / summary.seconds:>12,.0f} samples/s")

        lines = [(f.topic, line) for f in files for line in read_lines(f)]
        plain = load_settings(bootstrap=broker.bootstrap, topic_prefix="bench.plain.")
        kafka_io.ensure_topics(plain, [f.topic for f in files])
        dt = _plain_confluent(plain, [(plain.topic(t), v) for t, v in lines])
        print(f"plain confluent-kafka producer:            {n / dt:>10,.0f} msg/s  (replay = {summary.seconds and (n / summary.seconds) / (n / dt):.2f}× plain)")

        step = max(1, -(-len(lines) // args.kafka_python_limit))
        sample = lines[::step]  # every k-th line: the cohort's mix of topics and sizes
        print(f"sample for kafka-python: 1 line in {step}, {len(sample):,} msgs, mean "
              f"{_mean_bytes(sample):,.0f} B/msg (whole cohort: {_mean_bytes(lines):,.0f} B/msg)")
        kp = load_settings(bootstrap=broker.bootstrap, topic_prefix="bench.kp.")
        kafka_io.ensure_topics(kp, [f.topic for f in files])
        dt_kp = _kafka_python(kp, [(kp.topic(t), v) for t, v in sample])
        same = load_settings(bootstrap=broker.bootstrap, topic_prefix="bench.sample.")
        kafka_io.ensure_topics(same, [f.topic for f in files])
        dt_cs = _plain_confluent(same, [(same.topic(t), v) for t, v in sample])
        m = len(sample)
        print(f"kafka-python producer (sample):            {m / dt_kp:>10,.0f} msg/s  "
              f"(replay = {summary.rate / (m / dt_kp):.1f}× kafka-python)")
        print(f"plain confluent-kafka producer (sample):   {m / dt_cs:>10,.0f} msg/s  "
              f"(= {dt_kp / dt_cs:.1f}× kafka-python on the same messages)")

if __name__ == "__main__":
    main()
