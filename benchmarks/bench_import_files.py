"""AWARE and Beiwe readers: rows/s and peak memory, beside a plain ``csv.reader`` pass.

1. The real samples (``../shared/data``: niimpy AWARE tables, Beiwe GPS; else
   the copies in ``tests/data``) plus the synthetic exports in ``tests/data``:
   rows/s of ``read_aware`` / ``read_beiwe`` (every row parsed, validated,
   pseudonymised, mapped to a contract value) against ``csv.reader`` over
   the same files (split into fields, nothing else).
2. A synthetic 50-Hz AWARE accelerometer day (4,320,000 rows, AWARE's own
   columns) written to a temporary file: rows/s and peak RSS of the reader,
   which streams and emits 10,000-sample chunks, against the plain pass. Each
   measurement runs in a fresh process, so its peak RSS (``ru_maxrss``) is
   its own; the "startup" figure is the process before reading.

Run: ``.venv/bin/python benchmarks/bench_import_files.py [--rows 4320000]``
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing as mp
import os
import random
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from phenoflow.connectors.importers.aware import read_aware
from phenoflow.connectors.importers.beiwe import read_beiwe
from phenoflow.connectors.importers.report import ImportReport
from phenoflow.core.pseudonym import pseudonymize

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
TESTS = ROOT / "tests" / "data"
KEY = b"bench" * 8


def _pseudo(project: str, user: str) -> str:
    return pseudonymize(project, user, KEY)


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _plain(files: list[Path]) -> int:
    n = 0
    for path in files:
        with open(path, newline="") as fh:
            for _ in csv.reader(fh):
                n += 1
        n -= 1  # header
    return n


def _reader(kind: str, src: str) -> tuple[int, int]:
    report = ImportReport(kind)
    fn = read_aware if kind == "aware" else read_beiwe
    events = sum(1 for _ in fn(Path(src), pseudonym=_pseudo, report=report, participant=None))
    return sum(s.read for s in report.streams.values()), events


def _measure(job: str, args: tuple[Any, ...], out: Any) -> None:
    start_rss = _rss_mib()
    t0 = time.perf_counter()
    if job == "plain":
        rows, events = _plain([Path(p) for p in args[0]]), 0
    else:
        rows, events = _reader(*args)
    out.put((time.perf_counter() - t0, rows, events, start_rss, _rss_mib()))


def measure(job: str, *args: Any) -> tuple[float, int, int, float, float]:
    """(seconds, rows, events, RSS at start MiB, peak RSS MiB) of one job in a fresh process."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_measure, args=(job, args, q))
    p.start()
    res = q.get()
    p.join()
    return res


def write_accel_day(path: Path, rows: int) -> None:
    """AWARE accelerometer table: 50 Hz from 2019-10-26 00:00 UTC, one device, m/s²."""
    rnd = random.Random(1)
    t0 = 1572048000000
    noise = [round(rnd.gauss(0, 0.3), 6) for _ in range(4096)]
    with open(path, "w") as fh:
        fh.write("_id,timestamp,device_id,double_values_0,double_values_1,double_values_2,accuracy,label\n")
        block = []
        for i in range(rows):
            block.append(f"{i + 1},{t0 + 20 * i},bench-device-1,{noise[i & 4095]},{noise[(i * 7) & 4095]},"
                         f"{9.80665 + noise[(i * 13) & 4095]},3,\n")
            if len(block) == 100_000:
                fh.write("".join(block))
                block.clear()
        fh.write("".join(block))


def _csv_files(folder: Path) -> list[str]:
    return [str(p) for p in sorted(folder.rglob("*.csv"))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=4_320_000, help="rows of the 50-Hz accelerometer day")
    a = ap.parse_args()
    samples = SHARED if (SHARED / "aware-niimpy").is_dir() else None
    sets = [
        ("aware", "niimpy sample (real)", samples / "aware-niimpy" if samples else TESTS / "aware" / "niimpy"),
        ("aware", "AWARE db export (synthetic)", TESTS / "aware" / "synthetic"),
        ("beiwe", "Beiwe gps (real) + synthetic streams", TESTS / "beiwe"),
    ]
    if samples:
        sets.append(("beiwe", "Beiwe gps sample (real)", samples / "beiwe-forest" / "idr8gqdh"))
    # Say how busy the machine was instead of assuming: rates here are wall-clock.
    print("load average at start (1/5/15 min): {:.2f} {:.2f} {:.2f}\n".format(*os.getloadavg()))
    print(f"{'input':40s} {'rows':>9s} {'reader rows/s':>14s} {'csv.reader rows/s':>18s} {'ratio':>6s}")
    for kind, label, src in sets:
        t_r, rows, _, _, _ = measure("reader", kind, str(src))
        t_p, prow, _, _, _ = measure("plain", _csv_files(src))
        print(f"{label:40s} {rows:9d} {rows / t_r:14,.0f} {prow / t_p:18,.0f} {(rows / t_r) / (prow / t_p):6.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "aware"
        folder.mkdir()
        path = folder / "accelerometer.csv"
        t0 = time.perf_counter()
        write_accel_day(path, a.rows)
        size = path.stat().st_size / 2**20
        print(f"\n50-Hz AWARE accelerometer day: {a.rows:,} rows, {size:.0f} MiB (written in "
              f"{time.perf_counter() - t0:.1f} s)")
        t_r, rows, events, rss0_r, rss_r = measure("reader", "aware", str(folder))
        t_p, prow, _, rss0_p, rss_p = measure("plain", [str(path)])
        print(f"  read_aware : {t_r:6.1f} s  {rows / t_r:10,.0f} rows/s  {events} chunks  "
              f"peak RSS {rss_r:.0f} MiB (startup {rss0_r:.0f} MiB)")
        print(f"  csv.reader : {t_p:6.1f} s  {prow / t_p:10,.0f} rows/s  peak RSS {rss_p:.0f} MiB "
              f"(startup {rss0_p:.0f} MiB)")
        print(f"  reader / plain rate: {(rows / t_r) / (prow / t_p):.2f}")


if __name__ == "__main__":
    main()
