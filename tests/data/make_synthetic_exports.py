"""Writes the SYNTHETIC AWARE database export and Beiwe streams used by the importer tests.

No real AWARE database export and no Beiwe accelerometer/power_state/calls/texts
sample is available, so these files imitate the platforms' own column layouts
(AWARE table schemas; Beiwe raw headers from onnela-lab/forest
``forest/poplar/raw/noncode/headers.json`` and ``docs/source/passive-data.md``).
Values are made up (seeded, deterministic). Re-run to regenerate:

    python tests/data/make_synthetic_exports.py
"""

from __future__ import annotations

import csv
import random
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: Raw device ids: distinctive, so the privacy tests can grep for them.
AWARE_DEVICES = ("6c0ffee0-aaaa-4bcd-9ef0-device0aware1", "6c0ffee0-bbbb-4bcd-9ef0-device0aware2")
BEIWE_SYNTHETIC = {"synandr1": "Android", "synios02": "iOS"}
T0 = 1572048000.0  # 2019-10-26 00:00 UTC; Europe/London leaves BST at 2019-10-27 01:00 UTC
HOURS = 60
G = 9.80665


def _write(path: Path, header: list[str], rows: list[list[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def aware(out: Path) -> None:
    rnd = random.Random(12)
    screen, calls, msgs, acc, loc, light, tz = [], [], [], [], [], [], []
    places = [(51.5072, -0.1276), (51.5300, -0.1000)]
    for d, dev in enumerate(AWARE_DEVICES):
        for h in range(HOURS):
            base = T0 + 3600 * h
            if rnd.random() < 0.15:  # some hours with no data at all
                continue
            tz_row = d == 0
            if tz_row:
                tz.append([len(tz) + 1, int(base * 1000) + 17, dev, "Europe/London"])
            for k in range(rnd.randint(0, 3)):  # screen sessions
                t = base + 300 + 900 * k + rnd.randint(0, 200)
                screen.append([len(screen) + 1, int(t * 1000), dev, 1])
                if rnd.random() < 0.7:
                    screen.append([len(screen) + 1, int((t + 2.5) * 1000), dev, 3])
                screen.append([len(screen) + 1, int((t + 120) * 1000), dev, 0])
                screen.append([len(screen) + 1, int((t + 120.01) * 1000), dev, 2])
            if rnd.random() < 0.3:
                calls.append([len(calls) + 1, int((base + rnd.randint(0, 3599)) * 1000), dev,
                              rnd.choice([1, 2, 3]), rnd.randint(0, 900), f"{rnd.getrandbits(160):040x}"])
            for _ in range(rnd.randint(0, 2)):
                msgs.append([len(msgs) + 1, int((base + rnd.randint(0, 3599)) * 1000), dev,
                             rnd.choice([1, 2]), f"{rnd.getrandbits(160):040x}"])
            for m in range(0, 60, 10):  # 5 samples at 5 Hz every 10 min
                for s in range(5):
                    t = base + 60 * m + 0.2 * s
                    still = 2 <= (h % 24) <= 6
                    a = [rnd.gauss(0, 0.02 if still else 1.5) for _ in range(3)]
                    acc.append([len(acc) + 1, int(t * 1000), dev, round(a[0], 6), round(a[1], 6),
                                round(G + a[2], 6), 3, ""])
                p = places[(h // 8) % 2]
                lat = p[0] + rnd.gauss(0, 0.0001) + (0.01 * d)
                lon = p[1] + rnd.gauss(0, 0.0001)
                loc.append([len(loc) + 1, int((base + 60 * m + 7) * 1000), dev, lat, lon, 0, 0, 20,
                            "fused", round(rnd.uniform(5, 30), 1), ""])
                light.append([len(light) + 1, int((base + 60 * m + 11) * 1000), dev,
                              round(rnd.uniform(0, 400), 2), 3, ""])
    _write(out / "screen.csv", ["_id", "timestamp", "device_id", "screen_status"], screen)
    _write(out / "calls.csv", ["_id", "timestamp", "device_id", "call_type", "call_duration", "trace"], calls)
    _write(out / "messages.csv", ["_id", "timestamp", "device_id", "message_type", "trace"], msgs)
    _write(out / "accelerometer.csv", ["_id", "timestamp", "device_id", "double_values_0", "double_values_1",
                                       "double_values_2", "accuracy", "label"], acc)
    _write(out / "locations.csv", ["_id", "timestamp", "device_id", "double_latitude", "double_longitude",
                                   "double_bearing", "double_speed", "double_altitude", "provider", "accuracy",
                                   "label"], loc)
    _write(out / "light.csv", ["_id", "timestamp", "device_id", "double_light_lux", "accuracy", "label"], light)
    _write(out / "timezone.csv", ["_id", "timestamp", "device_id", "timezone"], tz)


def _hour_file(folder: Path, t: float) -> Path:
    return folder / datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H_00_00+00_00.csv")


def _utc(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def beiwe(out: Path) -> None:
    rnd = random.Random(34)
    t0 = 1639526400.0  # 2021-12-15 00:00 UTC, the day of the real gps sample
    for n, (pid, os_name) in enumerate(BEIWE_SYNTHETIC.items()):
        root = out / pid
        ios = os_name == "iOS"
        _write(root / "identifiers" / "2021-12-15 00_00_00+00_00.csv",
               ["timestamp", "UTC time", "patient_id", "MAC", "phone_number", "device_id", "device_os",
                "os_version", "product", "brand", "hardware_id", "manufacturer", "model", "beiwe_version"],
               [[int((t0 + 5) * 1000), _utc(t0 + 5), pid, "none", "NOT_SUPPLIED", f"synthetic-device-{n}",
                 os_name, "15.1" if ios else "11", "iPhone" if ios else "generic", "apple" if ios else "google",
                 "none", "apple" if ios else "Google", "iPhone12" if ios else "Pixel 4", "2.4"]])
        for h in range(6):
            base = t0 + 3600 * h
            acc = []
            for m in range(0, 60, 10):
                for s in range(50):  # 10 s at 5 Hz
                    t = base + 60 * m + 0.2 * s
                    a = [rnd.gauss(0, 1.0), rnd.gauss(0, 1.0), G + rnd.gauss(0, 1.0)]
                    if ios:
                        a = [v / G for v in a]
                    acc.append([int(t * 1000), _utc(t), "unknown", *(round(v, 7) for v in a)])
            _write(_hour_file(root / "accelerometer", base), ["timestamp", "UTC time", "accuracy", "x", "y", "z"], acc)
            ps = []
            for k in range(rnd.randint(1, 3)):
                t = base + 600 + 1000 * k + rnd.randint(0, 300)
                if ios:
                    ps += [[int(t * 1000), _utc(t), "Unlocked", 0.8], [int((t + 90) * 1000), _utc(t + 90), "Locked", 0.79]]
                else:
                    ps += [[int(t * 1000), _utc(t), "Screen turned on"], [int((t + 90) * 1000), _utc(t + 90),
                                                                          "Screen turned off"]]
            t = base + 3000
            ps.append([int(t * 1000), _utc(t), "Charging", 0.8] if ios else [int(t * 1000), _utc(t), "Power connected"])
            _write(_hour_file(root / "power_state", base),
                   ["timestamp", "UTC time", "event"] + (["level"] if ios else []), ps)
            if ios:
                continue  # Beiwe records calls and texts on Android only
            calls = []
            for _ in range(rnd.randint(0, 2)):
                t = base + rnd.randint(0, 3599)
                kind = rnd.choice(["Incoming Call", "Outgoing Call", "Missed Call"])
                calls.append([int(t * 1000), _utc(t), f"h{rnd.getrandbits(64):016x}=", kind,
                              "" if kind == "Missed Call" else rnd.randint(1, 600)])
            calls.sort()
            _write(_hour_file(root / "calls", base),
                   ["timestamp", "UTC time", "hashed phone number", "call type", "duration in seconds"], calls)
            texts = []
            for _ in range(rnd.randint(0, 3)):
                t = base + rnd.randint(0, 3599)
                kind = rnd.choice(["sent SMS", "received SMS", "received MMS"])
                texts.append([int(t * 1000), _utc(t), f"h{rnd.getrandbits(64):016x}=", kind,
                              "MMS" if "MMS" in kind else rnd.randint(1, 160), ""])
            texts.sort()
            _write(_hour_file(root / "texts", base),
                   ["timestamp", "UTC time", "hashed phone number", "sent vs received", "message length", "time sent"],
                   texts)


if __name__ == "__main__":
    aware(HERE / "aware" / "synthetic")
    beiwe(HERE / "beiwe")
    print("written")
