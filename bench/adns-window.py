#!/usr/bin/env python3
"""Drive `adnshost --asynch -f` with at most W queries in flight (stdlib only).

Usage: adns-window.py QUERYFILE RESOLVER [WINDOW [PASSES]]
       WINDOW 0: no window, adnshost as is; PASSES: ask the whole file that many times
       in one adnshost process (like dnsperf -n), default 1

QUERYFILE has "name TYPE" lines (TYPE one of A, AAAA, NS, MX; the same file dnsperf
reads).  adnshost itself sends every query it reads at once; against a single-threaded
resolver whose socket buffer holds ~200 datagrams that means drops and adns's 2 s
retries, so this feeder keeps a window (default 256, like v6scope dns --concurrency 256)
by reading adnshost's answers (--fmt-asynch: a header line "<id> <nrrs> <status> ..."
followed by nrrs record lines) and writing a new query for each one.
Prints "N queries in S s (Q queries/s): A answered, F failed" on stderr; "answered"
counts ok and nodata/nxdomain answers, "failed" counts timeouts and other errors.
"""
import os
import select
import subprocess
import sys
import threading
import time

TYPES = {"A": "a", "AAAA": "aaaa", "NS": "ns-", "MX": "mx-"}


def main():
    qfile, resolver = sys.argv[1], sys.argv[2]
    window = int(sys.argv[3]) if len(sys.argv) > 3 else 256
    passes = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    queries = []
    with open(qfile) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2:
                queries.append((parts[0], TYPES[parts[1].upper()]))
    queries *= passes
    t0 = time.monotonic()
    p = subprocess.Popen(["adnshost", "--asynch", "--config", f"nameserver {resolver}", "-f"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    fin, fout = p.stdin.fileno(), p.stdout.fileno()
    n, sent, done, answered, failed = len(queries), 0, 0, 0, 0
    cur_type, skip, buf = None, 0, b""
    if window <= 0:   # adnshost as is: everything written at once (by a thread: pipes are finite)
        def feed():
            cur, out = None, []
            for name, t in queries:
                if t != cur:
                    out.append(f"-t{t}\n")
                    cur = t
                out.append(f"- {name}\n")
            p.stdin.write("".join(out).encode())
            p.stdin.close()
        threading.Thread(target=feed, daemon=True).start()
        sent = window = n
    while done < n:
        if sent < n and sent - done < window:
            out = []
            while sent < n and sent - done < window:
                name, t = queries[sent]
                if t != cur_type:
                    out.append(f"-t{t}\n")
                    cur_type = t
                out.append(f"- {name}\n")
                sent += 1
            os.write(fin, "".join(out).encode())
        r, _, _ = select.select([fout], [], [], 60)
        if not r:
            sys.exit("adns-window.py: adnshost gave no answer for 60 s")
        chunk = os.read(fout, 1 << 16)
        if not chunk:
            break
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            if skip:
                skip -= 1
                continue
            tok = line.split(None, 4)
            if len(tok) < 4 or not tok[0].isdigit():
                continue
            skip = int(tok[1])
            done += 1
            if tok[2] == b"ok" or tok[4].startswith((b"nodata", b"nxdomain")):
                answered += 1
            else:
                failed += 1
    if not p.stdin.closed:
        try:
            p.stdin.close()
        except OSError:
            pass
    p.wait()
    dt = time.monotonic() - t0
    print(f"{n} queries in {dt:.2f} s ({n / dt:.0f} queries/s): {answered} answered, {failed} failed",
          file=sys.stderr)


if __name__ == "__main__":
    main()
