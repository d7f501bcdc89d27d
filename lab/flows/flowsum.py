#!/usr/bin/env python3
"""Sum the IPv4/IPv6 bytes and packets in a file of captured exporter datagrams.

    lab/flows/flowsum.py FILE [--json] [--per-minute]

FILE holds length-prefixed records (4-byte big-endian length + datagram), as written by
udp-sink.py. Decodes NetFlow v5, NetFlow v9, IPFIX (templates kept per observation domain
/ source ID, in file order) and sFlow v5 flow samples (raw packet headers: Ethernet, 802.1Q,
IPv4/IPv6 -> IP total length; expanded samples too). Counters are multiplied by the
sampling rate where the datagram carries one (v5 header, sFlow sample); v9/IPFIX option
records are reported, not applied. PSAMP packet reports (IE 315 dataLinkFrameSection /
313 ipHeaderPacketSection) count one packet each, with the IP header's length. A cross-check for the Rust decoder, not a replacement:
standard library only, no validation beyond what it needs to walk the data.

Prints one line: ipv4_bytes ipv4_packets ipv6_bytes ipv6_packets, then (stderr) a summary.
"""

import argparse
import ipaddress
import json
import struct
import sys
from collections import defaultdict

# IE numbers
OCTETS = (1, 85, 23)         # octetDeltaCount, octetTotalCount, (v9 OUT_BYTES)
PACKETS = (2, 86, 24)
IPV4_SRC, IPV4_DST, IPV6_SRC, IPV6_DST, IPVER, ETYPE = 8, 12, 27, 28, 60, 256
FLOW_START_SECONDS, FLOW_START_MS, FLOW_END_MS, FIRST_SWITCHED, LAST_SWITCHED = 150, 152, 153, 22, 21
# samplingInterval, samplerRandomInterval (v9 FLOW_SAMPLER_RANDOM_INTERVAL), samplingPacketInterval
SAMPLING = (34, 50, 305)
SYSINIT_MS = 160             # systemInitTimeMilliseconds (IPFIX option; base of IEs 21/22)
DATALINK_SECTION, IPHEADER_SECTION, OBS_TIME_US = 315, 313, 324
NTP_EPOCH_OFFSET = 2208988800


def records(path):
    with open(path, "rb") as f:
        data = f.read()
    i = 0
    while i + 4 <= len(data):
        (n,) = struct.unpack_from("!I", data, i)
        yield data[i + 4:i + 4 + n]
        i += 4 + n


class Sum:
    def __init__(self):
        self.t = {4: [0, 0], 6: [0, 0]}
        self.other = [0, 0]
        self.records = defaultdict(int)
        self.datagrams = defaultdict(int)
        self.templates = {}
        self.unknown_template = 0
        self.options = []
        self.frame_bytes = 0
        self.sampling = defaultdict(int)
        self.minutes = defaultdict(lambda: {4: [0, 0], 6: [0, 0]})
        self.sysinit = {}
        self.dump = None

    def add(self, fam, octets, pkts, minute=None):
        if fam in (4, 6):
            self.t[fam][0] += octets
            self.t[fam][1] += pkts
            if minute is not None:
                m = self.minutes[minute // 60 * 60]
                m[fam][0] += octets
                m[fam][1] += pkts
        else:
            self.other[0] += octets
            self.other[1] += pkts

    # -- NetFlow v5
    def v5(self, d):
        count, uptime, secs, nsecs, seq, etype, eid, samp = struct.unpack_from("!HIIIIBBH", d, 2)
        rate = samp & 0x3FFF or 1
        self.sampling[f"v5 header interval {samp & 0x3FFF} mode {samp >> 14}"] += 1
        for k in range(count):
            r = d[24 + 48 * k:24 + 48 * (k + 1)]
            if len(r) < 48:
                break
            pkts, octets, first = struct.unpack_from("!III", r, 16)
            start = secs - (uptime - first) // 1000
            self.add(4, octets * rate, pkts * rate, start)
            self.records["v5"] += 1

    # -- NetFlow v9 / IPFIX
    def template_set(self, d, off, end, key, ipfix, options):
        while off + 4 <= end:
            tid, fc = struct.unpack_from("!HH", d, off)
            off += 4
            scope = 0
            if options:
                if ipfix:
                    (scope,) = struct.unpack_from("!H", d, off)
                    off += 2
                    # fc is the total field count, scope the scope count
                else:
                    # v9: fc is the scope length in bytes, next is the option length in bytes
                    (optlen,) = struct.unpack_from("!H", d, off)
                    off += 2
                    fc = (fc + optlen) // 4
            if fc == 0:
                continue
            fields = []
            for _ in range(fc):
                if off + 4 > end:
                    return
                ie, ln = struct.unpack_from("!HH", d, off)
                off += 4
                pen = 0
                if ipfix and ie & 0x8000:
                    (pen,) = struct.unpack_from("!I", d, off)
                    off += 4
                    ie &= 0x7FFF
                fields.append((ie, ln, pen))
            self.templates[key + (tid,)] = (fields, options)

    def data_set(self, d, off, end, key, sid, ipfix, export_secs, uptime):
        t = self.templates.get(key + (sid,))
        if t is None:
            self.unknown_template += 1
            return
        fields, options = t
        fixed = all(ln != 0xFFFF for _, ln, _ in fields)
        minlen = sum(ln for _, ln, _ in fields if ln != 0xFFFF)
        while off + max(minlen, 1) <= end:
            vals = {}
            for ie, ln, pen in fields:
                if ln == 0xFFFF:
                    ln = d[off]
                    off += 1
                    if ln == 255:
                        (ln,) = struct.unpack_from("!H", d, off)
                        off += 2
                v = d[off:off + ln]
                off += ln
                if pen == 0:
                    vals[ie] = v
            if options:
                self.options.append({str(k): int.from_bytes(v, "big") if len(v) <= 8 else v.hex()
                                     for k, v in vals.items()})
                for ie in SAMPLING:
                    if ie in vals:
                        self.sampling[f"option IE {ie} = {int.from_bytes(vals[ie], 'big')}"] += 1
                if SYSINIT_MS in vals:
                    self.sysinit[key] = int.from_bytes(vals[SYSINIT_MS], "big")
                continue
            if DATALINK_SECTION in vals or IPHEADER_SECTION in vals:
                # PSAMP packet report (softflowd -v psamp): one packet per record.
                if DATALINK_SECTION in vals:
                    fam, l3 = self.l3_of_header(1, vals[DATALINK_SECTION])
                else:
                    fam, l3 = self.l3_of_header(11, vals[IPHEADER_SECTION])
                start = None
                if OBS_TIME_US in vals:
                    # dateTimeMicroseconds is NTP format: seconds since 1900 in the top 32 bits
                    start = (int.from_bytes(vals[OBS_TIME_US], "big") >> 32) - NTP_EPOCH_OFFSET
                self.add(fam, l3, 1, start)
                self.records["psamp"] += 1
                if fixed and end - off < minlen:
                    break
                continue
            octets = next((int.from_bytes(vals[i], "big") for i in OCTETS if i in vals), 0)
            pkts = next((int.from_bytes(vals[i], "big") for i in PACKETS if i in vals), 0)
            if IPVER in vals:
                fam = vals[IPVER][0]
            elif ETYPE in vals:
                fam = {0x0800: 4, 0x86DD: 6}.get(int.from_bytes(vals[ETYPE], "big"))
            elif IPV6_SRC in vals or IPV6_DST in vals:
                fam = 6
            elif IPV4_SRC in vals or IPV4_DST in vals:
                fam = 4
            else:
                fam = None
            start = None
            if FLOW_START_MS in vals:
                start = int.from_bytes(vals[FLOW_START_MS], "big") // 1000
            elif FLOW_START_SECONDS in vals:
                start = int.from_bytes(vals[FLOW_START_SECONDS], "big")
            elif FIRST_SWITCHED in vals and key in self.sysinit:
                start = (self.sysinit[key] + int.from_bytes(vals[FIRST_SWITCHED], "big")) // 1000
            elif FIRST_SWITCHED in vals and export_secs:
                start = export_secs - (uptime - int.from_bytes(vals[FIRST_SWITCHED], "big")) // 1000
            self.add(fam, octets, pkts, start)
            self.records["ipfix" if ipfix else "v9"] += 1
            if self.dump is not None:
                addr = lambda ie: str(ipaddress.ip_address(vals[ie])) if ie in vals else None
                port = lambda ie: int.from_bytes(vals[ie], "big") if ie in vals else None
                self.dump.append({"family": fam, "src": addr(IPV6_SRC) or addr(IPV4_SRC),
                                  "dst": addr(IPV6_DST) or addr(IPV4_DST), "proto": port(4),
                                  "sport": port(7), "dport": port(11), "bytes": octets,
                                  "packets": pkts, "start": start})
            if fixed and end - off < minlen:
                break

    def v9(self, d, addr_key):
        count, uptime, secs, seq, src_id = struct.unpack_from("!HIIII", d, 2)
        key = (addr_key, 9, src_id)
        off = 20
        while off + 4 <= len(d):
            sid, ln = struct.unpack_from("!HH", d, off)
            if ln < 4:
                break
            end = min(off + ln, len(d))
            if sid == 0:
                self.template_set(d, off + 4, end, key, False, False)
            elif sid == 1:
                self.template_set(d, off + 4, end, key, False, True)
            elif sid >= 256:
                self.data_set(d, off + 4, end, key, sid, False, secs, uptime)
            off += ln

    def ipfix(self, d, addr_key):
        length, secs, seq, odid = struct.unpack_from("!HIII", d, 2)
        key = (addr_key, 10, odid)
        off = 16
        end_msg = min(length, len(d))
        while off + 4 <= end_msg:
            sid, ln = struct.unpack_from("!HH", d, off)
            if ln < 4:
                break
            end = min(off + ln, end_msg)
            if sid == 2:
                self.template_set(d, off + 4, end, key, True, False)
            elif sid == 3:
                self.template_set(d, off + 4, end, key, True, True)
            elif sid >= 256:
                self.data_set(d, off + 4, end, key, sid, True, secs, 0)
            off += ln

    # -- sFlow v5
    def l3_of_header(self, proto, hdr):
        """Return (family, IP total length) from a sampled header."""
        if proto == 1:          # Ethernet
            off, et = 12, None
            while off + 2 <= len(hdr):
                (et,) = struct.unpack_from("!H", hdr, off)
                if et in (0x8100, 0x88A8, 0x9100):
                    off += 4
                    continue
                off += 2
                break
            body = hdr[off:]
        elif proto in (11, 12):  # IPv4, IPv6
            body = hdr
        else:
            return None, 0
        if len(body) >= 20 and body[0] >> 4 == 4:
            return 4, struct.unpack_from("!H", body, 2)[0]
        if len(body) >= 40 and body[0] >> 4 == 6:
            return 6, struct.unpack_from("!H", body, 4)[0] + 40
        return None, 0

    def sflow(self, d):
        atype = struct.unpack_from("!I", d, 4)[0]
        off = 8 + (4 if atype == 1 else 16)
        sub, seq, uptime, ns = struct.unpack_from("!IIII", d, off)
        off += 16
        for _ in range(ns):
            stype, slen = struct.unpack_from("!II", d, off)
            body = d[off + 8:off + 8 + slen]
            off += 8 + slen
            fmt = stype & 0xFFF
            if stype >> 12 != 0 or fmt not in (1, 3):
                self.records[f"sflow other sample {stype >> 12}:{fmt}"] += 1
                continue
            if fmt == 1:
                sseq, srcid, rate, pool, drops, inp, outp, nrec = struct.unpack_from("!8I", body, 0)
                p = 32
            else:
                sseq, st, si, rate, pool, drops, ifm, ifv, ofm, ofv, nrec = \
                    struct.unpack_from("!11I", body, 0)
                p = 44
            self.sampling[f"sflow sample rate {rate}"] += 1
            rate = rate or 1
            fam, l3 = None, 0
            for _ in range(nrec):
                rtype, rlen = struct.unpack_from("!II", body, p)
                rb = body[p + 8:p + 8 + rlen]
                p += 8 + rlen
                if rtype == 1:       # raw packet header
                    hproto, flen, stripped, hlen = struct.unpack_from("!IIII", rb, 0)
                    self.frame_bytes += flen * rate
                    fam, l3 = self.l3_of_header(hproto, rb[16:16 + hlen])
                elif rtype == 3 and fam is None:     # sampled IPv4
                    fam, l3 = 4, struct.unpack_from("!I", rb, 0)[0]
                elif rtype == 4 and fam is None:     # sampled IPv6
                    fam, l3 = 6, struct.unpack_from("!I", rb, 0)[0]
            self.add(fam, l3 * rate, rate)
            self.records["sflow"] += 1

    def datagram(self, d, addr_key="-"):
        if len(d) < 4:
            return
        (ver,) = struct.unpack_from("!H", d, 0)
        if ver == 5:
            self.v5(d)
        elif ver == 9:
            self.v9(d, addr_key)
        elif ver == 10:
            self.ipfix(d, addr_key)
        elif struct.unpack_from("!I", d, 0)[0] == 5:
            ver = "sflow5"
            self.sflow(d)
        else:
            ver = f"unknown {ver}"
        self.datagrams[str(ver)] += 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--per-minute", action="store_true")
    ap.add_argument("--records", action="store_true",
                    help="print each NetFlow v9/IPFIX flow record as a JSON line instead")
    a = ap.parse_args()
    s = Sum()
    if a.records:
        s.dump = []
    for d in records(a.file):
        s.datagram(d)
    if a.records:
        for r in s.dump:
            print(json.dumps(r))
        return
    out = {"ipv4_bytes": s.t[4][0], "ipv4_packets": s.t[4][1],
           "ipv6_bytes": s.t[6][0], "ipv6_packets": s.t[6][1],
           "other_bytes": s.other[0], "other_packets": s.other[1],
           "datagrams": dict(s.datagrams), "records": dict(s.records),
           "templates": len(s.templates), "data_sets_without_template": s.unknown_template,
           "sampling": dict(s.sampling), "option_records": s.options[:5],
           "sflow_frame_bytes": s.frame_bytes}
    if a.per_minute:
        out["per_minute"] = [{"start": m, "ipv4_bytes": v[4][0], "ipv4_packets": v[4][1],
                              "ipv6_bytes": v[6][0], "ipv6_packets": v[6][1]}
                             for m, v in sorted(s.minutes.items())]
    if a.json:
        print(json.dumps(out, indent=1))
    else:
        print(out["ipv4_bytes"], out["ipv4_packets"], out["ipv6_bytes"], out["ipv6_packets"])
        print(json.dumps({k: v for k, v in out.items() if not k.startswith("ipv")}), file=sys.stderr)


if __name__ == "__main__":
    main()
