#!/usr/bin/python3
"""An independent socketcand client for cellguard's SocketcandServer: python-can's own interface.

Usage: socketcand_peer.py PORT RECEIVE_COUNT SEND_COUNT

Run with Debian's /usr/bin/python3 (python-can 4.1). Talks to the test on stdout, one line each:
  ready            the python-can bus is open (handshake done, raw mode)
  received N       N frames arrived, each exactly as expected_from_server(i)
  sent M           M frames sent, each built by to_server(i)
  error: TEXT      a check failed (the exit status is then 1)
then waits for "done" on stdin before closing, so the server has read everything.
Both sides compute the frames from their index; tests/python_can_socketcand_test.cpp has the twin.
"""
import logging
import select
import sys
import time

import can

TIMEOUT_S = 20.0


def expected_from_server(i):
    extended = i % 3 == 2
    can_id = 0x18DA0000 + i if extended else (0x100 + i) & 0x7FF
    data = bytes((i * 7 + j) & 0xFF for j in range(i % 9))
    return can_id, extended, data


def to_server(i):
    extended = i % 2 == 1
    can_id = 0x1CEB0000 + i if extended else (0x200 + i) & 0x7FF
    data = bytes((i * 13 + j + 1) & 0xFF for j in range((i + 3) % 9))
    return can_id, extended, data


def say(line):
    print(line, flush=True)


def fail(text):
    say(f"error: {text}")
    sys.exit(1)


def main():
    port, receive_count, send_count = (int(arg) for arg in sys.argv[1:4])
    # python-can logs a warning for every byte between elements; the checks below are exact anyway.
    logging.getLogger("can").setLevel(logging.ERROR)
    bus = can.Bus(interface="socketcand", host="127.0.0.1", port=port, channel="can0")
    try:
        say("ready")
        deadline = time.monotonic() + TIMEOUT_S
        for i in range(receive_count):
            message = None
            while message is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    fail(f"timed out after {i} of {receive_count} frames")
                message = bus.recv(timeout=remaining)
            can_id, _, data = expected_from_server(i)
            # python-can 4.1 does not read the id width from the element, so is_extended_id is not checked.
            if message.arbitration_id != can_id or bytes(message.data) != data or message.dlc != len(data):
                fail(f"frame {i}: got id {message.arbitration_id:X} data {bytes(message.data).hex()}, "
                     f"expected id {can_id:X} data {data.hex()}")
            if message.timestamp <= 0:
                fail(f"frame {i}: no timestamp")
        say(f"received {receive_count}")

        for i in range(send_count):
            can_id, extended, data = to_server(i)
            bus.send(can.Message(arbitration_id=can_id, is_extended_id=extended, data=data))
        say(f"sent {send_count}")

        ready, _, _ = select.select([sys.stdin], [], [], TIMEOUT_S)
        if not ready or sys.stdin.readline().strip() != "done":
            fail("no 'done' from the test")
    finally:
        bus.shutdown()


if __name__ == "__main__":
    main()
