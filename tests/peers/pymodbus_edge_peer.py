#!/usr/bin/python3
"""An independent Modbus TCP server for the edge's inverter client: Debian's python3-pymodbus (3.0).

Serves the rig's register map (shared/spec/seed-rig.md, "Inverter Modbus map": holding registers
41024..41032, input registers 30256..30285, raw PDU addresses) with fixed, known input values, and
records every request: function code, address, count or values. It knows nothing of the simulator,
so the client is checked against the spec, not against our own server's habits.

Usage: pymodbus_edge_peer.py [--seconds S]
Prints "PORT <n>" when listening, serves for S seconds, then prints one JSON object
{"requests": [[fc, address, count_or_values], ...]} and exits 0.
"""
import argparse
import asyncio
import json
import logging
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

HOLDING_FIRST, HOLDING_COUNT = 41024, 9
INPUT_FIRST, INPUT_COUNT = 30256, 30


def raw(value, scale):
    return int(round(value * scale)) & 0xFFFF


# Known input values (the client's test checks the scaled readings against these).
INPUTS = {
    30256: raw(21.5, 109.22),    # ambient °C
    30257: raw(-3.0, 109.22),    # heat sink °C (negative: checks the sign)
    30262: 123,                  # comm timer, 0.1 s
    30263: raw(350.0, 32.767),   # battery voltage
    30264: raw(351.0, 32.767),   # voltage reference
    30265: raw(349.5, 32.767),   # DC link voltage
    30266: raw(-0.25, 218.44),   # DC link power, kW (≈ 0: the start-up settles)
    30267: raw(-0.5, 52.094),    # DC link current, A
    30268: 1,                    # ready
    30272: 0x0001, 30273: 0x0002, 30274: 0x0004, 30275: 0x8000,
    30276: 0x0010, 30277: 0x0020, 30278: 0x0040,
    30279: 0x4030,               # status: contactors (bits 4, 5) and fan (bit 14)
    30280: 0x0001, 30281: 0x0002,  # charged: 0x00010002 = 65538 → 6553.8 kWh (high word first)
    30282: 0x0000, 30283: 0x0064,  # discharged: 100 → 10.0 kWh
    30285: raw(30.0, 218.44),    # power limit kW
}

REQUESTS = []


class RecordingContext(ModbusSlaveContext):
    """Raw PDU addresses (zero_mode) and a record of what was asked."""

    def getValues(self, fc_as_hex, address, count=1):
        if fc_as_hex in (3, 4):  # writes also read back through here with their own code
            REQUESTS.append([fc_as_hex, address, count])
        return super().getValues(fc_as_hex, address, count)

    def setValues(self, fc_as_hex, address, values):
        REQUESTS.append([fc_as_hex, address, list(values)])
        super().setValues(fc_as_hex, address, values)


async def serve(seconds):
    inputs = [INPUTS.get(INPUT_FIRST + i, 0) for i in range(INPUT_COUNT)]
    store = RecordingContext(
        hr=ModbusSequentialDataBlock(HOLDING_FIRST, [0] * HOLDING_COUNT),
        ir=ModbusSequentialDataBlock(INPUT_FIRST, inputs),
        zero_mode=True,
    )
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
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()
    # Closing at the end cancels the handler of a connection the client may still hold: not an error.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    asyncio.run(serve(args.seconds))
    print(json.dumps({"requests": REQUESTS}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
