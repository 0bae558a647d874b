#!/usr/bin/python3
"""An independent serial peer for the simulated sensor board: pyserial, as the rig's host used.

Opens the board's pty at 9600 baud 8N1 like /dev/ttyACM0, reads report lines and converts them with
the rig's formulas (shared/spec/seed-rig.md, "Arduino serial protocol"), written here independently
of the simulator's C++; then sends commands back to back without terminator, as the rig's host did.

Usage: board_peer.py PATH [--lines N] [--send TEXT ...] [--timeout-s S]
Prints one JSON object; exit status 0 if every line had the rig's format and plausible values.
"""
import argparse
import json
import re
import sys
import time

import serial

LINE = re.compile(rb"^Ardu_Temp1:(\d+),Ardu_Temp2:(\d+),Ardu_Press:(\d+)\r\n$")
# Two points of the rig's thermistor table around room temperature (°C, Ω).
WARM, COOL = (33.0, 2150.0), (21.0, 3400.0)


def thermistor_c(adc):
    volts = adc / 1024 * 5
    ohms = 2200 * volts / (5 - volts)
    (t1, r1), (t2, r2) = WARM, COOL
    return t1 + (ohms - r1) / (r2 - r1) * (t2 - t1)  # valid between the two rows only


def pressure_bar(adc):
    volts = adc / 1024 * 5
    if volts < 0.5:
        return 0.0
    if volts > 4.5:
        return 150.0
    return (volts - 0.5) / 4.0 * 150


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("path")
    parser.add_argument("--lines", type=int, default=2)
    parser.add_argument("--send", action="append", default=[])
    parser.add_argument("--timeout-s", type=float, default=20.0)
    args = parser.parse_args()

    seen = {"lines": [], "ok": True}
    deadline = time.monotonic() + args.timeout_s
    with serial.Serial(args.path, baudrate=9600, bytesize=8, parity="N", stopbits=1, timeout=0.5) as port:
        while len(seen["lines"]) < args.lines:
            if time.monotonic() > deadline:
                seen.update(ok=False, failure="timed out waiting for lines")
                break
            raw = port.readline()
            if not raw:
                continue
            match = LINE.match(raw)
            if not match:
                seen.update(ok=False, failure=f"not the rig's line format: {raw!r}")
                break
            t1, t2, p = (int(g) for g in match.groups())
            line = {"temp1_c": thermistor_c(t1), "temp2_c": thermistor_c(t2), "pressure_bar": pressure_bar(p)}
            seen["lines"].append(line)
            if not (15 < line["temp1_c"] < 30 and 15 < line["temp2_c"] < 30 and 0 <= line["pressure_bar"] < 5):
                seen.update(ok=False, failure=f"implausible values {line}")
                break
        for text in args.send:  # back to back, no terminator (the rig's host)
            port.write(text.encode("ascii"))
        port.flush()
    print(json.dumps(seen))
    return 0 if seen["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
