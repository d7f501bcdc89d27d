#!/usr/bin/env python3
"""Receive UDP datagrams on 127.0.0.1:PORT and write them to a file as length-prefixed
records (4-byte big-endian length, then the datagram), in arrival order.

    lab/flows/udp-sink.py PORT OUT [--idle SECS] [--max SECS] [--ready FILE] [--bind ADDR]

Stops after --idle seconds without a datagram once the first one has arrived (default 3),
or after --max seconds in all (default 120). With --ready FILE, the file is created once
the socket is bound, so a script can wait for it before starting an exporter. Prints
"N datagrams, B bytes" on stderr at the end. Standard library only.
"""

import argparse
import socket
import struct
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("out")
    ap.add_argument("--idle", type=float, default=3.0)
    ap.add_argument("--max", type=float, default=120.0)
    ap.add_argument("--ready")
    ap.add_argument("--bind", default="127.0.0.1",
                    help="loopback address to listen on (127.0.0.0/8 or ::1)")
    a = ap.parse_args()
    fam = socket.AF_INET6 if ":" in a.bind else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind((a.bind, a.port))
    if a.ready:
        open(a.ready, "w").close()
    n = total = 0
    started = time.monotonic()
    last = None
    with open(a.out, "wb") as f:
        while True:
            now = time.monotonic()
            if now - started >= a.max:
                break
            wait = a.max - (now - started)
            if last is not None:
                wait = min(wait, a.idle - (now - last))
                if wait <= 0:
                    break
            s.settimeout(max(wait, 0.01))
            try:
                data = s.recv(65535)
            except socket.timeout:
                continue
            f.write(struct.pack("!I", len(data)) + data)
            n += 1
            total += len(data)
            last = time.monotonic()
    print(f"{n} datagrams, {total} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
