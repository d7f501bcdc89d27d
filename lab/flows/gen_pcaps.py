#!/usr/bin/python3
"""Write deterministic traffic captures with a known ground truth.

    lab/flows/gen_pcaps.py OUTDIR            # the small set (< 2 MB each, a few seconds)
    lab/flows/gen_pcaps.py OUTDIR --large    # also large.pcap (1,000,000 packets) for benchmarks
    lab/flows/gen_pcaps.py OUTDIR --large --large-packets 200000 --large-snaplen 0

Needs Debian's python3-scapy (run with /usr/bin/python3, not a pyenv python).
Only documentation prefixes are used: 2001:db8::/32, 192.0.2.0/24, 198.51.100.0/24,
203.0.113.0/24 (plus link-local, ULA and multicast sources as non-global noise).

Files (NAME.pcap / NAME.pcapng, each with NAME.truth.json):
  mix.pcap       Ethernet (DLT 1), orgs B and C behind 802.1Q tags (VLAN 200 / 300);
                 v4/v6 TCP+UDP of varied sizes, DNS answers and TLS SNI, ICMPv6-only and
                 DNS-only subscribers, non-global IPv6 sources, IPv6 extension headers
                 (hop-by-hop, destination options, fragment), IPv4 fragments; 5 minutes.
  app-run1.pcap  Linux cooked capture (DLT 113, as `tcpdump -i any` on a phone): one app,
                 three minutes, for the app IPv6-concentration report.
  app-run2.pcapng  the same app, another run, pcapng (Ethernet).
  app-run3.pcap  the same app, a third run, Ethernet.
  large.pcap     (--large) 1 M packets, Ethernet, many subscribers; packets are truncated
                 to --large-snaplen bytes (128; 0 = whole packets) so the file stays small.
  manifest.json  the files, their link types, and the app concentration averaged over runs.

Byte definition everywhere: layer-3 bytes = IPv4 total length, IPv6 payload length + 40.
The pcap writers are our own (classic pcap, microsecond timestamps; pcapng with one
interface and EPBs) so the timestamps in the truth are exactly those in the files.
"""

import argparse
import datetime
import ipaddress
import json
import os
import random
import struct
import sys
import time

try:
    from scapy.layers.inet import IP, TCP, UDP, ICMP
    from scapy.layers.inet6 import (IPv6, IPv6ExtHdrHopByHop, IPv6ExtHdrDestOpt,
                                    ICMPv6EchoRequest, ICMPv6EchoReply, ICMPv6ND_RA,
                                    ICMPv6ND_NS, ICMPv6ND_NA, ICMPv6ND_RS, PadN)
    from scapy.layers.dns import DNS, DNSQR, DNSRR
    from scapy.packet import Raw
except ImportError:
    sys.exit("gen_pcaps.py: needs Debian's python3-scapy; run it with /usr/bin/python3 "
             "(apt-get install python3-scapy)")

T0 = 1768464000  # 2026-01-15T08:00:00Z, a minute boundary
LINKTYPE_ETHERNET = 1
LINKTYPE_LINUX_SLL = 113

# --------------------------------------------------------------------------------------
# The organisation table the truth is computed against (and that a test would load).
ORGS = [
    {"org": "A", "name": "Example Mobile A", "region": "north", "subscriber_prefix_len": 64,
     "prefixes": ["2001:db8:a::/48", "198.51.100.0/25"]},
    {"org": "B", "name": "Example Fixed B", "region": "south", "subscriber_prefix_len": 56,
     "prefixes": ["2001:db8:b::/48", "198.51.100.128/25"]},
    {"org": "C", "name": "Example Campus C", "region": "east", "subscriber_prefix_len": 60,
     "prefixes": ["2001:db8:c::/48", "192.0.2.0/24"]},
    {"org": "S", "name": "Example Content (servers)", "region": "west", "subscriber_prefix_len": None,
     "prefixes": ["2001:db8:5e::/48", "203.0.113.0/24"]},
]
_ORG_NETS = [(o["org"], ipaddress.ip_network(p)) for o in ORGS for p in o["prefixes"]]

# Servers, named through DNS answers and/or TLS SNI in the captures.
RESOLVER4, RESOLVER6 = "203.0.113.53", "2001:db8:5e::53"
HOSTS = {  # name -> (IPv4 or None, IPv6 or None)
    "video.example.test": ("203.0.113.10", "2001:db8:5e::10"),
    "api.example.test": ("203.0.113.11", "2001:db8:5e::11"),
    "cdn.example.test": ("203.0.113.12", "2001:db8:5e::12"),
    "img.example.test": ("203.0.113.20", None),
    "ads.example.test": ("203.0.113.21", None),
    "static.cdn.example.test": ("203.0.113.30", None),   # reached via CNAME static.example.test
    "chat.example.test": ("203.0.113.40", "2001:db8:5e::40"),
}
CNAMES = {"static.example.test": "static.cdn.example.test"}
UNNAMED_V4 = "203.0.113.99"    # an app talks to it by literal address: no DNS, no SNI
UNNAMED_V6 = "2001:db8:5e::99"

MAC_CLIENT = bytes.fromhex("020000000001")
MAC_ROUTER = bytes.fromhex("020000000002")


def org_of(addr):
    a = ipaddress.ip_address(addr)
    for org, net in _ORG_NETS:
        if a.version == net.version and a in net:
            return org
    return None


def org_info(org):
    return next(o for o in ORGS if o["org"] == org)


def is_global6(addr):
    """Global for the purpose of these tests: not link-local, ULA, multicast, loopback,
    unspecified; 2001:db8::/32 (documentation) is treated as global (an allow-prefix)."""
    a = ipaddress.IPv6Address(addr)
    return not (a.is_link_local or a.is_multicast or a.is_loopback or a.is_unspecified
                or a in ipaddress.IPv6Network("fc00::/7"))


def iso(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------------------
# Writers

def pcap_bytes_header(linktype, snaplen=65535):
    return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype)


def pcap_record(ts_us, frame, snaplen=0):
    cap = frame if not snaplen else frame[:snaplen]
    return struct.pack("<IIII", ts_us // 1000000, ts_us % 1000000, len(cap), len(frame)) + cap


def write_pcap(path, linktype, frames):
    with open(path, "wb") as f:
        f.write(pcap_bytes_header(linktype))
        for ts_us, frame in frames:
            f.write(pcap_record(ts_us, frame))


def _pad4(b):
    return b + b"\0" * (-len(b) % 4)


def write_pcapng(path, linktype, frames):
    def block(btype, body):
        body = _pad4(body)
        n = len(body) + 12
        return struct.pack("<II", btype, n) + body + struct.pack("<I", n)

    with open(path, "wb") as f:
        # Section header: byte-order magic, version 1.0, unknown section length; option
        # shb_userappl (4).
        appl = b"v6scope gen_pcaps.py"
        opts = struct.pack("<HH", 4, len(appl)) + _pad4(appl) + struct.pack("<HH", 0, 0)
        f.write(block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + opts))
        # Interface description: if_name (2) "eth0", if_tsresol (9) = 6 (microseconds).
        opts = (struct.pack("<HH", 2, 4) + b"eth0" + struct.pack("<HHB", 9, 1, 6) + b"\0\0\0"
                + struct.pack("<HH", 0, 0))
        f.write(block(1, struct.pack("<HHI", linktype, 0, 65535) + opts))
        for ts_us, frame in frames:
            body = struct.pack("<IIIII", 0, ts_us >> 32, ts_us & 0xFFFFFFFF, len(frame), len(frame))
            f.write(block(6, body + _pad4(frame)))


# --------------------------------------------------------------------------------------
# Layer 2

def ethertype_of(l3):
    return 0x0800 if l3[0] >> 4 == 4 else 0x86DD


def dst_mac(l3, outbound):
    if l3[0] >> 4 == 6 and l3[24] == 0xFF:       # IPv6 multicast -> 33:33:xx:xx:xx:xx
        return b"\x33\x33" + l3[36:40]
    return MAC_ROUTER if outbound else MAC_CLIENT


def ether(l3, outbound, vlan=None):
    src = MAC_CLIENT if outbound else MAC_ROUTER
    hdr = dst_mac(l3, outbound) + src
    if vlan is not None:
        hdr += struct.pack("!HH", 0x8100, vlan & 0x0FFF)
    return hdr + struct.pack("!H", ethertype_of(l3)) + l3


def sll(l3, outbound):
    # Linux cooked capture v1: packet type (0 to us, 4 outgoing), ARPHRD_ETHER, addr len 6.
    src = MAC_CLIENT if outbound else MAC_ROUTER
    return struct.pack("!HHH", 4 if outbound else 0, 1, 6) + src + b"\0\0" + \
        struct.pack("!H", ethertype_of(l3)) + l3


# --------------------------------------------------------------------------------------
# TLS ClientHello with SNI (hand-made, TLS 1.3 style)

def client_hello(sni, rng):
    name = sni.encode()
    snl = struct.pack("!BH", 0, len(name)) + name
    exts = struct.pack("!HHH", 0, len(snl) + 2, len(snl)) + snl                 # server_name
    exts += struct.pack("!HHB", 43, 5, 4) + b"\x03\x04\x03\x03"                 # supported_versions
    exts += struct.pack("!HHH", 10, 4, 2) + b"\x00\x1d"                         # supported_groups
    exts += struct.pack("!HHH", 13, 6, 4) + b"\x04\x03\x08\x04"                 # signature_algorithms
    alpn = b"\x02h2"
    exts += struct.pack("!HHH", 16, len(alpn) + 2, len(alpn)) + alpn             # ALPN
    ks = struct.pack("!HH", 0x1D, 32) + rng.randbytes(32)
    exts += struct.pack("!HHH", 51, len(ks) + 2, len(ks)) + ks                   # key_share
    body = (b"\x03\x03" + rng.randbytes(32) + b"\x20" + rng.randbytes(32)
            + struct.pack("!H", 6) + b"\x13\x01\x13\x02\x13\x03" + b"\x01\x00"
            + struct.pack("!H", len(exts)) + exts)
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


# --------------------------------------------------------------------------------------
# Traffic builder: a list of packets (ts_us, l3 bytes, meta)

class Traffic:
    def __init__(self, seed, t0=T0):
        self.rng = random.Random(seed)
        self.t0 = t0
        self.pkts = []          # (ts_us, l3, meta)
        self.names = {}         # address -> {"dns": set(), "sni": set()}
        self.ipid = 1
        self.fragid = 0x1000

    # -- helpers
    def ip(self, src, dst, l4, ext=()):
        if ":" in src:
            p = IPv6(src=src, dst=dst, hlim=64)
            for e in ext:
                p = p / e
            return bytes(p / l4)
        self.ipid += 1
        return bytes(IP(src=src, dst=dst, ttl=64, id=self.ipid & 0xFFFF) / l4)

    def add(self, ts_us, l3, tag, outbound, vlan=None, **kw):
        meta = {"tag": tag, "outbound": outbound, "vlan": vlan}
        meta.update(kw)
        self.pkts.append((ts_us, l3, meta))

    def name(self, addr, kind, name):
        self.names.setdefault(addr, {"dns": set(), "sni": set()})[kind].add(name)

    def slot(self, minute=None, dur_s=8.0):
        """A start time (µs) such that [start, start+dur] stays inside one minute bucket."""
        m = self.rng.randrange(5) if minute is None else minute
        off = self.rng.uniform(1.0, 59.0 - dur_s)
        return (self.t0 + 60 * m) * 1000000 + int(off * 1e6)

    def payload(self, n):
        return self.rng.randbytes(n)

    # -- conversations
    def tcp_session(self, cli, srv, dport=443, start=None, down=(4, 1400), up=(2, 200),
                    sni=None, ext=(), vlan=None, tag="data"):
        rng = self.rng
        t = start if start is not None else self.slot()
        sport = rng.randrange(32768, 61000)
        cseq, sseq = rng.getrandbits(32), rng.getrandbits(32)
        rtt = rng.randrange(8000, 60000)

        def c2s(flags, data=b"", dt=None):
            nonlocal t, cseq
            t += dt if dt is not None else rng.randrange(200, 3000)
            l4 = TCP(sport=sport, dport=dport, flags=flags, seq=cseq & 0xFFFFFFFF,
                     ack=sseq & 0xFFFFFFFF if "A" in flags else 0, window=64240)
            if data:
                l4 = l4 / Raw(data)
            self.add(t, self.ip(cli, srv, l4, ext), tag, True, vlan, proto="tcp")
            cseq += len(data) + (1 if ("S" in flags or "F" in flags) else 0)

        def s2c(flags, data=b"", dt=None):
            nonlocal t, sseq
            t += dt if dt is not None else rng.randrange(200, 3000)
            l4 = TCP(sport=dport, dport=sport, flags=flags, seq=sseq & 0xFFFFFFFF,
                     ack=cseq & 0xFFFFFFFF, window=65535)
            if data:
                l4 = l4 / Raw(data)
            self.add(t, self.ip(srv, cli, l4), tag, False, vlan, proto="tcp")
            sseq += len(data) + (1 if ("S" in flags or "F" in flags) else 0)

        c2s("S", dt=0)
        s2c("SA", dt=rtt)
        c2s("A", dt=200)
        if sni:
            c2s("PA", client_hello(sni, rng))
            self.name(srv, "sni", sni)
        n_down, max_down = down
        n_up, max_up = up
        for i in range(n_down):
            size = rng.choice([max_down, max_down, max_down // 2, rng.randrange(40, max_down + 1)])
            s2c("PA" if i == n_down - 1 else "A", self.payload(size))
            if i % 2 == 1:
                c2s("A")
        for _ in range(n_up):
            c2s("PA", self.payload(rng.randrange(20, max_up + 1)))
            s2c("A")
        c2s("FA")
        s2c("FA", dt=rtt)
        c2s("A")
        return t

    def udp_exchange(self, cli, srv, dport=443, start=None, n=6, size=(60, 1350), vlan=None,
                     tag="data", frag_at=None):
        rng = self.rng
        t = start if start is not None else self.slot()
        sport = rng.randrange(32768, 61000)
        for i in range(n):
            t += rng.randrange(500, 20000)
            out = i % 2 == 0
            src, dst = (cli, srv) if out else (srv, cli)
            sp, dp = (sport, dport) if out else (dport, sport)
            data = self.payload(rng.randrange(size[0], size[1] + 1))
            if frag_at is not None and i == 1:
                self.fragmented_udp(src, dst, sp, dp, self.payload(2400), t, out, vlan, tag)
                continue
            self.add(t, self.ip(src, dst, UDP(sport=sp, dport=dp) / Raw(data)), tag, out, vlan,
                     proto="udp")
        return t

    def fragmented_udp(self, src, dst, sp, dp, data, t, outbound, vlan, tag):
        """One UDP datagram sent as two IP fragments (IPv6 fragment header / IPv4 MF)."""
        v6 = ":" in src
        whole = bytes((IPv6(src=src, dst=dst) if v6 else IP(src=src, dst=dst))
                      / UDP(sport=sp, dport=dp) / Raw(data))
        udp = whole[40:] if v6 else whole[20:]
        cut = 1232  # multiple of 8
        self.fragid += 1
        for k, (off, chunk, more) in enumerate([(0, udp[:cut], 1), (cut, udp[cut:], 0)]):
            if v6:
                hdr = struct.pack("!BBHI", 17, 0, (off // 8) << 3 | more, self.fragid)
                pl = hdr + chunk
                l3 = struct.pack("!IHBB", 6 << 28, len(pl), 44, 64) + \
                    ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed + pl
            else:
                l3 = bytes(IP(src=src, dst=dst, ttl=64, id=self.fragid & 0xFFFF, proto=17,
                              flags="MF" if more else 0, frag=off // 8) / Raw(chunk))
            self.add(t + k * 50, l3, tag, outbound, vlan, proto="udp", fragment=True)

    def dns_lookup(self, cli, resolver, qname, qtype, start=None, vlan=None, record=True):
        """A query and its answer. Answers come from HOSTS/CNAMES; A for a v6-only name or
        AAAA for a v4-only name answers NOERROR with no data."""
        rng = self.rng
        t = start if start is not None else self.slot(dur_s=1)
        sport = rng.randrange(32768, 61000)
        qid = rng.getrandbits(16)
        q = DNS(id=qid, rd=1, qd=DNSQR(qname=qname, qtype=qtype))
        self.add(t, self.ip(cli, resolver, UDP(sport=sport, dport=53) / q), "dns", True, vlan,
                 proto="udp")
        an = None
        target = qname
        if qname in CNAMES:
            target = CNAMES[qname]
            an = DNSRR(rrname=qname, type="CNAME", rdata=target, ttl=300)
        v4, v6 = HOSTS.get(target, (None, None))
        addr = v4 if qtype == "A" else v6
        if addr:
            rr = DNSRR(rrname=target, type=qtype, rdata=addr, ttl=300)
            an = rr if an is None else an / rr
            if record:
                self.name(addr, "dns", qname)
                if target != qname:
                    self.name(addr, "dns", target)
        r = DNS(id=qid, qr=1, rd=1, ra=1, qd=DNSQR(qname=qname, qtype=qtype), an=an)
        t += rng.randrange(2000, 30000)
        self.add(t, self.ip(resolver, cli, UDP(sport=53, dport=sport) / r), "dns", False, vlan,
                 proto="udp")
        return t

    def ping(self, cli, dst, count=3, start=None, size=56, vlan=None):
        rng = self.rng
        t = start if start is not None else self.slot(dur_s=count + 1)
        ident = rng.getrandbits(16)
        for seq in range(count):
            data = self.payload(size)
            if ":" in cli:
                req, rep = ICMPv6EchoRequest(id=ident, seq=seq, data=data), \
                    ICMPv6EchoReply(id=ident, seq=seq, data=data)
            else:
                req, rep = ICMP(type=8, id=ident, seq=seq) / Raw(data), \
                    ICMP(type=0, id=ident, seq=seq) / Raw(data)
            t += 1000000 if seq else 0
            self.add(t, self.ip(cli, dst, req), "icmp", True, vlan, proto="icmp")
            self.add(t + rng.randrange(5000, 40000), self.ip(dst, cli, rep), "icmp", False, vlan,
                     proto="icmp")
        return t

    def raw(self, ts_us, src, dst, l4, tag, outbound=True, vlan=None, ext=(), proto="other"):
        self.add(ts_us, self.ip(src, dst, l4, ext), tag, outbound, vlan, proto=proto)

    def sorted(self):
        return sorted(self.pkts, key=lambda p: p[0])


# --------------------------------------------------------------------------------------
# Scenarios

def v6sub(org, n, host=1):
    """Subscriber address: org A /64 number n, org B /56 number n, org C /60 number n."""
    if org == "A":
        return f"2001:db8:a:{n:x}::{host:x}"
    if org == "B":
        return f"2001:db8:b:{n << 8:x}::{host:x}"        # 2001:db8:b:NN00::/56
    return f"2001:db8:c:{n << 4:x}::{host:x}"            # 2001:db8:c:NN0::/60


def browse(tr, cli, resolver, vlan=None, minute=None, sessions=2, ext=(), v6=True):
    """DNS lookups, then TLS sessions with SNI and a QUIC-like UDP exchange."""
    names = ["video.example.test", "api.example.test", "chat.example.test", "cdn.example.test"]
    for _ in range(sessions):
        name = tr.rng.choice(names)
        start = tr.slot(minute=minute, dur_s=15)
        t = tr.dns_lookup(cli, resolver, name, "AAAA" if v6 else "A", start=start, vlan=vlan)
        srv = HOSTS[name][1 if v6 else 0]
        if tr.rng.random() < 0.7:
            tr.tcp_session(cli, srv, 443, start=t + 1000, sni=name, vlan=vlan, ext=ext,
                           down=(tr.rng.randrange(2, 5), 1400), up=(tr.rng.randrange(1, 3), 300))
        else:
            tr.udp_exchange(cli, srv, 443, start=t + 1000, n=tr.rng.randrange(4, 7), vlan=vlan)


def scenario_mix(seed=1):
    tr = Traffic(seed)
    rng = tr.rng
    # Org A (/64 subscribers, untagged). 12 active /64s; /64 1 holds 4 distinct /128s,
    # /64 2 holds 3, /64 3 holds 2 (privacy addresses rotating).
    for n in range(1, 13):
        hosts = {1: 4, 2: 3, 3: 2}.get(n, 1)
        for h in range(hosts):
            addr = v6sub("A", n, 0x100 + h * 0x1111 if hosts > 1 else 1)
            browse(tr, addr, RESOLVER6, sessions=1 if hosts > 1 else 1 + n % 2)
    # /64 0x20: one address only pings, another browses -> the /64 is active, one /128 active.
    browse(tr, v6sub("A", 0x20, 0xa), RESOLVER6, sessions=1)
    tr.ping(v6sub("A", 0x20, 0xb), HOSTS["video.example.test"][1])
    # ICMPv6-only, DNS-only and ICMPv6+DNS-only subscribers: never active.
    tr.ping(v6sub("A", 0x101), HOSTS["video.example.test"][1], count=4)
    tr.ping(v6sub("A", 0x102), RESOLVER6, count=2, size=1200)
    for n in (0x201, 0x202):
        for _ in range(3):
            tr.dns_lookup(v6sub("A", n), RESOLVER6, rng.choice(list(HOSTS)), "AAAA")
    tr.ping(v6sub("A", 0x301), HOSTS["api.example.test"][1])
    tr.dns_lookup(v6sub("A", 0x301), RESOLVER6, "api.example.test", "AAAA")
    # Org B (/56, VLAN 200): 6 active /56s, several /64s inside one /56.
    for n in range(1, 7):
        browse(tr, v6sub("B", n), RESOLVER6, vlan=200, sessions=1 + n % 2)
    for sub64 in (0x0101, 0x01a0, 0x01ff):                 # three /64s of /56 number 1
        browse(tr, f"2001:db8:b:{sub64:x}::5", RESOLVER6, vlan=200, sessions=1)
    tr.ping(v6sub("B", 0x10), HOSTS["video.example.test"][1], vlan=200)
    tr.dns_lookup(v6sub("B", 0x11), RESOLVER6, "video.example.test", "AAAA", vlan=200)
    # Org C (/60, VLAN 300): 4 active /60s; their TCP carries hop-by-hop / destination
    # options headers; /60 number 4 sends a fragmented UDP datagram.
    hbh = IPv6ExtHdrHopByHop(options=[PadN(optdata=b"\0\0\0\0")])
    dst = IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\0\0\0\0")])
    browse(tr, v6sub("C", 1), RESOLVER6, vlan=300, ext=(hbh,))
    browse(tr, v6sub("C", 2), RESOLVER6, vlan=300, ext=(dst,))
    browse(tr, v6sub("C", 3), RESOLVER6, vlan=300, ext=(hbh, dst))
    tr.udp_exchange(v6sub("C", 4), HOSTS["chat.example.test"][1], 443, vlan=300, n=5, frag_at=1)
    tr.ping(v6sub("C", 5), RESOLVER6, vlan=300)
    # Peer to peer between org A /64 1 and org B /56 2 (both already active).
    tr.udp_exchange(v6sub("A", 1, 0x100), v6sub("B", 2), 51413, n=6)
    # Non-global sources: router advertisements and ND (link-local), mDNS from link-local to
    # ff02::fb, DHCPv6 solicit, a ULA host browsing, a packet with a multicast source.
    for m in range(5):
        t = (T0 + 60 * m + 2) * 1000000
        tr.raw(t, "fe80::1", "ff02::1", ICMPv6ND_RA(), "icmp", outbound=False, proto="icmp")
    t = (T0 + 70) * 1000000
    tr.raw(t, "fe80::a:1", "ff02::2", ICMPv6ND_RS(), "icmp", proto="icmp")
    tr.raw(t + 1000, "fe80::a:1", "ff02::1:ff00:1", ICMPv6ND_NS(tgt="fe80::1"), "icmp", proto="icmp")
    tr.raw(t + 2000, "fe80::1", "fe80::a:1", ICMPv6ND_NA(tgt="fe80::1", R=1, S=1), "icmp",
           outbound=False, proto="icmp")
    for k in range(4):
        tr.raw((T0 + 130 + k) * 1000000, "fe80::b:7", "ff02::fb",
               UDP(sport=5353, dport=5353) / Raw(tr.payload(120 + 40 * k)), "data", proto="udp")
    tr.raw((T0 + 140) * 1000000, "fe80::b:8", "ff02::1:2",
           UDP(sport=546, dport=547) / Raw(tr.payload(60)), "data", proto="udp")
    tr.tcp_session("fd00:db8:1:1::10", HOSTS["video.example.test"][1], 443,
                   start=(T0 + 185) * 1000000, sni="video.example.test")
    tr.raw((T0 + 200) * 1000000, "ff05::1:3", HOSTS["video.example.test"][1],
           UDP(sport=547, dport=547) / Raw(tr.payload(80)), "data", outbound=False, proto="udp")
    # 2001:db8:ffff::9 is in no organisation: counted in totals, in no org.
    tr.tcp_session("2001:db8:ffff::9", HOSTS["api.example.test"][1], 443, sni="api.example.test")
    # IPv4 subscribers of A, B and C.
    for i in range(1, 7):
        browse(tr, f"198.51.100.{i}", RESOLVER4, v6=False, sessions=1 + i % 2)
    for i in range(1, 5):
        browse(tr, f"198.51.100.{128 + i}", RESOLVER4, vlan=200, v6=False)
    for i in range(1, 3):
        browse(tr, f"192.0.2.{i}", RESOLVER4, vlan=300, v6=False)
    for i in range(1, 3):   # IPv4-only hosts
        cli = f"198.51.100.{20 + i}"
        t = tr.dns_lookup(cli, RESOLVER4, "img.example.test", "A")
        tr.tcp_session(cli, HOSTS["img.example.test"][0], 443, start=t + 500, sni="img.example.test")
    tr.dns_lookup("198.51.100.30", RESOLVER4, "static.example.test", "A", start=(T0 + 245) * 1000000)
    tr.tcp_session("198.51.100.30", HOSTS["static.cdn.example.test"][0], 443,
                   start=(T0 + 246) * 1000000, sni="static.example.test")
    tr.ping("198.51.100.40", RESOLVER4)
    tr.udp_exchange("192.0.2.9", HOSTS["video.example.test"][0], 443, n=5, vlan=300, frag_at=1)
    tr.tcp_session("198.51.100.41", UNNAMED_V4, 8443, down=(3, 900))
    return tr


def scenario_app(seed):
    """One app on one phone for three minutes: how much of its traffic is IPv6, and which
    hosts still carry IPv4."""
    tr = Traffic(seed, t0=T0 + 3600)      # an hour after mix
    rng = tr.rng
    c4, c6 = "192.0.2.77", "2001:db8:a:77::77"
    t = (tr.t0 + 3) * 1000000
    tr.raw(t - 1000000, "fe80::1", "ff02::1", ICMPv6ND_RA(), "icmp", outbound=False, proto="icmp")
    # DNS for everything over IPv4 to the resolver (the resolver itself stays unnamed).
    for name in ["video.example.test", "api.example.test", "chat.example.test",
                 "cdn.example.test", "img.example.test", "ads.example.test", "static.example.test"]:
        for qt in ("AAAA", "A"):
            t = tr.dns_lookup(c4, RESOLVER4, name, qt, start=t + rng.randrange(1000, 20000))
    scale = 1.0 + 0.15 * (seed % 3)
    for m in range(3):
        base = (tr.t0 + 60 * m + 5) * 1000000
        tr.tcp_session(c6, HOSTS["video.example.test"][1], 443, start=base, sni="video.example.test",
                       down=(int(40 * scale), 1400), up=(4, 300))
        tr.tcp_session(c6, HOSTS["api.example.test"][1], 443, start=base + 12000000,
                       sni="api.example.test", down=(6, 900), up=(4, 600))
        tr.udp_exchange(c6, HOSTS["chat.example.test"][1], 443, start=base + 20000000, n=10)
        tr.tcp_session(c4, HOSTS["img.example.test"][0], 443, start=base + 25000000,
                       sni="img.example.test", down=(int(12 * scale), 1400), up=(2, 200))
        tr.tcp_session(c4, HOSTS["ads.example.test"][0], 443, start=base + 32000000,
                       sni="ads.example.test", down=(4, 1000), up=(2, 400))
        tr.tcp_session(c4, HOSTS["cdn.example.test"][0], 443, start=base + 38000000,
                       sni="cdn.example.test", down=(8, 1400), up=(1, 200))
        if m == 1:
            tr.tcp_session(c4, HOSTS["static.cdn.example.test"][0], 443, start=base + 44000000,
                           sni="static.example.test", down=(5, 1400), up=(1, 200))
            tr.tcp_session(c4, UNNAMED_V4, 8443, start=base + 50000000, down=(2, 600), up=(1, 100))
    return tr


# --------------------------------------------------------------------------------------
# Ground truth, computed from the packets themselves

def l3_info(l3):
    """(version, l3 length, src, dst, protocol after extension headers, is_fragment,
    has_ext, layer-4 bytes, fragment offset) from raw bytes."""
    v = l3[0] >> 4
    if v == 4:
        ihl = (l3[0] & 15) * 4
        tl = struct.unpack("!H", l3[2:4])[0]
        frag = struct.unpack("!H", l3[6:8])[0]
        is_frag = bool(frag & 0x2000 or frag & 0x1FFF)
        return 4, tl, str(ipaddress.IPv4Address(l3[12:16])), str(ipaddress.IPv4Address(l3[16:20])), \
            l3[9], is_frag, False, l3[ihl:], frag & 0x1FFF
    plen = struct.unpack("!H", l3[4:6])[0]
    nh, off, is_frag, has_ext, frag_off = l3[6], 40, False, False, 0
    while nh in (0, 43, 60, 44):
        has_ext = True
        if nh == 44:
            is_frag = True
            frag_off = struct.unpack("!H", l3[off + 2:off + 4])[0] >> 3
            nh, off = l3[off], off + 8
        else:
            nh, off = l3[off], off + 8 * (l3[off + 1] + 1)
    return 6, plen + 40, str(ipaddress.IPv6Address(l3[8:24])), \
        str(ipaddress.IPv6Address(l3[24:40])), nh, is_frag, has_ext, l3[off:], frag_off


def subscriber_key(addr):
    org = org_of(addr)
    if org is None or ":" not in addr:
        return None
    plen = org_info(org)["subscriber_prefix_len"]
    if plen is None or not is_global6(addr):
        return None
    net = ipaddress.IPv6Network(f"{addr}/{plen}", strict=False)
    return org, str(net)


class Truth:
    def __init__(self):
        self.tot = {4: [0, 0], 6: [0, 0]}
        self.frame_bytes = 0
        self.minutes = {}
        self.subs = {}      # (org, prefix) -> set of tags
        self.addrs = {}     # (org, addr) -> set of tags
        self.org_bytes = {}
        self.breakdown = {}
        self.flows = {4: set(), 6: set()}
        self.addr_bytes = {}   # addr -> [v4 bytes, v6 bytes]

    def bump(self, key, n):
        b = self.breakdown.setdefault(key, [0, 0])
        b[0] += n
        b[1] += 1

    def add(self, ts_us, frame_len, l3, tag, vlan):
        v, n, src, dst, proto, is_frag, has_ext, l4, frag_off = l3_info(l3)
        assert n == len(l3), (n, len(l3))
        self.tot[v][0] += n
        self.tot[v][1] += 1
        self.frame_bytes += frame_len
        minute = (ts_us // 1000000) // 60 * 60
        mm = self.minutes.setdefault(minute, {4: [0, 0], 6: [0, 0]})
        mm[v][0] += n
        mm[v][1] += 1
        ports = (0, 0)
        if proto in (6, 17) and frag_off == 0 and len(l4) >= 4:
            ports = struct.unpack("!HH", l4[:4])
        self.flows[v].add((src, dst, proto, ports))
        if vlan is not None:
            self.bump(f"ipv{v}_vlan_tagged", n)
        if is_frag:
            self.bump(f"ipv{v}_fragments", n)
        if has_ext:
            self.bump("ipv6_with_extension_headers", n)
        if v == 6:
            if not is_global6(src):
                self.bump("ipv6_nonglobal_source", n)
            if ipaddress.IPv6Address(dst).is_multicast:
                self.bump("ipv6_multicast_destination", n)
            if proto == 58:
                self.bump("icmpv6", n)
        if tag == "dns":
            self.bump(f"ipv{v}_dns", n)
        orgs = set()
        for a in (src, dst):
            o = org_of(a)
            if o:
                orgs.add(o)
            ab = self.addr_bytes.setdefault(a, [0, 0])
            ab[0 if v == 4 else 1] += n
            k = subscriber_key(a)
            if k:
                self.subs.setdefault(k, set()).add(tag)
                self.addrs.setdefault((k[0], a), set()).add(tag)
        for o in orgs:
            ob = self.org_bytes.setdefault(o, {4: [0, 0], 6: [0, 0]})
            ob[v][0] += n
            ob[v][1] += 1

    def result(self, names=None, client_side=None):
        out = {
            "definition": {
                "bytes": "layer-3 bytes: IPv4 total length; IPv6 payload length + 40 (extension "
                         "headers included); every IP packet of the capture, fragments counted "
                         "one packet each",
                "minute": "per_minute buckets are [start, start+60) in pcap timestamps (UTC)",
                "subscriber": "an address inside an organisation's IPv6 prefix, seen as source or "
                              "destination, truncated to the organisation's subscriber prefix "
                              "length; non-global addresses (link-local, ULA, multicast) are never "
                              "subscribers; 2001:db8::/32 is treated as global (allow-prefix)",
                "active_subscribers": "subscriber prefixes with at least one IPv6 packet that is "
                                      "neither ICMPv6 nor DNS (UDP port 53); prefixes whose IPv6 "
                                      "traffic is only ICMPv6, only DNS, or only ICMPv6 and DNS are "
                                      "excluded (Chinese definition)",
                "active_addresses": "distinct /128 subscriber addresses with at least one IPv6 "
                                    "packet that is neither ICMPv6 nor DNS; addresses_seen counts "
                                    "every /128 subscriber address with any IPv6 packet",
                "flows_unidirectional": "distinct (src, dst, protocol, ports) in the packets, "
                                        "ports 0 for non-first IPv4 fragments and for IPv6 "
                                        "fragments after the first; informative only: exporters "
                                        "split or merge flows by their own timeouts",
            },
            "totals": {
                "ipv4_bytes": self.tot[4][0], "ipv4_packets": self.tot[4][1],
                "ipv6_bytes": self.tot[6][0], "ipv6_packets": self.tot[6][1],
                "frame_bytes": self.frame_bytes,
                "ipv4_flows_unidirectional": len(self.flows[4]),
                "ipv6_flows_unidirectional": len(self.flows[6]),
            },
            "per_minute": [
                {"start": m, "start_utc": iso(m),
                 "ipv4_bytes": d[4][0], "ipv4_packets": d[4][1],
                 "ipv6_bytes": d[6][0], "ipv6_packets": d[6][1]}
                for m, d in sorted(self.minutes.items())],
            "breakdown": {k: {"bytes": v[0], "packets": v[1]} for k, v in sorted(self.breakdown.items())},
            "orgs": {},
        }
        for o in ORGS:
            org = o["org"]
            subs = {k[1]: tags for k, tags in self.subs.items() if k[0] == org}
            addrs = {k[1]: tags for k, tags in self.addrs.items() if k[0] == org}
            active = sorted(p for p, tags in subs.items() if tags - {"icmp", "dns"})
            ob = self.org_bytes.get(org, {4: [0, 0], 6: [0, 0]})
            out["orgs"][org] = {
                "name": o["name"], "region": o["region"], "prefixes": o["prefixes"],
                "subscriber_prefix_len": o["subscriber_prefix_len"],
                "ipv4_bytes": ob[4][0], "ipv4_packets": ob[4][1],
                "ipv6_bytes": ob[6][0], "ipv6_packets": ob[6][1],
                "active_subscribers": len(active),
                "subscribers_seen": len(subs),
                "excluded_icmpv6_only": sum(1 for t in subs.values() if t == {"icmp"}),
                "excluded_dns_only": sum(1 for t in subs.values() if t == {"dns"}),
                "excluded_icmpv6_and_dns_only": sum(1 for t in subs.values() if t == {"icmp", "dns"}),
                "active_addresses": sum(1 for t in addrs.values() if t - {"icmp", "dns"}),
                "addresses_seen": len(addrs),
                "distinct_active_64s": len({str(ipaddress.IPv6Network(f"{a}/64", strict=False))
                                            for a, t in addrs.items() if t - {"icmp", "dns"}}),
            }
            if len(active) <= 64:
                out["orgs"][org]["active_subscriber_prefixes"] = active
        if names is not None:
            out["app"] = self.app(names, client_side)
        return out

    def app(self, names, client_side):
        """App concentration: IPv6 share of the capture's bytes, and the remote hosts named by
        DNS answers / TLS SNI, grouped by name (SNI first, else the DNS query name)."""
        groups = {}
        for addr, (b4, b6) in self.addr_bytes.items():
            if client_side(addr):
                continue
            n = names.get(addr)
            if n:
                primary = sorted(n["sni"])[0] if n["sni"] else sorted(n["dns"])[0]
                all_names = sorted(n["sni"] | n["dns"])
            else:
                primary, all_names = None, []
            key = primary or addr
            g = groups.setdefault(key, {"name": primary, "names": set(), "addresses": set(),
                                        "ipv4_bytes": 0, "ipv6_bytes": 0})
            g["names"].update(all_names)
            g["addresses"].add(addr)
            g["ipv4_bytes"] += b4
            g["ipv6_bytes"] += b6
        hosts = []
        for g in groups.values():
            hosts.append({"name": g["name"], "names": sorted(g["names"]),
                          "addresses": sorted(g["addresses"]),
                          "ipv4_bytes": g["ipv4_bytes"], "ipv6_bytes": g["ipv6_bytes"]})
        hosts.sort(key=lambda h: (-h["ipv4_bytes"], -h["ipv6_bytes"], h["name"] or "", h["addresses"]))
        total = self.tot[4][0] + self.tot[6][0]
        return {
            "definition": "ipv6_share_bytes = IPv6 layer-3 bytes / all layer-3 bytes of the "
                          "capture; hosts are the remote addresses (not the client's own, not "
                          "link-local/multicast) grouped by name: TLS SNI if the capture has one "
                          "for the address, else the DNS query name whose answer gave it (a CNAME "
                          "target is listed in names); unnamed addresses stand alone with name "
                          "null; bytes are both directions",
            "ipv6_share_bytes": round(self.tot[6][0] / total, 6) if total else None,
            "hosts_with_ipv4_bytes": [h for h in hosts if h["ipv4_bytes"] > 0],
            "hosts": hosts,
        }


def verify(path, truth):
    """Re-read the written file with scapy and check the totals."""
    from scapy.utils import rdpcap
    tot = {4: [0, 0], 6: [0, 0]}
    for p in rdpcap(path):
        for layer, v in ((IP, 4), (IPv6, 6)):
            if p.haslayer(layer):
                ip = p[layer]
                n = ip.len if v == 4 else ip.plen + 40
                tot[v][0] += n
                tot[v][1] += 1
                break
    t = truth["totals"]
    got = (tot[4][0], tot[4][1], tot[6][0], tot[6][1])
    want = (t["ipv4_bytes"], t["ipv4_packets"], t["ipv6_bytes"], t["ipv6_packets"])
    if got != want:
        sys.exit(f"gen_pcaps.py: self-check failed for {path}: scapy reads {got}, truth {want}")


def emit(outdir, name, tr, linktype, fmt, client_side=None):
    frames, truth = [], Truth()
    for ts, l3, meta in tr.sorted():
        if linktype == LINKTYPE_LINUX_SLL:
            frame = sll(l3, meta["outbound"])
        else:
            frame = ether(l3, meta["outbound"], meta["vlan"])
        frames.append((ts, frame))
        truth.add(ts, len(frame), l3, meta["tag"], meta["vlan"])
    fname = f"{name}.{fmt}"
    path = os.path.join(outdir, fname)
    (write_pcapng if fmt == "pcapng" else write_pcap)(path, linktype, frames)
    # Hosts for the app report are the remote side: by default the servers' organisation.
    res = truth.result(tr.names, client_side or (lambda a: org_of(a) != "S"))
    head = {"file": fname, "linktype": linktype,
            "linktype_name": {1: "EN10MB", 113: "LINUX_SLL"}[linktype], "format": fmt,
            "packets": len(frames), "first_ts": frames[0][0] / 1e6, "last_ts": frames[-1][0] / 1e6,
            "first_utc": iso(frames[0][0] // 1000000), "last_utc": iso(frames[-1][0] // 1000000)}
    res = {**head, **res}
    with open(os.path.join(outdir, f"{name}.truth.json"), "w") as f:
        json.dump(res, f, indent=1, sort_keys=False)
        f.write("\n")
    verify(path, res)
    return res


# --------------------------------------------------------------------------------------
# Large capture for benchmarks: built with struct (no scapy), zero payloads so the TCP/UDP
# checksums only cover the headers.

def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def large(outdir, npkts, snaplen, seed=7):
    rng = random.Random(seed)
    t0 = T0 + 7200
    # Subscriber pools (each org is a /48): org A 40,000 /64s; org B 255 /56s (1-3 addresses
    # in random /64s); org C 4,000 /60s. 3 % of each org's subscribers are ICMPv6-only and
    # 3 % DNS-only.
    subs = []   # (org, prefix-int, [address ints], kind)
    for org, count, plen, base in (("A", 40000, 64, 0x20010DB8000A << 80),
                                   ("B", 255, 56, 0x20010DB8000B << 80),
                                   ("C", 4000, 60, 0x20010DB8000C << 80)):
        assert count < 1 << (plen - 48)
        for n in range(1, count + 1):
            pfx = base | (n << (128 - plen))
            addrs = []
            for h in range(rng.choice([1, 1, 1, 2, 3])):
                sub64 = rng.randrange(1 << (64 - plen)) if plen < 64 else 0
                addrs.append(pfx | (sub64 << 64) | rng.getrandbits(64))
            r = rng.random()
            kind = "icmp" if r < 0.03 else "dns" if r < 0.06 else "data"
            subs.append((org, pfx, addrs, kind))
    v4subs = [(198 << 24 | 51 << 16 | 100 << 8 | i) for i in range(1, 255)] + \
             [(192 << 24 | 2 << 8 | i) for i in range(1, 255)]
    servers6 = [0x20010DB8005E << 80 | i for i in range(1, 200)]
    servers4 = [(203 << 24 | 113 << 8 | i) for i in range(1, 200)]
    res6 = int(ipaddress.IPv6Address(RESOLVER6))
    res4 = int(ipaddress.IPv4Address(RESOLVER4))
    sizes = [40, 52, 52, 76, 120, 576, 1280, 1400, 1500, 1500]

    truth = Truth()
    path = os.path.join(outdir, "large.pcap")
    span_us = 300 * 1000000
    ts_list = sorted(rng.randrange(span_us) for _ in range(npkts))
    eth_out = MAC_ROUTER + MAC_CLIENT
    eth_in = MAC_CLIENT + MAC_ROUTER
    tot = {4: [0, 0], 6: [0, 0]}
    minutes = {}
    sub_tags = {}
    addr_tags = {}
    org_names = {"A": 0, "B": 1, "C": 2}
    with open(path, "wb") as f:
        f.write(pcap_bytes_header(LINKTYPE_ETHERNET, snaplen or 65535))
        buf = []
        for i, off in enumerate(ts_list):
            ts = t0 * 1000000 + off
            outbound = rng.random() < 0.3
            if rng.random() < 0.62:    # IPv6
                org, pfx, addrs, kind = subs[rng.randrange(len(subs))]
                a = addrs[rng.randrange(len(addrs))]
                if kind == "icmp":
                    proto, srv, sp, dp = 58, servers6[0], 0, 0
                elif kind == "dns":
                    proto, srv, sp, dp = 17, res6, 40000 + (a & 0xFFF), 53
                else:
                    proto = 6 if rng.random() < 0.7 else 17
                    srv = servers6[rng.randrange(len(servers6))]
                    sp, dp = 32768 + (a ^ srv) % 20000, 443
                size = 80 if kind != "data" else rng.choice(sizes) + 20
                src, dst = (a, srv) if outbound else (srv, a)
                if not outbound:
                    sp, dp = dp, sp
                plen = size - 40
                s_b, d_b = src.to_bytes(16, "big"), dst.to_bytes(16, "big")
                if proto == 58:
                    l4 = struct.pack("!BBHHH", 128 if outbound else 129, 0, 0, 1, i & 0xFFFF)
                else:
                    l4 = struct.pack("!HH", sp, dp) + (
                        struct.pack("!IIBBHHH", i, 0, 0x50, 0x10, 65535, 0, 0) if proto == 6
                        else struct.pack("!HH", plen, 0))
                l4 = l4 + b"\0" * (plen - len(l4))
                ck = csum(s_b + d_b + struct.pack("!IxxxB", plen, proto) + l4[:20])
                pos = 2 if proto == 58 else (16 if proto == 6 else 6)
                l4 = l4[:pos] + struct.pack("!H", ck or 0xFFFF) + l4[pos + 2:]
                l3 = struct.pack("!IHBB", 6 << 28, plen, proto, 64) + s_b + d_b + l4
                ver = 6
                key = (org, pfx)
                sub_tags.setdefault(key, set()).add(kind)
                addr_tags.setdefault(a, set()).add(kind)
                ob = truth.org_bytes.setdefault(org, {4: [0, 0], 6: [0, 0]})
                ob[6][0] += size
                ob[6][1] += 1
            else:
                a = v4subs[rng.randrange(len(v4subs))]
                srv = servers4[rng.randrange(len(servers4))]
                proto = 6 if rng.random() < 0.8 else 17
                size = rng.choice(sizes)
                src, dst = (a, srv) if outbound else (srv, a)
                sp, dp = 32768 + (a ^ srv) % 20000, 443
                if not outbound:
                    sp, dp = dp, sp
                s_b, d_b = src.to_bytes(4, "big"), dst.to_bytes(4, "big")
                plen = size - 20
                l4 = struct.pack("!HH", sp, dp) + (
                    struct.pack("!IIBBHHH", i, 0, 0x50, 0x10, 65535, 0, 0) if proto == 6
                    else struct.pack("!HH", plen, 0))
                l4 = l4 + b"\0" * (plen - len(l4))
                ck = csum(s_b + d_b + struct.pack("!xBH", proto, plen) + l4[:20])
                pos = 16 if proto == 6 else 6
                l4 = l4[:pos] + struct.pack("!H", ck or 0xFFFF) + l4[pos + 2:]
                hdr = struct.pack("!BBHHHBBH", 0x45, 0, size, i & 0xFFFF, 0x4000, 64, proto, 0) + s_b + d_b
                hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
                l3 = hdr + l4
                ver = 4
                o = "A" if (a >> 8) & 0xFF == 100 and a & 0xFF < 128 else \
                    "B" if (a >> 8) & 0xFF == 100 else "C"
                ob = truth.org_bytes.setdefault(o, {4: [0, 0], 6: [0, 0]})
                ob[4][0] += size
                ob[4][1] += 1
            frame = (eth_out if outbound else eth_in) + (b"\x86\xdd" if ver == 6 else b"\x08\x00") + l3
            buf.append(pcap_record(ts, frame, snaplen))
            tot[ver][0] += size
            tot[ver][1] += 1
            truth.frame_bytes += len(frame)
            mm = minutes.setdefault(ts // 1000000 // 60 * 60, {4: [0, 0], 6: [0, 0]})
            mm[ver][0] += size
            mm[ver][1] += 1
            if len(buf) >= 10000:
                f.write(b"".join(buf))
                buf = []
        f.write(b"".join(buf))
    truth.tot = tot
    truth.minutes = minutes
    for (org, pfx), tags in sub_tags.items():
        plen = org_info(org)["subscriber_prefix_len"]
        truth.subs[(org, f"{ipaddress.IPv6Address(pfx)}/{plen}")] = tags
    # addresses: map back to org by prefix
    for a, tags in addr_tags.items():
        org = org_of(str(ipaddress.IPv6Address(a)))
        truth.addrs[(org, str(ipaddress.IPv6Address(a)))] = tags
    res = truth.result()
    del res["totals"]["ipv4_flows_unidirectional"], res["totals"]["ipv6_flows_unidirectional"]
    res["definition"].pop("flows_unidirectional")
    head = {"file": "large.pcap", "linktype": 1, "linktype_name": "EN10MB", "format": "pcap",
            "packets": npkts, "snaplen": snaplen or 65535,
            "note": "frames are truncated to snaplen in the file (orig_len is the full frame); "
                    "payloads are zeros; IPv4 from the 198.51.100.0/24 and 192.0.2.0/24 pools",
            "first_utc": iso(t0), "last_utc": iso(t0 + 300)}
    res = {**head, **res}
    with open(os.path.join(outdir, "large.truth.json"), "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--large", action="store_true", help="also write large.pcap (benchmarks)")
    ap.add_argument("--large-packets", type=int, default=1000000)
    ap.add_argument("--large-snaplen", type=int, default=128,
                    help="bytes of each large.pcap frame kept in the file (0 = all)")
    ap.add_argument("--only-large", action="store_true", help="write only large.pcap")
    a = ap.parse_args()
    os.makedirs(a.outdir, exist_ok=True)
    started = time.time()
    manifest = {"generator": "lab/flows/gen_pcaps.py", "orgs": ORGS, "hosts": HOSTS,
                "cnames": CNAMES, "resolvers": [RESOLVER4, RESOLVER6], "files": []}
    if not a.only_large:
        results = [emit(a.outdir, "mix", scenario_mix(1), LINKTYPE_ETHERNET, "pcap")]
        app_client = lambda addr: addr in ("192.0.2.77", "2001:db8:a:77::77") or \
            (":" in addr and not is_global6(addr))
        runs = [("app-run1", 11, LINKTYPE_LINUX_SLL, "pcap"),
                ("app-run2", 12, LINKTYPE_ETHERNET, "pcapng"),
                ("app-run3", 13, LINKTYPE_ETHERNET, "pcap")]
        for name, seed, lt, fmt in runs:
            results.append(emit(a.outdir, name, scenario_app(seed), lt, fmt, client_side=app_client))
        shares = [r["app"]["ipv6_share_bytes"] for r in results[1:]]
        manifest["app_runs"] = {"files": [r["file"] for r in results[1:]],
                                "ipv6_share_bytes": shares,
                                "ipv6_share_bytes_mean": round(sum(shares) / len(shares), 6)}
        for r in results:
            manifest["files"].append({k: r[k] for k in ("file", "format", "linktype", "linktype_name",
                                                         "packets")} | {"totals": r["totals"]})
    if a.large or a.only_large:
        r = large(a.outdir, a.large_packets, a.large_snaplen)
        manifest["files"].append({k: r[k] for k in ("file", "format", "linktype", "linktype_name",
                                                     "packets", "snaplen")} | {"totals": r["totals"]})
    with open(os.path.join(a.outdir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print(f"gen_pcaps.py: wrote {len(manifest['files'])} captures to {a.outdir} "
          f"in {time.time() - started:.1f} s")


if __name__ == "__main__":
    main()
