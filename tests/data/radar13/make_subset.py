"""Build this folder's subset of the shared RADAR-base mock recording (run once; kept for provenance).

Source: /work/shared/data/radar-mockdata/072ddb22-…/<topic>/YYYYMMDD_HH00.csv.gz
(github RADAR-base-Analytics/mockdata @ 17e9ff951ea1, Apache-2.0). Every hour file of
the topics below is concatenated in hour order into ``<topic>.csv.gz`` with the
original header and rows. Acceleration keeps every 500th row of each hour file (the
original ≈ 50 Hz is 59 MB; which hours have data is unchanged); all other topics keep
every row.
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

SRC = Path("/work/shared/data/radar-mockdata/072ddb22-82ef-4b81-8460-41ab096b54bb")
TOPICS = {"android_phone_acceleration": 500, "android_phone_light": 1,
          "android_phone_user_interaction": 1, "application_time_zone": 1}


def main(out: Path) -> None:
    """Write one gzip CSV per topic into ``out``."""
    for topic, step in TOPICS.items():
        header, rows = None, []
        for f in sorted((SRC / topic).glob("*.csv.gz")):
            lines = gzip.open(f, "rt").read().splitlines()
            header = header or lines[0]
            rows += lines[1:][::step]
        with gzip.GzipFile(out / f"{topic}.csv.gz", "wb", mtime=0) as g:
            g.write(("\n".join([header, *rows]) + "\n").encode())


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent)
