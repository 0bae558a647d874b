#!/usr/bin/python3
"""An independent SunSpec device on Modbus TCP: Debian's python3-pymodbus (3.0), its register map laid
out from the SunSpec Alliance's official model definitions (model_<id>.json in --definitions), not from
cellguard's code.

Serves the marker "SunS" at --base (40000, 0 or 50000; nothing answers at the other bases), then the
models 1, 103, 124 and 802 with their official lengths and points, then the end marker. Known values
(with scale factors unlike the simulator's) are placed by point name; every write is recorded by the
model and point the official definitions put at its address ("?" where no point is).

Usage: pymodbus_sunspec_peer.py --definitions DIR [--base 40000] [--seconds S]
Prints "PORT <n>" when listening, serves for S seconds, then prints one JSON object
{"writes": [[model, point, value], ...]} and exits 0.
"""
import argparse
import asyncio
import json
import logging
import os
import sys
import types

try:
    import serial_asyncio  # noqa: F401
except ImportError:
    # Debian's pymodbus 3.0 imports serial_asyncio (only Recommended) even where it is not used.
    _stub = types.ModuleType("serial_asyncio")
    _stub.create_serial_connection = None
    sys.modules["serial_asyncio"] = _stub

from pymodbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusSlaveContext
from pymodbus.server.async_io import ModbusTcpServer

MODELS = [1, 103, 124, 802]


def s16(value):
    return value & 0xFFFF


# Known values by model and point name (raw registers; strings as text).
VALUES = {
    1: {"Mn": "SunSpecPeer", "Md": "pymodbus", "SN": "PEER-42", "Vr": "3.0"},
    103: {"DCV": 3495, "DCV_SF": s16(-1), "DCW": s16(-25), "DCW_SF": 1, "DCA": 5, "DCA_SF": s16(-1),
          "TmpSnk": 415, "TmpCab": 250, "Tmp_SF": s16(-1), "W_SF": 0, "St": 8},
    124: {"WChaMax": 3000, "WChaMax_SF": 1, "InOutWRte_SF": s16(-2)},
    802: {"V": 35000, "V_SF": s16(-2), "A": s16(-5), "A_SF": s16(-1), "W": s16(-175), "W_SF": 0, "State": 3,
          "SetInvState": 1},
}

WRITES = []
POINT_AT = {}  # address -> (model, point)


def layout(definitions, base):
    regs = [0x5375, 0x6E53]
    for model_id in MODELS:
        with open(os.path.join(definitions, "model_%d.json" % model_id), encoding="utf-8") as f:
            points = json.load(f)["group"]["points"]
        start = base + len(regs)
        offset = 0
        body = []
        for p in points:
            POINT_AT[start + offset] = (str(model_id), p["name"])
            value = VALUES.get(model_id, {}).get(p["name"], 0)
            if p["type"] == "string":
                text = value.encode() if isinstance(value, str) else b""
                text = text.ljust(2 * p["size"], b"\0")[: 2 * p["size"]]
                body += [(text[2 * i] << 8) | text[2 * i + 1] for i in range(p["size"])]
            else:
                body += [value] + [0] * (p["size"] - 1)
            offset += p["size"]
        body[0] = model_id
        body[1] = offset - 2  # L: the registers after ID and L
        regs += body
    regs += [0xFFFF, 0]
    return regs


class RecordingContext(ModbusSlaveContext):
    def setValues(self, fc_as_hex, address, values):
        for i, value in enumerate(values):
            model, point = POINT_AT.get(address + i, ("?", "?"))
            WRITES.append([model, point, value])
        super().setValues(fc_as_hex, address, values)


async def serve(registers, base, seconds):
    store = RecordingContext(hr=ModbusSequentialDataBlock(base, registers), zero_mode=True)
    context = ModbusServerContext(slaves=store, single=True)
    server = ModbusTcpServer(context, address=("127.0.0.1", 0), allow_reuse_address=True)
    task = asyncio.create_task(server.serve_forever())
    await server.serving
    print("PORT", server.server.sockets[0].getsockname()[1], flush=True)
    await asyncio.sleep(seconds)
    await server.server_close()
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--definitions", required=True)
    parser.add_argument("--base", type=int, default=40000, choices=[40000, 0, 50000])
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    registers = layout(args.definitions, args.base)
    asyncio.run(serve(registers, args.base, args.seconds))
    print(json.dumps({"writes": WRITES}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
