#!/usr/bin/python3
"""python-can as an independent peer for cellguard's CAN log readers and writers.

    write_logs.py write DIR        writes DIR/frames.json (the frames, as ground truth) and the logs
                                   python-can's own writers make of them: py.log (CanutilsLogWriter),
                                   py.asc (ASCWriter), py.trc (TRCWriter, version 2.1) and
                                   py_v10.trc (TRCWriter, version 1.0)
    write_logs.py check DIR KIND   reads DIR/ours.KIND (written by cellguard; KIND is log, asc or trc)
                                   with can.LogReader and compares it with DIR/frames.json; prints
                                   "ok ..." or "mismatch ..." lines and exits 1 on any mismatch

Run with Debian's /usr/bin/python3 (python3-can 4.1.0). Dates in ASC headers are local time in
python-can, so the caller runs this with TZ=UTC (cellguard reads such dates as UTC).
"""
import json
import logging
import os
import random
import sys
import time

os.environ["TZ"] = "UTC"
time.tzset()

import can  # noqa: E402  (after the time zone is fixed)
from can.io.trc import TRCFileVersion  # noqa: E402

FD_LENGTHS = [1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64]
START_US = 1_700_000_000_000_000


def make_frames(count=160, seed=20231114):
    rng = random.Random(seed)
    frames = []
    ts_us = START_US + rng.randrange(1_000_000)
    kinds = ["std", "ext", "std_remote", "ext_remote", "error", "fd"]
    for i in range(count):
        kind = kinds[i % len(kinds)] if i < 2 * len(kinds) else rng.choice(kinds + ["std", "ext"])
        ts_us += rng.randrange(1, 5000)
        frame = {
            "ts_us": ts_us,
            "id": 0,
            "extended": False,
            "remote": False,
            "error": False,
            "fd": False,
            "brs": False,
            "esi": False,
            "size": 0,
            "data": "",
            "channel": rng.choice(["can0", "can1"]),
        }
        if kind == "error":
            frame["error"] = True
        else:
            frame["extended"] = kind.startswith("ext") or (kind == "fd" and rng.random() < 0.5)
            frame["id"] = rng.randrange(0x20000000 if frame["extended"] else 0x800)
            if kind.endswith("remote"):
                frame["remote"] = True
                frame["size"] = rng.randrange(9)
            elif kind == "fd":
                frame["fd"] = True
                frame["brs"] = rng.random() < 0.5
                frame["esi"] = rng.random() < 0.5
                frame["size"] = rng.choice(FD_LENGTHS)
            else:
                frame["size"] = rng.randrange(9)
            if not frame["remote"]:
                frame["data"] = bytes(rng.randrange(256) for _ in range(frame["size"])).hex().upper()
        frames.append(frame)
    return frames


def to_message(frame):
    return can.Message(
        timestamp=frame["ts_us"] / 1e6,
        arbitration_id=frame["id"],
        is_extended_id=frame["extended"],
        is_remote_frame=frame["remote"],
        is_error_frame=frame["error"],
        is_fd=frame["fd"],
        bitrate_switch=frame["brs"],
        error_state_indicator=frame["esi"],
        dlc=frame["size"],
        data=bytes.fromhex(frame["data"]),
        channel=frame["channel"],
        is_rx=True,
        check=True,
    )


def write(directory):
    frames = make_frames()
    with open(os.path.join(directory, "frames.json"), "w") as out:
        json.dump({"python_can": can.__version__, "frames": frames}, out, indent=1)
    messages = [to_message(f) for f in frames]
    for name, writer in [
        ("py.log", can.io.CanutilsLogWriter),
        ("py.asc", can.io.ASCWriter),
        ("py.trc", can.io.TRCWriter),
    ]:
        with writer(os.path.join(directory, name)) as w:
            for m in messages:
                w.on_message_received(m)
    # Version 1.0 is chosen through the writer's file_version attribute (no constructor argument).
    with can.io.TRCWriter(os.path.join(directory, "py_v10.trc")) as w:
        w.file_version = TRCFileVersion.V1_0
        for m in messages:
            w.on_message_received(m)
    print(f"wrote {len(frames)} frames with python-can {can.__version__}")


def check(directory, kind):
    with open(os.path.join(directory, "frames.json")) as f:
        expected = json.load(f)["frames"]
    path = os.path.join(directory, "ours." + kind)
    got = list(can.LogReader(path))
    if kind == "trc":
        # python-can 4.1.0 reads only DT (classic data) lines of a version 2.1 trace.
        expected = [f for f in expected if not (f["remote"] or f["error"] or f["fd"])]
    problems = []
    if len(got) != len(expected):
        problems.append(f"{len(got)} frames read, {len(expected)} expected")
    # ASC and TRC readers of python-can give times since the start of the log: compare offsets.
    relative = kind in ("asc", "trc")
    base_got = got[0].timestamp if got else 0.0
    base_expected = expected[0]["ts_us"] if expected else 0
    for i, (m, f) in enumerate(zip(got, expected)):
        if relative:
            ts_ok = round((m.timestamp - base_got) * 1e6) == f["ts_us"] - base_expected
        else:
            ts_ok = round(m.timestamp * 1e6) == f["ts_us"]
        what = []
        if not ts_ok:
            what.append(f"timestamp {m.timestamp!r}")
        if m.is_error_frame != f["error"]:
            what.append("error flag")
        if not f["error"]:
            if m.arbitration_id != f["id"] or m.is_extended_id != f["extended"]:
                what.append(f"id {m.arbitration_id:X}")
            if m.is_remote_frame != f["remote"] or m.is_fd != f["fd"]:
                what.append("remote/fd flag")
            if f["fd"] and (m.bitrate_switch != f["brs"] or m.error_state_indicator != f["esi"]):
                what.append("brs/esi")
            if f["remote"]:
                if m.dlc != f["size"]:
                    what.append(f"remote dlc {m.dlc}")
            elif bytes(m.data).hex().upper() != f["data"]:
                what.append(f"data {bytes(m.data).hex()}")
            if kind == "log" and m.channel != f["channel"]:
                what.append(f"channel {m.channel}")
        if what:
            problems.append(f"frame {i}: " + ", ".join(what))
    for p in problems[:20]:
        print(f"mismatch ours.{kind}: {p}")
    if problems:
        return 1
    print(f"ok ours.{kind}: {len(got)} frames match")
    return 0


def main(argv):
    if len(argv) == 3 and argv[1] == "write":
        write(argv[2])
        return 0
    if len(argv) == 4 and argv[1] == "check" and argv[3] in ("log", "asc", "trc"):
        return check(argv[2], argv[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
