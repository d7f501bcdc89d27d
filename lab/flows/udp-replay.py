#!/usr/bin/env python3
"""Send the datagrams of a length-prefixed file (as written by udp-sink.py, e.g. the
fixtures in crates/flow/testdata/) to a UDP port on loopback, in file order.

    lab/flows/udp-replay.py FILE PORT [--host 127.0.0.1] [--source 127.0.0.1] [--gap-us 200]

--source picks the exporter address the collector sees (any 127.0.0.0/8 address, or ::1),
so several files can pose as several exporters. --gap-us paces the datagrams (default
200 µs) so a collector's socket buffer is not overrun. Standard library only.
"""

import argparse
import ipaddress
import socket
import struct
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("port", type=int)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--source")
    ap.add_argument("--gap-us", type=int, default=200)
    a = ap.parse_args()
    if not ipaddress.ip_address(a.host).is_loopback:
        sys.exit("udp-replay.py: --host must be a loopback address")
    fam = socket.AF_INET6 if ":" in a.host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    if a.source:
        s.bind((a.source, 0))
    data = open(a.file, "rb").read()
    i = n = 0
    while i + 4 <= len(data):
        (ln,) = struct.unpack_from("!I", data, i)
        s.sendto(data[i + 4:i + 4 + ln], (a.host, a.port))
        i += 4 + ln
        n += 1
        if a.gap_us:
            time.sleep(a.gap_us / 1e6)
    print(f"{n} datagrams sent", file=sys.stderr)


if __name__ == "__main__":
    main()
