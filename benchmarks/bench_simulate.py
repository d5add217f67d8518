"""Cohort simulator speed, against plain JSON-lines writers in the same run.

1. ``simulate_cohort`` (20 participants × 60 days by default): wall time,
   events (lines) per second, accelerometer samples per second; once with
   plain and once with gzipped accelerometer output.
2. Baseline: the same lines, already built as Python dicts (decoding them is
   not timed), encoded with the stdlib ``json`` module and written to a file,
   one topic file at a time. This is the cost of *only* serialising what the
   simulator produces, with the most obvious tool.
3. Peer: the same pre-built dicts encoded with msgspec (``encode_lines``), the
   encoder the simulator uses: the floor for writing these lines from Python.

The simulator generates the behaviour and the events as well, so a ratio
below 1 against (2) means generating + writing costs less than a plain
``json.dumps`` loop over ready-made events.

Run: ``.venv/bin/python benchmarks/bench_simulate.py [--participants 20 --days 60]``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import msgspec

from phenoflow.simulate.simulator import simulate_cohort

FILES = ("accelerometer", "screen", "call", "sms", "location", "ambient", "survey")


def _baselines(cohort: Path, scratch: Path) -> tuple[float, float, int]:
    """Seconds to write every topic file's pre-built dicts with json and with msgspec."""
    t_json = t_msgspec = 0.0
    n = 0
    enc = msgspec.json.Encoder()
    for f in FILES:
        rows = [msgspec.json.decode(line) for line in (cohort / f"{f}.jsonl").read_bytes().splitlines()]
        n += len(rows)
        t0 = time.perf_counter()
        with open(scratch / f"{f}.json.jsonl", "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, separators=(",", ":")))
                fh.write("\n")
        t_json += time.perf_counter() - t0
        t0 = time.perf_counter()
        with open(scratch / f"{f}.msgspec.jsonl", "wb") as fh:
            for i in range(0, len(rows), 20_000):
                fh.write(enc.encode_lines(rows[i:i + 20_000]))
        t_msgspec += time.perf_counter() - t0
        del rows
    return t_json, t_msgspec, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--participants", type=int, default=20)
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        plain = simulate_cohort(root / "plain", args.participants, args.days, args.seed)
        gz = simulate_cohort(root / "gz", args.participants, args.days, args.seed,
                             gzip_accelerometer=True)
        size_mb = sum(p.stat().st_size for p in (root / "plain").iterdir()) / 1e6
        gz_mb = sum(p.stat().st_size for p in (root / "gz").iterdir()) / 1e6
        scratch = root / "baseline"
        scratch.mkdir()
        t_json, t_msgspec, n = _baselines(root / "plain", scratch)
    assert n == plain.events
    print(f"cohort: {args.participants} participants × {args.days} days, {plain.events:,} lines "
          f"({plain.lines['accelerometer']:,} accelerometer chunks, {plain.accel_samples:,} samples), "
          f"{plain.relapses} relapses")
    print(f"{'writer':<52} {'s':>7} {'lines/s':>11} {'samples/s':>11} {'vs json':>8}")
    rows = [
        (f"simulate_cohort (generate + write, {size_mb:.0f} MB)", plain.seconds),
        (f"simulate_cohort, gzip accelerometer ({gz_mb:.0f} MB)", gz.seconds),
        ("baseline: stdlib json.dumps of pre-built dicts", t_json),
        ("peer: msgspec encode_lines of pre-built dicts", t_msgspec),
    ]
    for name, sec in rows:
        print(f"{name:<52} {sec:7.2f} {n / sec:11,.0f} {plain.accel_samples / sec:11,.0f} "
              f"{sec / t_json:7.2f}×")


if __name__ == "__main__":
    main()
