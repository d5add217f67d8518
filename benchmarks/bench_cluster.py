"""Scaling and recovery cost of `phenoflow run` (all stages, until the end of the input).

Same cohort, replayed into one topic prefix per configuration, run through the
real CLI (`python -m bytewax.run` underneath) against the embedded broker:

* 1 worker (the baseline), 2 workers in one process, 2 processes of 1 worker
  (each configuration run ``--repeats`` times, the best wall time kept);
* 1 worker with recovery on (snapshots every 10 s and every 1 s);
* SIGKILL once half of the ``features.hourly`` output is on the broker (a
  consumer counts it while the run goes), recovery on, then restart: time until
  the restarted run finishes, beside the uninterrupted run, and how many
  records the restart sent a second time.

Run: ``.venv/bin/python benchmarks/bench_cluster.py [--participants 8 --days 30]``
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, KafkaError

from phenoflow.connectors.broker import EmbeddedBroker, free_port
from phenoflow.connectors.kafka import clients as kafka_io
from phenoflow.connectors.kafka.clients import ensure_topics
from phenoflow.connectors.replay import replay
from phenoflow.core.config import Settings, load_settings, settings_env
from phenoflow.core.contract import ALL_TOPICS
from phenoflow.simulate.simulator import simulate_cohort

RUN = [sys.executable, "-m", "phenoflow", "run", "--until-end"]


def _prepare(bootstrap: str, cohort: Path, name: str) -> tuple[dict[str, str], int]:
    settings = load_settings(bootstrap=bootstrap, topic_prefix=f"{name}.")
    ensure_topics(settings, ALL_TOPICS)
    n = replay(cohort, settings).total
    return {**os.environ, **settings_env(settings)}, n


def _timed(cmds: list[list[str]], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    procs = [subprocess.Popen(c, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for c in cmds]
    for p in procs:
        if p.wait() != 0:
            raise SystemExit(f"run failed: {p.args}")
    return time.perf_counter() - t0


def _best(bootstrap: str, cohort: Path, name: str, cmds: list[list[str]], repeats: int,
          fresh_dirs: Path | None = None) -> tuple[float, int]:
    """Best wall time of ``repeats`` runs, each on its own freshly replayed prefix (noise-robust)."""
    times, n = [], 0
    for r in range(repeats):
        env, n = _prepare(bootstrap, cohort, f"{name}{r}")
        run = [[a.replace("{dir}", str(fresh_dirs / f"{name}{r}")) if fresh_dirs else a for a in c] for c in cmds]
        times.append(_timed(run, env))
    return min(times), n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--participants", type=int, default=8)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=2, help="runs per configuration; the best counts")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(port=0) as broker:
        cohort = Path(tmp) / "cohort"
        simulate_cohort(cohort, args.participants, args.days, seed=2, relapse_share=0.5)
        rows: list[tuple[str, float, int]] = []
        k = args.repeats
        addr = f"127.0.0.1:{free_port()};127.0.0.1:{free_port()}"
        base, n = _best(broker.bootstrap, cohort, "one", [RUN], k)
        rows.append(("1 worker", base, n))
        rows.append(("2 workers, 1 process", *_best(broker.bootstrap, cohort, "two", [[*RUN, "--workers", "2"]], k)))
        rows.append(("2 processes × 1 worker", *_best(broker.bootstrap, cohort, "procs",
                                                     [[*RUN, "-i", "0", "-a", addr], [*RUN, "-i", "1", "-a", addr]], k)))
        for snap in (10, 1):
            rec = ["--recovery", "{dir}", "--snapshot-interval", str(snap)]
            rows.append((f"1 worker, recovery every {snap} s",
                         *_best(broker.bootstrap, cohort, f"rec{snap}", [[*RUN, *rec]], k, fresh_dirs=Path(tmp))))

        print(f"cohort: {args.participants} participants × {args.days} days, {n:,} raw messages; all stages")
        print(f"{'configuration':<34} {'wall s':>8} {'msg/s':>10} {'vs 1 worker':>12}")
        for name, secs, count in rows:
            print(f"{name:<34} {secs:>8.1f} {count / secs:>10,.0f} {base / secs:>11.2f}×")

        total = _count(load_settings(bootstrap=broker.bootstrap, topic_prefix="one0."), "features.hourly")
        settings = load_settings(bootstrap=broker.bootstrap, topic_prefix="kill.")
        env, n = _prepare(broker.bootstrap, cohort, "kill")
        rec = ["--recovery", str(Path(tmp) / "kill"), "--snapshot-interval", "1"]
        t0 = time.perf_counter()
        proc = subprocess.Popen([*RUN, *rec], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        seen = _count(settings, "features.hourly", until=total // 2, proc=proc)
        killed_at = time.perf_counter() - t0
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            resume = _timed([[*RUN, *rec]], env)
            again = _count(settings, "features.hourly") - total
            print(f"SIGKILL at {killed_at:.1f} s with {seen:,} of {total:,} hourly records written, restart with "
                  f"recovery: {resume:.1f} s to finish, {again:,} records sent again "
                  f"(uninterrupted run: {base:.1f} s; process start-up included in both)")
        else:
            print("the run finished before the kill; use a larger cohort")


def _count(settings: Settings, topic: str, until: int | None = None, proc: subprocess.Popen | None = None) -> int:
    """Records on ``topic``: all of them (to partition EOF), or stop as soon as ``until`` are seen."""
    full = settings.topic(topic)
    parts = kafka_io.topic_partitions(settings, full)
    c = kafka_io.consumer(settings)
    kafka_io.assign_all(c, full, parts, OFFSET_BEGINNING)
    n, eof = 0, set()
    try:
        while True:
            for m in c.consume(10_000, timeout=0.1):
                if m.error() is None:
                    n += 1
                    eof.discard(m.partition())
                elif m.error().code() == KafkaError._PARTITION_EOF:
                    eof.add(m.partition())
            if until is None and len(eof) == len(parts):
                return n
            if until is not None and (n >= until or (proc is not None and proc.poll() is not None)):
                return n
    finally:
        c.close()

if __name__ == "__main__":
    main()
