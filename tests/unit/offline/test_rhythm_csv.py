"""``phenoflow rhythm HOURLY.csv``: JSON lines identical to the rhythm.daily stage."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from phenoflow.core.contract import HourlyFeatures
from phenoflow.core.errors import UserError
from phenoflow.offline.rhythm_csv import rhythm_from_csv
from phenoflow.operators.rhythm.rolling import RhythmState

MODS = ["accel_sd", "screen_on_s", "call_n"]


def make_rows(n_days: int = 5, seed: int = 1) -> list[tuple[dt.datetime, list[float | None], float]]:
    rng = np.random.default_rng(seed)
    rows = []
    for d in range(n_days):
        if d == 2:
            continue  # a whole day without rows
        for h in range(24):
            if d == 1 and h in (3, 4):
                continue  # missing rows = missing hours
            vals: list[float | None] = [float(rng.gamma(2, 1)), float(rng.integers(0, 600)), float(rng.integers(0, 3))]
            if d == 3 and h == 9:
                vals[0] = None  # empty cell
            filled = 1.0 if (d == 4 and h < 4) else 0.0  # imputed type-2 hours
            rows.append((dt.datetime(2024, 5, 1) + dt.timedelta(days=d, hours=h), vals, filled))
    return rows


def write_csv(path: Path, rows, with_filled: bool = True) -> None:
    head = ["time", *MODS] + (["filled"] if with_filled else [])
    lines = [",".join(head)]
    for t, vals, filled in rows:
        cells = [t.isoformat(timespec="minutes")] + ["" if v is None else repr(v) for v in vals]
        if with_filled:
            cells.append(repr(filled))
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n")


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_csv_lines_equal_the_streaming_stage(tmp_path: Path) -> None:
    rows = make_rows()
    src, out = tmp_path / "hourly.csv", tmp_path / "rhythm.jsonl"
    write_csv(src, rows)
    # The stage's default: IS/IV for accel_sd only; the CSV command opts the others out.
    assert rhythm_from_csv(src, out, count_columns=["screen_on_s", "call_n"]) == 4  # days written
    lines = read_lines(out)
    # the same rows through RhythmState (offset −240 min: local wall-clock times)
    state = RhythmState("p1", MODS)
    streamed = []
    for t, vals, filled in rows:
        utc = t.replace(tzinfo=dt.timezone(dt.timedelta(hours=-4)))
        rec = HourlyFeatures(participant="p1", utc_offset_min=-240, hour_start=utc.timestamp(),
                             local_hour=t.hour, weekday=t.weekday(), features=dict(zip(MODS, vals, strict=True)),
                             filled=filled)  # fmt: skip
        streamed += state.update(rec)
    streamed += state.flush()
    assert [ln["day"] for ln in lines] == ["2024-05-01", "2024-05-02", "2024-05-04", "2024-05-05"]
    assert [s.day for s in streamed] == [ln["day"] for ln in lines]
    for ln, s in zip(lines, streamed, strict=True):
        assert set(ln) == {"day", "features", "coverage"}
        assert list(ln["features"]) == list(s.features)  # identical names, same order
        assert ln["features"] == s.features
        assert ln["coverage"] == s.coverage
    last = lines[-1]
    assert "accel_sd.is.w2" in last["features"] and "call_n.is.w2" not in last["features"]
    assert last["coverage"]["w2"] == pytest.approx(44 / 48)  # 4 imputed hours on 05-05
    # 5 days of rows: 24 + 22 (2 hours without rows) + 0 + 24 + 20 (4 imputed) = 90 hours
    assert last["coverage"]["w6"] == pytest.approx(90 / 144)
    assert last["coverage"]["w8"] == pytest.approx(90 / 192)
    assert last["features"]["accel_sd.m10.w8"] is None  # below 50 % coverage: null, not NaN
    assert last["features"]["accel_sd.m10.w6"] is not None
    assert lines[1]["coverage"]["accel_sd.w2"] == pytest.approx(46 / 48)


def test_writes_to_stdout_without_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "h.csv"
    write_csv(src, make_rows(2), with_filled=False)
    assert rhythm_from_csv(src, None) == 2  # days written
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["day"] for x in lines] == ["2024-05-01", "2024-05-02"]
    assert lines[1]["features"]["screen_on_s.m10.w2"] is not None


def test_timezone_suffix_is_ignored_and_rows_may_come_unsorted(tmp_path: Path) -> None:
    rows = make_rows(2)
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    write_csv(a, rows)
    lines = ["time," + ",".join(MODS) + ",filled"]
    for t, vals, filled in reversed(rows):
        cells = [t.isoformat(timespec="seconds") + "+02:00"] + ["" if v is None else repr(v) for v in vals]
        lines.append(",".join(cells + [repr(filled)]))
    b.write_text("\n".join(lines) + "\n")
    rhythm_from_csv(a, tmp_path / "a.jsonl")
    rhythm_from_csv(b, tmp_path / "b.jsonl")
    assert read_lines(tmp_path / "a.jsonl") == read_lines(tmp_path / "b.jsonl")


@pytest.mark.parametrize(
    ("content", "needles"),
    [
        ("when,accel_sd\n2024-05-01T00:00,1\n", ["no `time` column", "add a `time` column"]),
        ("time,accel_sd\n2024-05-01T00:00,1\nyesterday,2\n", ["row 3", "`time`", "'yesterday'", "ISO 8601"]),
        ("time,accel_sd\n2024-05-01T00:00,1\n2024-05-01T01:00,abc\n", ["row 3", "`accel_sd`", "'abc'", "not a number"]),
        ("time,accel_sd\n2024-05-01T00:30,1\n", ["row 2", "not the start of an hour"]),
        ("time,accel_sd\n2024-05-01T00:00,1,2\n", ["row 2", "3 fields", "header has 2"]),
        ("time,accel_sd\n2024-05-01T00:00,inf\n", ["row 2", "`accel_sd`", "infinite"]),
        ("time\n2024-05-01T00:00\n", ["no modality columns"]),
        ("", ["empty"]),
    ],
)
def test_malformed_csv_raises_user_error_naming_row_column_and_fix(
    tmp_path: Path, content: str, needles: list[str]
) -> None:
    src = tmp_path / "bad.csv"
    src.write_text(content)
    with pytest.raises(UserError) as err:
        rhythm_from_csv(src, tmp_path / "out.jsonl")
    msg = str(err.value)
    assert "\n" not in msg and " — " in msg  # one line: cause — fix
    for needle in needles:
        assert needle in msg


def test_missing_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such file"):
        rhythm_from_csv(tmp_path / "nope.csv", None)


def test_is_and_iv_for_every_column_by_default(tmp_path: Path) -> None:
    """IS/IV are defined for any hourly series: the CSV command gives them to every column
    unless --count-columns opts a column out; the values equal those of a run naming it continuous."""
    src = tmp_path / "h.csv"
    write_csv(src, make_rows(3))
    rhythm_from_csv(src, tmp_path / "all.jsonl")
    rhythm_from_csv(src, tmp_path / "opt.jsonl", count_columns=["call_n"])
    every, opted = read_lines(tmp_path / "all.jsonl")[-1], read_lines(tmp_path / "opt.jsonl")[-1]
    for mod in MODS:
        assert every["features"][f"{mod}.is.w2"] is not None and every["features"][f"{mod}.iv.w2"] is not None
    assert "call_n.is.w2" not in opted["features"] and "call_n.iv.w2" not in opted["features"]
    assert opted["features"]["screen_on_s.is.w2"] == every["features"]["screen_on_s.is.w2"]
    with pytest.raises(UserError, match="--count-columns calls not among the columns"):
        rhythm_from_csv(src, None, count_columns=["calls"])
