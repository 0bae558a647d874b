#!/usr/bin/python3
"""An independent Modbus peer for the simulated inverter: Debian's python3-pymodbus (3.0).

Runs the checks of issue 3 item 8 against `cellguard sim`'s inverter, over TCP or RTU on a pty:
reads input registers (function 4), writes holding registers (function 6), expects the exception
before the security code, drives a current setpoint and waits for the heartbeat expiry.
Register map and scalings: shared/spec/seed-rig.md, "Inverter Modbus map".

Usage: modbus_peer.py (--tcp HOST:PORT | --rtu PATH [--slave N]) [--timeout-s S]
Prints one JSON object with what it saw; exit status 0 if every check passed, 1 otherwise.
Waits poll the registers with a bounded deadline (simulated time runs faster than wall time).
"""
import argparse
import json
import sys
import time
import types

try:
    import serial_asyncio  # noqa: F401
except ImportError:
    # Debian's pymodbus 3.0 imports serial_asyncio (only Recommended) even for its synchronous
    # clients, which are all this peer uses; stand in for it when it is missing.
    _stub = types.ModuleType("serial_asyncio")

    def _no_async_serial(*_args, **_kwargs):
        raise RuntimeError("serial_asyncio is not installed")

    _stub.create_serial_connection = _no_async_serial
    sys.modules["serial_asyncio"] = _stub

from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.pdu import ExceptionResponse

SECURITY_CODE, HEARTBEAT, OP_MODE, OP_MODE_SETPOINT = 41024, 41025, 41026, 41027
MODBUS_TIMER, DC_INPUT_VOLT, DC_LINK_CURRENT = 30262, 30263, 30267
VOLTAGE_SCALE, CURRENT_SCALE = 32.767, 52.094
ILLEGAL_FUNCTION = 0x01
MODE_CURRENT = 2


def signed(raw):
    return raw - 0x10000 if raw >= 0x8000 else raw


def raw(value, scale):
    return int(round(value * scale)) & 0xFFFF


class Failed(Exception):
    pass


def check(condition, what):
    if not condition:
        raise Failed(what)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tcp")
    parser.add_argument("--rtu")
    parser.add_argument("--slave", type=int, default=2)
    parser.add_argument("--timeout-s", type=float, default=20.0)
    args = parser.parse_args()

    if args.tcp:
        host, port = args.tcp.rsplit(":", 1)
        client = ModbusTcpClient(host, port=int(port), timeout=2, retries=1)
    else:
        client = ModbusSerialClient(args.rtu, baudrate=19200, timeout=2, retries=1)
    slave = args.slave
    seen = {}
    deadline = time.monotonic() + args.timeout_s

    def read_input(address, count=1):
        rr = client.read_input_registers(address, count, slave=slave)
        check(not rr.isError(), f"read_input_registers({address}) failed: {rr}")
        return rr.registers

    def read_holding(address, count=1):
        rr = client.read_holding_registers(address, count, slave=slave)
        check(not rr.isError(), f"read_holding_registers({address}) failed: {rr}")
        return rr.registers

    def write(address, value):
        return client.write_register(address, value, slave=slave)

    def wait_for(what, predicate):
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.02)  # poll interval of a register read loop, not a wait for an event
        raise Failed(f"timed out waiting for {what}")

    try:
        check(client.connect(), "connect failed")
        voltage_v = signed(read_input(DC_INPUT_VOLT)[0]) / VOLTAGE_SCALE
        seen["battery_voltage_v"] = voltage_v
        check(100 < voltage_v < 1000, f"implausible battery voltage {voltage_v}")

        refused = write(OP_MODE, MODE_CURRENT)
        check(isinstance(refused, ExceptionResponse), f"write before the security code not refused: {refused}")
        seen["exception_before_security_code"] = refused.exception_code
        check(refused.exception_code == ILLEGAL_FUNCTION, f"exception code {refused.exception_code}")

        for address, value in ((SECURITY_CODE, 125), (HEARTBEAT, 300), (OP_MODE, MODE_CURRENT),
                               (OP_MODE_SETPOINT, raw(-10.0, CURRENT_SCALE))):
            rr = write(address, value)
            check(not rr.isError(), f"write {address}={value} failed: {rr}")
        check(read_holding(OP_MODE)[0] == MODE_CURRENT, "mode did not read back")

        def charging():
            current_a = signed(read_input(DC_LINK_CURRENT)[0]) / CURRENT_SCALE
            seen["dc_link_current_a"] = current_a
            return abs(current_a - (-10.0)) <= 0.5
        wait_for("the charge current of -10 A", charging)

        check(not write(HEARTBEAT, 20).isError(), "heartbeat write failed")  # 2.0 s of simulated time

        def expired():
            timer = read_input(MODBUS_TIMER)[0]
            mode = read_holding(OP_MODE)[0]
            current_a = signed(read_input(DC_LINK_CURRENT)[0]) / CURRENT_SCALE
            seen["after_expiry"] = {"timer": timer, "mode": mode, "current_a": current_a}
            return timer == 0 and mode == 0 and abs(current_a) < 0.05
        wait_for("the heartbeat expiry", expired)
        seen["ok"] = True
    except Failed as failure:
        seen["ok"] = False
        seen["failure"] = str(failure)
    finally:
        client.close()
    print(json.dumps(seen))
    return 0 if seen["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
