#!/usr/bin/python3
"""python-can as an independent reader of the logs cellguard writes.

    read_log.py FILE    reads FILE with can.LogReader (format from the extension: .log, .asc, .trc)
                        and prints one JSON object per frame:
                        {"t": seconds, "id": int, "extended": bool, "data": "hex", "channel": ...}

Run with Debian's /usr/bin/python3 (python3-can 4.1.0), TZ=UTC (python-can reads ASC dates as local
time).
"""
import json
import os
import sys
import time

os.environ["TZ"] = "UTC"
time.tzset()

import can  # noqa: E402  (after the time zone is fixed)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    for message in can.LogReader(sys.argv[1]):
        print(json.dumps({
            "t": message.timestamp,
            "id": message.arbitration_id,
            "extended": bool(message.is_extended_id),
            "data": bytes(message.data).hex().upper(),
            "channel": None if message.channel is None else str(message.channel),
        }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
