"""Replay throughput to the embedded broker, against two baselines in the same run.

1. ``phenoflow replay`` (confluent-kafka, event-time merge, contract check) on a
   simulated cohort: messages/s and accelerometer samples/s.
2. Plain confluent-kafka producer sending the same lines with no merge or check
   (the practical limit of the client).
3. kafka-python producer sending the same lines (the client the design card
   named; measured here to justify using confluent-kafka for the tools).

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


def _kafka_python(settings, lines: list[tuple[str, bytes]], limit: int) -> tuple[float, int]:
    from kafka import KafkaProducer

    prod = KafkaProducer(bootstrap_servers=settings.bootstrap, linger_ms=20, batch_size=1 << 20,
                         max_request_size=8 << 20)
    sample = lines[:limit]
    t0 = time.perf_counter()
    for topic, line in sample:
        prod.send(topic, line)
    prod.flush()
    dt = time.perf_counter() - t0
    prod.close()
    return dt, len(sample)


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

        kp = load_settings(bootstrap=broker.bootstrap, topic_prefix="bench.kp.")
        kafka_io.ensure_topics(kp, [f.topic for f in files])
        dt_kp, m = _kafka_python(kp, [(kp.topic(t), v) for t, v in lines], args.kafka_python_limit)
        print(f"kafka-python producer ({m:,} msgs):         {m / dt_kp:>10,.0f} msg/s  (replay = {summary.rate / (m / dt_kp):.1f}× kafka-python)")


if __name__ == "__main__":
    main()
