#!/usr/bin/python3
"""An independent controller for `cellguard sim`: python-can's socketcand client (Debian python3-can).

Usage: sim_rig_peer.py HOST PORT CHANNEL MODULE_IDS [--timeout S]
  MODULE_IDS: comma-separated node ids expected to answer, e.g. 1,2,3,4,5,6,7,8

Sends what the rig's original controller sent (shared/spec/seed-rig.md, "Module discovery"): the
expedited SDO download 2F 05 18 01 00 00 00 00 to every expected node, then one SYNC. Collects frames
until every expected node answered the SDO and sent its 8 PDOs (or the timeout), decodes pdo1, pdo2,
pdo3 and pdo6 with its own decoder written from the spec's table (not our codec), and prints one
JSON object: {"pdo_counts": {"0x181": 1, ...}, "sdo": {"0x581": "60 05 18 01 00 00 00 00"},
"modules": {"1": {"voltage_v": .., "current_a": .., "min_cell_v": .., "max_cell_v": .., "cells_v": [..],
"max_temp_c": .., "temps_c": [..], "soc_pct": .., "status": ..}}, "lengths": {"0x181": 8}, "raw": {..}}.
"""
import json
import struct
import sys
import time

import can

PDO_BASES = [0x180, 0x280, 0x380, 0x480, 0x190, 0x290, 0x390, 0x490]


def decode(node, frames):
    out = {}
    p1 = frames.get(0x180 + node)
    if p1 is not None and len(p1) == 8:
        current, voltage, vmin, vmax, tmin, tmax = struct.unpack("<hHBBbb", p1)
        out.update(current_a=current * 0.1, voltage_v=voltage * 0.01, min_cell_v=vmin * 0.01 + 2.2,
                   max_cell_v=vmax * 0.01 + 2.2, min_temp_c=tmin, max_temp_c=tmax)
    p2 = frames.get(0x280 + node)
    if p2 is not None and len(p2) == 8:
        status, soc, soh, balancing = struct.unpack("<HBBH2x", p2)
        out.update(status=status, soc_pct=soc * 0.5, soh_pct=soh, balancing=balancing)
    p3, p4 = frames.get(0x380 + node), frames.get(0x480 + node)
    if p3 is not None and p4 is not None and len(p3) == 8 and len(p4) == 8:
        out["cells_v"] = [b * 0.01 + 2.2 for b in bytes(p3) + bytes(p4)[:6]]
    p6 = frames.get(0x290 + node)
    if p6 is not None and len(p6) == 8:
        out["temps_c"] = list(struct.unpack("<7bx", p6))
    return out


def main():
    host, port, channel, ids = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    timeout_s = float(sys.argv[sys.argv.index("--timeout") + 1]) if "--timeout" in sys.argv else 10.0
    nodes = [int(x) for x in ids.split(",") if x]
    bus = can.Bus(interface="socketcand", host=host, port=port, channel=channel)
    try:
        for node in nodes:
            bus.send(can.Message(arbitration_id=0x600 + node, is_extended_id=False,
                                 data=[0x2F, 0x05, 0x18, 0x01, 0, 0, 0, 0]))
        bus.send(can.Message(arbitration_id=0x080, is_extended_id=False, data=[1]))
        wanted = {base + n for n in nodes for base in PDO_BASES} | {0x580 + n for n in nodes}
        counts, last, sdo = {}, {}, {}
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not wanted <= set(counts):
            msg = bus.recv(timeout=max(0.0, deadline - time.monotonic()))
            if msg is None:
                continue
            counts[msg.arbitration_id] = counts.get(msg.arbitration_id, 0) + 1
            last[msg.arbitration_id] = bytes(msg.data)
            if 0x581 <= msg.arbitration_id <= 0x58F:
                sdo[hex(msg.arbitration_id)] = " ".join(f"{b:02X}" for b in msg.data)
        result = {
            "pdo_counts": {hex(i): c for i, c in sorted(counts.items()) if not 0x581 <= i <= 0x58F},
            "lengths": {hex(i): len(d) for i, d in sorted(last.items())},
            "raw": {hex(i): d.hex() for i, d in sorted(last.items())},
            "sdo": sdo,
            "modules": {str(n): decode(n, last) for n in nodes},
        }
        print(json.dumps(result))
    finally:
        bus.shutdown()


if __name__ == "__main__":
    main()
