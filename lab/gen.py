#!/usr/bin/env python3
"""Generate the v6scope lab's runtime files from lab/scenarios.toml.

Usage: gen.py [--catalogue lab/scenarios.toml] [--out /tmp/v6lab] [--table]

Writes, under --out: zone files and knot configs, unbound configs, nginx
config + pages, postfix config, the lab CA and leaf certificates, the nftables
ruleset, a tc script, the address list, daemons.sh (start commands), an
address table (addresses.tsv), a machine-readable plan (scenarios.json) and
lab.env.  With --table it only prints the address table (no files written).

Standard library only (tomllib needs Python >= 3.11); openssl is called for
certificates.
"""
import argparse
import ipaddress
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tomllib

# ---------------------------------------------------------------- constants
NS_CLIENT, NS_WORLD = "v6lab-client", "v6lab-world"
ROOT = ("198.51.100.1", "2001:db8:1::1")        # a.root.test.
TLD = ("198.51.100.2", "2001:db8:1::2")         # a.nic.test.
RESOLVER = ("198.51.100.53", "2001:db8:53::53")
SHARED_NS = {                                    # shared good NS pair
    "ns1.lab-dns.test.": ("198.51.100.10", "2001:db8:10::1"),
    "ns2.lab-dns.test.": ("198.51.100.11", "2001:db8:11::1"),
}
DEFAULT_NS = list(SHARED_NS)
# The client beacon (serve --beacon-zone beacon.test): the server's addresses
# in the world, the large-object (mtu) address, and the v6ns zone's name
# server, which has an IPv6 address only.
BEACON = ("192.0.2.200", "2001:db8:fff5::80")
BEACON_MTU_V6 = "2001:db8:fff5::81"
BEACON_V6NS_NS = "2001:db8:fff5::53"
TTL = 60
SERIAL = 2024010101
ALLOWED = [ipaddress.ip_network(n) for n in
           ("2001:db8::/32", "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")]
BEHAVIOURS = ("web", "dns", "smtp")
WEB_KEYS = {"page", "status", "redirect", "cert", "ports", "https_redirect", "deny"}
PAGES = {"default", "alt", "gb18030", "huge", "slow", "big", "tree", "stub"}
# [scenario.tree]: the generated page tree served by `page = "tree"` (see README)
TREE_DEFAULTS = {"level2": 20, "level3": 10, "offsite": 0, "offsite_base": None, "assets": "",
                 "charset": "utf-8", "forms": False, "robots": "", "big_asset": 0, "video": ""}
TREE_CHARSETS = {"utf-8", "gbk"}
DNS_MODES = {"auth", "refused", "recursive"}
RULE_ACTIONS = {"drop", "reset", "drop-tcp53", "pmtu-blackhole", "delay", "rate", "flap"}
RELAY_OFFSET = 8000   # nginx port offset behind the delay relay
STATUSES = {"pass", "fail", "warn", "info", "not_applicable", "not_testable", "error"}


class CatalogueError(Exception):
    pass


def die(msg):
    raise CatalogueError(msg)


# ---------------------------------------------------------------- addressing
def alloc_v4(sid, k):
    """Scenario id 1..62 -> 203.0.113.(4*id + k); 63..93 -> 198.51.100.(128 + 4*(id-63) + k)."""
    if k > 3:
        die(f"scenario id {sid}: at most 4 servers with an allocated IPv4 address")
    if 1 <= sid <= 62:
        return f"203.0.113.{4 * sid + k}"
    if 63 <= sid <= 93:
        return f"198.51.100.{128 + 4 * (sid - 63) + k}"
    die(f"scenario id {sid} out of range 1..93")


def alloc_v6(sid, k):
    """Scenario id N, server index k -> 2001:db8:(0x100+N):k::1."""
    return str(ipaddress.IPv6Address(f"2001:db8:{0x100 + sid:x}:{k:x}::1"))


def check_doc(addr, where):
    ip = ipaddress.ip_address(addr)
    if not any(ip in n for n in ALLOWED):
        die(f"{where}: {addr} is not in a documentation prefix; the lab only binds those")
    return str(ip)


# ---------------------------------------------------------------- catalogue
def fqdn(name, domain):
    """Absolute name: '@' -> domain, 'x.' stays, 'x' -> x.domain."""
    if name == "@":
        return domain
    if name.endswith("."):
        return name.lower()
    return f"{name}.{domain}".lower()


def merged(server, beh, fam):
    """Effective behaviour `beh` of `server` on family fam ('v4'/'v6')."""
    base = server.get(beh)
    ov_key = f"{beh}_{fam}"
    if ov_key in server:
        ov = server[ov_key]
        if ov is False:
            return None
        if isinstance(ov, dict) and isinstance(base, dict):
            out = dict(base)
            out.update(ov)
            return out
        return ov
    if base is False:
        return None
    return base


def load(path):
    with open(path, "rb") as f:
        cat = tomllib.load(f)
    scen = cat.get("scenario", [])
    if not scen:
        die("no [[scenario]] entries")
    seen_id, seen_name, out = {}, {}, []
    for s in scen:
        for key in ("id", "name", "description", "expect"):
            if key not in s:
                die(f"scenario {s.get('name', '?')}: missing '{key}'")
        sid, name = s["id"], s["name"]
        if not re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", name):
            die(f"scenario {name}: name must be a lower-case DNS label")
        if sid in seen_id:
            die(f"scenario {name}: id {sid} already used by {seen_id[sid]}")
        if name in seen_name:
            die(f"scenario name {name} used twice")
        seen_id[sid], seen_name[name] = name, sid
        out.append(build(s))
    return out


def build(s):
    sid, name = s["id"], s["name"]
    domain = f"{name}.test."
    where = f"scenario {name}"
    unknown = set(s) - {"id", "name", "description", "delegate", "ns", "parent_ns", "records",
                        "server", "rule", "expect", "serial", "tree", "judge_speed", "samples",
                        "glue_v6", "cert_names"}
    if unknown:
        die(f"{where}: unknown keys {sorted(unknown)}")
    for r in s.get("rule", []):
        rule_keys = {"addr", "action", "ports", "delay_ms", "rate_kbit", "fail_in_10"}
        if set(r) - rule_keys:
            die(f"{where}: unknown rule keys {sorted(set(r) - rule_keys)}")
    # ---- servers and their addresses
    servers, addrs = [], {}
    for k, srv in enumerate(s.get("server", [])):
        sid_ = srv.get("id") or die(f"{where}: server without id")
        if sid_ in addrs:
            die(f"{where}: server id {sid_} twice")
        unknown = set(srv) - {"id", "v4", "v6"} - set(BEHAVIOURS) - {
            f"{b}_{f}" for b in BEHAVIOURS for f in ("v4", "v6")}
        if unknown:
            die(f"{where}: server {sid_}: unknown keys {sorted(unknown)}")
        a = {}
        for fam, alloc in (("v4", alloc_v4), ("v6", alloc_v6)):
            v = srv.get(fam, True)
            if v is True:
                a[fam] = alloc(sid, k)
            elif isinstance(v, str):
                a[fam] = check_doc(v, f"{where} server {sid_}")
            elif v is False:
                continue
            else:
                die(f"{where}: server {sid_}: {fam} must be bool or address")
            check_doc(a[fam], f"{where} server {sid_}")
        addrs[sid_] = a
        entry = {"id": sid_, "addr": a, "beh": {}}
        for fam in a:
            eff = {}
            for b in BEHAVIOURS:
                v = merged(srv, b, fam)
                if v is None or v is False:
                    continue
                if b == "web":
                    if v is True:
                        v = {}
                    if not isinstance(v, dict) or set(v) - WEB_KEYS:
                        die(f"{where}: server {sid_}: bad web behaviour {v!r}")
                    w = {"page": "default", "status": 200, "redirect": None, "cert": "default",
                         "ports": [80, 443], "https_redirect": False, "deny": []}
                    w.update(v)
                    if w["page"] not in PAGES:
                        die(f"{where}: unknown page {w['page']}")
                    if w["page"] == "tree" and "tree" not in s:
                        die(f"{where}: server {sid_}: page = \"tree\" needs a [scenario.tree] table")
                    if not isinstance(w["deny"], list) or not all(
                            isinstance(x, str) and re.fullmatch(r"/[A-Za-z0-9._/-]*", x) for x in w["deny"]):
                        die(f"{where}: server {sid_}: deny must be a list of URI prefixes like \"/l3/\"")
                    if w["cert"] not in ("default", "wrong", "expired"):
                        die(f"{where}: unknown cert {w['cert']}")
                    v = w
                elif b == "dns":
                    if v not in DNS_MODES:
                        die(f"{where}: server {sid_}: dns must be one of {sorted(DNS_MODES)}")
                elif b == "smtp":
                    if v is not True:
                        die(f"{where}: server {sid_}: smtp must be true/false")
                eff[b] = v
            entry["beh"][fam] = eff
        servers.append(entry)

    def subst(text):
        def rep(m):
            srv, fam = m.group(1), m.group(2)
            if srv not in addrs or fam not in addrs[srv]:
                die(f"{where}: {{{srv}.{fam}}} has no address")
            return addrs[srv][fam]
        return re.sub(r"\{([A-Za-z0-9_-]+)\.(v4|v6)\}", rep, text)

    # ---- records
    records = []
    for line in s.get("records", []):
        parts = subst(line).split(None, 2)
        if len(parts) != 3:
            die(f"{where}: record '{line}' must be 'owner TYPE rdata'")
        owner, rtype, rdata = parts
        records.append((fqdn(owner, domain), rtype.upper(), rdata))
    delegate = s.get("delegate", True)
    ns = [fqdn(n, domain) for n in s.get("ns", DEFAULT_NS)]
    parent_ns = [fqdn(n, domain) for n in s.get("parent_ns", s.get("ns", DEFAULT_NS))]
    if not delegate and ("ns" in s or "parent_ns" in s):
        die(f"{where}: ns/parent_ns need delegate = true")
    glue = []
    for n in sorted(set(parent_ns)):
        if n.endswith("." + domain) or n == domain:
            found = [(o, t, r) for (o, t, r) in records if o == n and t in ("A", "AAAA")]
            if not found:
                die(f"{where}: in-bailiwick NS {n} has no A/AAAA record for glue")
            # glue_v6 = false: the parent publishes only IPv4 glue (a delegation
            # that cannot be followed over IPv6-only transport).
            glue += [g for g in found if s.get("glue_v6", True) or g[1] != "AAAA"]
    # ---- rules
    rules = []
    for r in s.get("rule", []):
        m = re.fullmatch(r"([A-Za-z0-9_-]+)\.(v4|v6)", r.get("addr", ""))
        if not m or m.group(1) not in addrs or m.group(2) not in addrs[m.group(1)]:
            die(f"{where}: rule addr must name a server address like web.v6: {r!r}")
        if r.get("action") not in RULE_ACTIONS:
            die(f"{where}: rule action must be one of {sorted(RULE_ACTIONS)}")
        rr = dict(r)
        rr["address"] = addrs[m.group(1)][m.group(2)]
        rules.append(rr)
    # ---- page tree
    tree = None
    if "tree" in s:
        tr = s["tree"]
        if not isinstance(tr, dict) or set(tr) - set(TREE_DEFAULTS):
            die(f"{where}: tree keys must be among {sorted(TREE_DEFAULTS)}")
        tree = dict(TREE_DEFAULTS)
        tree.update(tr)
        for k in ("level2", "level3", "offsite", "big_asset"):
            if not isinstance(tree[k], int) or isinstance(tree[k], bool) or tree[k] < 0:
                die(f"{where}: tree.{k} must be an integer >= 0")
        if tree["level2"] > 20000 or tree["level2"] * tree["level3"] > 20000:
            die(f"{where}: tree too large (at most 20000 pages per level)")
        if tree["offsite"] > tree["level2"]:
            die(f"{where}: tree.offsite > tree.level2")
        if tree["offsite"] and not (isinstance(tree["offsite_base"], str)
                                    and re.fullmatch(r"(https?:)?//[a-z0-9.-]+", tree["offsite_base"])):
            die(f"{where}: tree.offsite needs offsite_base like \"http://old.{name}.test\"")
        if tree["video"] and not re.fullmatch(r"(https?:)?//[a-z0-9.-]+", tree["video"]):
            die(f"{where}: tree.video must be \"\" or a base like \"//video.example.test\"")
        if tree["assets"] and not re.fullmatch(r"(https?:)?//[a-z0-9.-]+", tree["assets"]):
            die(f"{where}: tree.assets must be \"\" or a base like \"https://img.example.test\"")
        if tree["charset"] not in TREE_CHARSETS:
            die(f"{where}: tree.charset must be one of {sorted(TREE_CHARSETS)}")
        if not isinstance(tree["forms"], bool):
            die(f"{where}: tree.forms must be true/false")
        if not isinstance(tree["robots"], str):
            die(f"{where}: tree.robots must be the text of a robots.txt")
    # ---- expectations
    exp = s["expect"]
    judged = [p for p in ("internetnl", "nist-usgv6", "cn-website", "cn-finance") if p in exp]
    if not judged:
        die(f"{where}: expect names no profile")
    for prof in judged:
        if exp.get(prof) not in ("pass", "warn", "fail"):
            die(f"{where}: expect.{prof} must be pass|warn|fail")
    for prof, checks in exp.get("checks", {}).items():
        for c, st in checks.items():
            if st not in STATUSES:
                die(f"{where}: expect.checks.{prof}.{c} = {st!r} is not a status")
    return {"id": sid, "name": name, "domain": domain, "description": s["description"],
            "delegate": delegate, "ns": ns, "parent_ns": parent_ns, "glue": glue,
            "records": records, "servers": servers, "rules": rules, "expect": exp, "tree": tree,
            "cert_names": list(s.get("cert_names", []))}


# ---------------------------------------------------------------- writers
def w(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, mode)


def rr(owner, rtype, rdata, ttl=TTL):
    return f"{owner:<40} {ttl} IN {rtype:<5} {rdata}\n"


def soa(zone, mname, serial=SERIAL):
    return rr(zone, "SOA", f"{mname} hostmaster.{zone if zone != '.' else 'lab.test.'} "
              f"{serial} 3600 600 86400 {TTL}")


def gen_zones(out, scen):
    zd = f"{out}/knot/zones"
    # root
    z = soa(".", "a.root.test.") + rr(".", "NS", "a.root.test.")
    z += rr("test.", "NS", "a.nic.test.")
    for host, (v4, v6) in (("a.nic.test.", TLD), ("a.root.test.", ROOT)):
        z += rr(host, "A", v4) + rr(host, "AAAA", v6)
    # As on the internet, the root servers' own name lives in
    # root-servers.net., served by the root server: v6scope's default
    # resolver-self-test canary (a.root-servers.net A + AAAA) works here.
    z += rr("root-servers.net.", "NS", "a.root-servers.net.")
    z += rr("a.root-servers.net.", "A", ROOT[0]) + rr("a.root-servers.net.", "AAAA", ROOT[1])
    w(f"{zd}/root.zone", z)
    z = soa("root-servers.net.", "a.root-servers.net.") + rr("root-servers.net.", "NS", "a.root-servers.net.")
    z += rr("a.root-servers.net.", "A", ROOT[0]) + rr("a.root-servers.net.", "AAAA", ROOT[1])
    w(f"{zd}/root-servers.net.zone", z)
    # test.
    z = soa("test.", "a.nic.test.") + rr("test.", "NS", "a.nic.test.")
    for host, (v4, v6) in (("a.nic.test.", TLD), ("a.root.test.", ROOT)):
        z += rr(host, "A", v4) + rr(host, "AAAA", v6)
    z += "; shared name servers\n"
    for n in SHARED_NS:
        z += rr("lab-dns.test.", "NS", n)
    for n, (v4, v6) in SHARED_NS.items():
        z += rr(n, "A", v4) + rr(n, "AAAA", v6)
    for s in scen:
        z += f"; scenario {s['name']} (id {s['id']})\n"
        if s["delegate"]:
            for n in s["parent_ns"]:
                z += rr(s["domain"], "NS", n)
            for o, t, d in s["glue"]:
                z += rr(o, t, d)
        else:
            z += f"$ORIGIN {s['domain']}\n"
            for o, t, d in s["records"]:
                z += rr(o, t, d)
            z += "$ORIGIN test.\n"
    z += "; the client beacon: beacon.test. on the shared name servers\n"
    for n in SHARED_NS:
        z += rr("beacon.test.", "NS", n)
    w(f"{zd}/test.zone", z)
    # beacon.test.: a wildcard per kind; v6ns delegated to an IPv6-only server
    z = soa("beacon.test.", DEFAULT_NS[0])
    for n in SHARED_NS:
        z += rr("beacon.test.", "NS", n)
    v4, v6 = BEACON
    z += rr("*.v4.beacon.test.", "A", v4)
    z += rr("*.v6.beacon.test.", "AAAA", v6)
    z += rr("*.ds.beacon.test.", "A", v4) + rr("*.ds.beacon.test.", "AAAA", v6)
    z += rr("*.mtu.beacon.test.", "AAAA", BEACON_MTU_V6)
    z += rr("v6ns.beacon.test.", "NS", "ns.v6ns.beacon.test.")
    z += rr("ns.v6ns.beacon.test.", "AAAA", BEACON_V6NS_NS)
    w(f"{zd}/beacon.test.zone", z)
    z = soa("v6ns.beacon.test.", "ns.v6ns.beacon.test.") + rr("v6ns.beacon.test.", "NS", "ns.v6ns.beacon.test.")
    z += rr("ns.v6ns.beacon.test.", "AAAA", BEACON_V6NS_NS)
    z += rr("*.v6ns.beacon.test.", "A", v4) + rr("*.v6ns.beacon.test.", "AAAA", v6)
    w(f"{zd}/v6ns.beacon.test.zone", z)
    # lab-dns.test.
    z = soa("lab-dns.test.", DEFAULT_NS[0])
    for n in SHARED_NS:
        z += rr("lab-dns.test.", "NS", n)
    for n, (v4, v6) in SHARED_NS.items():
        z += rr(n, "A", v4) + rr(n, "AAAA", v6)
    w(f"{zd}/lab-dns.test.zone", z)
    leaf = ["lab-dns.test.", "beacon.test."]
    for s in scen:
        if not s["delegate"]:
            continue
        d = s["domain"]
        z = f"$ORIGIN {d}\n" + soa(d, s["ns"][0], s.get("serial", SERIAL))
        for n in s["ns"]:
            z += rr(d, "NS", n)
        for o, t, data in s["records"]:
            z += rr(o, t, data)
        w(f"{zd}/{d}zone", z)
        leaf.append(d)
    return leaf


def knot_conf(out, inst, listen, zones):
    base = f"{out}/knot/{inst}"
    os.makedirs(f"{base}/run", exist_ok=True)
    os.makedirs(f"{base}/db", exist_ok=True)
    c = ["server:", f'    rundir: "{base}/run"', f'    pidfile: "{out}/run/knot-{inst}.pid"',
         "    udp-workers: 1", "    tcp-workers: 1", "    background-workers: 1",
         "    listen: [ " + ", ".join(f'"{a}@53"' for a in listen) + " ]",
         "log:", f"  - target: {out}/logs/knot-{inst}.log", "    any: info",
         "database:", f'    storage: "{base}/db"',
         "template:", "  - id: default", "    zonefile-sync: -1", "    zonefile-load: whole",
         "    journal-content: none", "    semantic-checks: off", "zone:"]
    for zn in zones:
        fname = "root.zone" if zn == "." else f"{zn}zone"
        c += [f"  - domain: {zn}", f'    file: "{out}/knot/zones/{fname}"']
    w(f"{base}/knot.conf", "\n".join(c) + "\n")
    return f"knotd -d -c {base}/knot.conf"


def unbound_conf(out, inst, ifaces, acl, recursive):
    c = ["server:", "    verbosity: 1", f'    directory: "{out}/unbound"', '    username: ""',
         '    chroot: ""', "    use-syslog: no", f'    logfile: "{out}/logs/unbound-{inst}.log"',
         f'    pidfile: "{out}/run/unbound-{inst}.pid"', "    port: 53", "    num-threads: 1",
         "    do-ip4: yes", "    do-ip6: yes", "    prefer-ip6: no", "    do-udp: yes", "    do-tcp: yes",
         "    so-reuseport: no", "    interface-automatic: no"]
    c += [f"    interface: {a}" for a in ifaces]
    c += [f"    access-control: {net} {act}" for net, act in acl]
    if recursive:
        c += [f'    root-hints: "{out}/unbound/root.hints"', '    module-config: "iterator"',
              '    local-zone: "test." nodefault', "    do-not-query-localhost: no",
              "    harden-glue: no", "    harden-dnssec-stripped: no", "    harden-referral-path: no",
              "    harden-below-nxdomain: no", "    harden-algo-downgrade: no", "    qname-minimisation: no",
              "    aggressive-nsec: no", "    cache-max-ttl: 60", "    cache-max-negative-ttl: 5",
              "    infra-host-ttl: 30", "    infra-keep-probing: yes", "    minimal-responses: no",
              "    val-permissive-mode: yes", "    prefetch: no"]
    c += ["remote-control:", "    control-enable: no"]
    path = f"{out}/unbound/{inst}.conf"
    w(path, "\n".join(c) + "\n")
    return f"unbound -c {path}"


LOREM = [
    "This page belongs to the v6scope test lab. It is served from a documentation prefix inside a "
    "network namespace and is never reachable from the internet.",
    "The lab builds a small internet: a root zone, a test. top-level domain, authoritative name "
    "servers, a recursive resolver, web servers and mail servers, each bound to its own addresses.",
    "Every scenario sets up one way in which a site can be ready or not ready for IPv6, so that the "
    "checker can be compared against a verdict written down in advance.",
    "Readers of this page over IPv4 and over IPv6 should see exactly the same text unless the "
    "scenario says otherwise.",
]
ALT = [
    "Scheduled maintenance notice. The service behind this IPv6 address is a different backend "
    "that was never synchronised with the production content.",
    "Error reference 0x5A17: stale deployment, cache generation 17, region fallback enabled.",
]
GB_TITLE = "政府网站"
GB_BODY = [
    "欢迎访问政府网站。本网站位于实验网络中，仅用于测试IPv6支持情况。",
    "本站提供政务公开、办事服务和互动交流等栏目，内容在IPv4和IPv6上保持一致。",
    "如需帮助，请联系网站管理员。感谢您的访问与支持。",
]


def page_html(name, desc, paras, title=None, charset="utf-8", extra=0):
    title = title or name
    body = "".join(f"<p>{p}</p>\n" for p in paras)
    body += f"<p>Scenario: {desc}</p>\n" if desc else ""
    i = 0
    while extra and len(body) < extra:
        body += f"<p>{i}: {LOREM[i % len(LOREM)]}</p>\n"
        i += 1
    return (f'<!DOCTYPE html>\n<html><head><meta charset="{charset}"><title>{title}</title></head>\n'
            f"<body><h1>{title}</h1>\n{body}</body></html>\n")


def gen_pages(out, s, page):
    d = f"{out}/www/{s['name']}/{page}"
    os.makedirs(d, exist_ok=True)
    f = f"{d}/index.html"
    if page == "default":
        w(f, page_html(s["name"], s["description"], LOREM))
    elif page == "alt":
        w(f, page_html("Maintenance", "", ALT))
    elif page == "stub":
        w(f, page_html("Under construction", "", ["This site is under construction. Please come back later."]))
    elif page == "slow":
        w(f, page_html(s["name"], s["description"], LOREM, extra=4096))
    elif page == "big":
        w(f, page_html(s["name"], s["description"], LOREM, extra=16384))
    elif page == "gb18030":
        html = page_html(GB_TITLE, "", GB_BODY, charset="gb18030")
        with open(f, "wb") as fh:
            fh.write(html.encode("gb18030"))
        os.chmod(f, 0o644)
    elif page == "tree":
        gen_tree(d, s)
    elif page == "huge":
        with open(f, "wb") as fh:
            fh.write(page_html(s["name"], s["description"], LOREM).encode())
            fh.write(b"<!-- padding follows -->\n")
        os.truncate(f, 1 << 30)   # sparse: no real 1 GiB write
        os.chmod(f, 0o644)
    return d


def png_image(size=16, rgb=b"\x20\x60\xc0"):
    """A small valid PNG (solid colour), standard library only."""
    import struct
    import zlib

    def chunk(typ, data):
        return (struct.pack(">I", len(data)) + typ + data
                + struct.pack(">I", zlib.crc32(typ + data) & 0xFFFFFFFF))
    raw = b"".join(b"\x00" + rgb * size for _ in range(size))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


TREE_TEXT = {
    "utf-8": {"home": "{name}", "l2": "{name} section {i}", "l3": "{name} article {i}-{j}",
              "up": "Home", "parent": "Back to section {i}", "l2link": "Section {i}",
              "l3link": "Article {i}-{j}", "paras": LOREM[:2]},
    "gbk": {"home": "{name}", "l2": "二级页面 {i}", "l3": "三级页面 {i}-{j}",
            "up": "返回首页", "parent": "返回二级页面 {i}", "l2link": "栏目 {i}",
            "l3link": "文章 {i}-{j}", "paras": GB_BODY},
}


def tree_links(tree, apex, i):
    """href of the homepage's link to level-2 page i (1-based)."""
    if i > tree["level2"] - tree["offsite"]:
        return f"{tree['offsite_base']}/l2/{i}.html"
    if not tree["forms"]:
        return f"/l2/{i}.html"
    # forms: the homepage has <base href="/l2/">; every form resolves to /l2/<i>.html on the apex
    return [f"{i}.html",                              # relative (resolved against <base href>)
            f"/l2/{i}.html",                          # absolute path
            f"http://{apex}/l2/{i}.html",             # absolute URL
            f"http://{apex}:80/l2/{i}.html",          # absolute URL, explicit default port
            f"//{apex}/l2/{i}.html",                  # protocol-relative
            f"../l2/{i}.html",                        # dot-dot (base /l2/ -> /l2/)
            f"./{i}.html",                            # dot, relative to <base href>
            f"HTTP://{apex.upper()}/l2/{i}.html",     # upper-case scheme and host
            f"/l2/{i}.html#part{i}",                  # with a fragment
            f"/l2/x/../{i}.html",                     # dot-dot inside the path
            ][(i - 1) % 10]


def gen_tree(d, s):
    """The generated site of [scenario.tree]: / -> /l2/<i>.html -> /l3/<i>-<j>.html, plus /static/."""
    tree, name = s["tree"], s["name"]
    apex = s["domain"].rstrip(".")
    if tree["robots"]:
        os.makedirs(d, exist_ok=True)
        with open(f"{d}/robots.txt", "w") as f:
            f.write(tree["robots"])
    cs = tree["charset"]
    tx = TREE_TEXT[cs]
    a = tree["assets"]
    esc = lambda x: x.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")

    def page(path, title, links, paras=(), base=None):
        head = f'<meta charset="{cs}"><title>{esc(title)}</title>\n'
        if base:
            head += f'<base href="{base}">\n'
        head += (f'<link rel="stylesheet" href="{a}/static/site.css">\n'
                 f'<script src="{a}/static/site.js"></script>\n')
        body = f'<h1>{esc(title)}</h1>\n<img src="{a}/static/logo.png" alt="logo" width="16" height="16">\n'
        if tree["big_asset"]:
            body += f'<img src="{a}/static/photo.png" alt="photo">\n'
        if tree["video"] and path == "/index.html":
            body += f'<video src="{tree["video"]}/media/intro.mp4" controls></video>\n'
        body += "".join(f"<p>{esc(p)}</p>\n" for p in paras)
        body += "<ul>\n" + "".join(f'<li><a href="{esc(h)}">{esc(t)}</a></li>\n' for h, t in links) + "</ul>\n"
        html = f"<!DOCTYPE html>\n<html><head>{head}</head>\n<body>\n{body}</body></html>\n"
        f = f"{d}{path}"
        with open(f, "wb") as fh:
            fh.write(html.encode(cs, errors="xmlcharrefreplace"))
        os.chmod(f, 0o644)

    for sub in ("static", "l2", "l3"):
        os.makedirs(f"{d}/{sub}", exist_ok=True)
    w(f"{d}/static/site.css", "body { font-family: sans-serif; margin: 2em; }\nh1 { color: #246; }\n")
    w(f"{d}/static/site.js", "document.documentElement.className = 'js';\n")
    with open(f"{d}/static/logo.png", "wb") as fh:
        fh.write(png_image())
    os.chmod(f"{d}/static/logo.png", 0o644)
    if tree["big_asset"]:
        # Incompressible bytes: far larger than one packet on the wire.
        w(f"{d}/static/photo.png", "")
        with open(f"{d}/static/photo.png", "wb") as fh:
            fh.write(png_image() + random.Random(7).randbytes(tree["big_asset"]))
    home = f"//{apex}/"
    n2, n3 = tree["level2"], tree["level3"]
    links = [(tree_links(tree, apex, i), tx["l2link"].format(i=i)) for i in range(1, n2 + 1)]
    if tree["forms"]:
        links += [("#top", "fragment only"), ("javascript:void(0)", "javascript"),
                  (f"mailto:webmaster@{apex}", "mailto"), ("tel:+10000000000", "tel"),
                  ("/", "this page (absolute path)"), (home, "this page (protocol-relative)"),
                  ("/l2/1.html#again", "level-2 page 1 again"),
                  ("http://site-good.test/", "another site (external)")]
    if tree["video"]:
        # The homepage's video, from its own host: the bulk of the page's bytes.
        os.makedirs(f"{d}/media", exist_ok=True)
        with open(f"{d}/media/intro.mp4", "wb") as fh:
            fh.write(random.Random(11).randbytes(200_000))
        os.chmod(f"{d}/media/intro.mp4", 0o644)
    page("/index.html", tx["home"].format(name=name), links,
         [s["description"]] + list(tx["paras"]), base="/l2/" if tree["forms"] else None)
    l3 = (lambda i, j: f"../l3/{i}-{j}.html") if tree["forms"] else (lambda i, j: f"/l3/{i}-{j}.html")
    for i in range(1, n2 + 1):
        page(f"/l2/{i}.html", tx["l2"].format(name=name, i=i),
             [(home, tx["up"])] + [(l3(i, j), tx["l3link"].format(i=i, j=j)) for j in range(1, n3 + 1)],
             tx["paras"][:1])
        for j in range(1, n3 + 1):
            page(f"/l3/{i}-{j}.html", tx["l3"].format(name=name, i=i, j=j),
                 [(f"/l2/{i}.html", tx["parent"].format(i=i)), (home, tx["up"])], tx["paras"][-1:])


# ---------------------------------------------------------------- TLS
def sh(*cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        die(f"command failed: {' '.join(cmd)}\n{r.stderr}")


def gen_certs(out, scen):
    ca, cd = f"{out}/ca", f"{out}/certs"
    os.makedirs(ca, exist_ok=True)
    os.makedirs(cd, exist_ok=True)
    sh("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{ca}/ca.key")
    sh("openssl", "req", "-x509", "-new", "-key", f"{ca}/ca.key", "-sha256", "-days", "3650",
       "-subj", "/CN=v6lab test CA", "-addext", "basicConstraints=critical,CA:TRUE",
       "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", f"{ca}/ca.pem")
    sh("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{cd}/leaf.key")
    # openssl ca (for the backdated, expired certificates)
    for f, t in (("index.txt", ""), ("serial", "1000\n")):
        w(f"{ca}/{f}", t)
    w(f"{ca}/ca.cnf", f"""[ca]
default_ca = lab
[lab]
dir = {ca}
database = {ca}/index.txt
serial = {ca}/serial
new_certs_dir = {ca}/issued
certificate = {ca}/ca.pem
private_key = {ca}/ca.key
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = copy
[anything]
commonName = supplied
""")
    os.makedirs(f"{ca}/issued", exist_ok=True)

    def leaf(stem, names, expired=False):
        san = ",".join(f"DNS:{n}" for n in names)
        csr = f"{cd}/{stem}.csr"
        sh("openssl", "req", "-new", "-key", f"{cd}/leaf.key", "-subj", f"/CN={names[0]}",
           "-addext", f"subjectAltName={san}", "-out", csr)
        if expired:
            sh("openssl", "ca", "-batch", "-config", f"{ca}/ca.cnf", "-in", csr,
               "-startdate", "20200101000000Z", "-enddate", "20200401000000Z",
               "-notext", "-out", f"{cd}/{stem}.pem")
        else:
            ext = f"{cd}/{stem}.ext"
            w(ext, f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n"
                   "extendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n")
            sh("openssl", "x509", "-req", "-in", csr, "-CA", f"{ca}/ca.pem", "-CAkey", f"{ca}/ca.key",
               "-CAcreateserial", "-days", "825", "-sha256", "-extfile", ext, "-out", f"{cd}/{stem}.pem")
        os.remove(csr)

    leaf("wrong-name", ["wrong-name.test", "www.wrong-name.test"])
    leaf("mail", ["mx.v6lab.test"] + [f"*.{s['name']}.test" for s in scen if any(
        b.get("smtp") for srv in s["servers"] for b in srv["beh"].values())])
    for s in scen:
        n = s["name"]
        # cert_names: sites that CNAME to this host (a CDN's customers).
        names = [f"{n}.test", f"www.{n}.test", f"*.{n}.test"] + s["cert_names"]
        leaf(n, names)
        if any(b.get("web", {}).get("cert") == "expired"
               for srv in s["servers"] for b in srv["beh"].values()):
            leaf(f"{n}-expired", names, expired=True)
    for f in os.listdir(cd):
        os.chmod(f"{cd}/{f}", 0o644)


# ---------------------------------------------------------------- nginx
def nginx_server(out, s, addr, port, web, offset=0):
    listen = f"[{addr}]" if ":" in addr else addr
    tls = port == 443
    cert = {"default": s["name"], "wrong": "wrong-name", "expired": f"{s['name']}-expired"}[web["cert"]]
    root = f"{out}/www/{s['name']}/{web['page']}"
    L = ["server {", f"    listen {listen}:{port + offset}{' ssl' if tls else ''};", "    server_name _;",
         f"    root {root};", "    index index.html;"]
    if tls:
        L += [f"    ssl_certificate {out}/certs/{cert}.pem;", f"    ssl_certificate_key {out}/certs/leaf.key;"]
    if web["page"] == "gb18030":
        L += ["    types { }", '    default_type "text/html; charset=gb18030";']
    if web["page"] == "slow":
        L += ["    limit_rate 8;", "    limit_rate_after 0;", "    send_timeout 600s;"]
    if web["page"] == "stub":
        L += ["    location / {", "        try_files /index.html =404;", "    }", "}"]
        return "\n".join(L) + "\n"
    if web["page"] == "tree":
        L += ["    types { text/html html; text/css css; image/png png; application/javascript js; video/mp4 mp4; }",
              "    default_type text/html;", f"    charset {s['tree']['charset']};"]
    for prefix in web["deny"]:
        L += [f"    location ^~ {prefix} {{", "        return 404;", "    }"]
    L.append("    location / {")
    if not tls and web["https_redirect"]:
        L.append("        return 301 https://$host$request_uri;")
    elif web["redirect"] == "self":
        L.append("        return 301 $scheme://$host$request_uri;")
    elif web["redirect"]:
        L.append(f"        return 301 {web['redirect']};")
    elif web["status"] != 200:
        L.append(f'        return {web["status"]} "<!DOCTYPE html><html><head><title>{web["status"]}'
                 f'</title></head><body><p>Service unavailable ({s["name"]})</p></body></html>\\n";')
    else:
        L.append("        try_files $uri $uri/ =404;")
    L += ["    }", "}"]
    return "\n".join(L) + "\n"


def gen_nginx(out, blocks):
    os.makedirs(f"{out}/nginx/tmp", exist_ok=True)
    conf = f"""user nobody nogroup;
worker_processes 1;
pid {out}/run/nginx.pid;
error_log {out}/logs/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {out}/nginx/tmp/body;
    proxy_temp_path {out}/nginx/tmp/proxy;
    fastcgi_temp_path {out}/nginx/tmp/fastcgi;
    uwsgi_temp_path {out}/nginx/tmp/uwsgi;
    scgi_temp_path {out}/nginx/tmp/scgi;
    types {{ }}
    default_type text/html;
    sendfile on;
    keepalive_timeout 10s;
    server_tokens off;
    ssl_protocols TLSv1.2 TLSv1.3;
    include {out}/nginx/servers.conf;
}}
"""
    w(f"{out}/nginx/nginx.conf", conf)
    w(f"{out}/nginx/servers.conf", "".join(blocks))
    return f"nginx -c {out}/nginx/nginx.conf"


# ---------------------------------------------------------------- postfix
def gen_postfix(out, addrs):
    etc, spool = f"{out}/postfix/etc", f"{out}/postfix/spool"
    os.makedirs(spool, exist_ok=True)
    os.makedirs(f"{out}/postfix/data", exist_ok=True)
    shutil.chown(f"{out}/postfix/data", "postfix", "postfix")
    main = f"""# v6lab postfix: answers SMTP, never relays or delivers anything
compatibility_level = 3.6
queue_directory = {spool}
data_directory = {out}/postfix/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.v6lab.test
mydomain = v6lab.test
myorigin = $myhostname
inet_interfaces = {", ".join(addrs)}
inet_protocols = all
mydestination =
mynetworks =
relay_domains =
local_recipient_maps =
alias_maps =
alias_database =
local_transport = error:5.1.1 lab server: no local delivery
default_transport = error:5.3.0 lab server: no delivery
relay_transport = error:5.3.0 lab server: no relay
smtpd_relay_restrictions = reject
smtpd_recipient_restrictions = reject
smtpd_banner = $myhostname ESMTP v6lab
smtpd_tls_security_level = may
smtpd_tls_cert_file = {out}/certs/mail.pem
smtpd_tls_key_file = {out}/certs/leaf.key
smtpd_tls_loglevel = 0
biff = no
maillog_file_prefixes = {out}
maillog_file = {out}/logs/postfix.log
"""
    master = """smtp      inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""
    w(f"{etc}/main.cf", main)
    w(f"{etc}/master.cf", master)
    return f"postfix -c {etc} start"


# ---------------------------------------------------------------- main
def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--catalogue", default=f"{here}/scenarios.toml")
    ap.add_argument("--out", default="/tmp/v6lab")
    ap.add_argument("--table", action="store_true", help="print the address table only")
    a = ap.parse_args()
    try:
        scen = load(a.catalogue)
    except CatalogueError as e:
        print(f"gen.py: {e}", file=sys.stderr)
        return 2
    table = ["scenario\tid\tserver\tfamily\taddress\tbehaviour\trules"]
    for s in scen:
        for srv in s["servers"]:
            for fam, addr in srv["addr"].items():
                beh = srv["beh"].get(fam, {})
                desc = []
                for b, v in beh.items():
                    if b == "web":
                        v = ",".join(f"{k}={x}" for k, x in v.items()
                                     if x not in (None, False) and not (k, x) in (
                                         ("page", "default"), ("status", 200), ("cert", "default"),
                                         ("ports", [80, 443]), ("deny", [])))
                        desc.append(f"web({v})" if v else "web")
                    elif b == "dns":
                        desc.append(f"dns:{v}")
                    else:
                        desc.append("smtp")
                rl = [f"{r['action']}" + (f":{r['delay_ms']}ms" if r["action"] == "delay" else "")
                      + (f":ports={r['ports']}" if r.get("ports") else "")
                      for r in s["rules"] if r["address"] == addr]
                table.append(f"{s['name']}\t{s['id']}\t{srv['id']}\t{fam}\t{addr}\t"
                             f"{' '.join(desc) or '-'}\t{' '.join(rl) or '-'}")
    if a.table:
        print("\n".join(table))
        return 0
    try:
        return generate(a.out, scen, table)
    except CatalogueError as e:
        print(f"gen.py: {e}", file=sys.stderr)
        return 2


def generate(out, scen, table):
    for d in ("run", "logs", "www"):
        os.makedirs(f"{out}/{d}", exist_ok=True)
    os.chmod(out, 0o755)
    infra = [ROOT, TLD, RESOLVER, BEACON] + list(SHARED_NS.values())
    all_addrs = [x for pair in infra for x in pair] + [BEACON_MTU_V6, BEACON_V6NS_NS]
    auth, refused, recursive, smtp, blocks = [], [], [], [], []
    delayed = {r["address"]: int(r.get("delay_ms", 200)) for s in scen for r in s["rules"]
               if r["action"] == "delay"}
    relay = []
    for _, (v4, v6) in SHARED_NS.items():
        auth += [v4, v6]
    gen_certs(out, scen)
    for s in scen:
        pages = set()
        for srv in s["servers"]:
            for fam, addr in srv["addr"].items():
                all_addrs.append(addr)
                beh = srv["beh"].get(fam, {})
                mode = beh.get("dns")
                {"auth": auth, "refused": refused, "recursive": recursive}.get(mode, []).append(addr)
                if beh.get("smtp"):
                    smtp.append(addr)
                web = beh.get("web")
                if web:
                    pages.add(web["page"])
                    off = RELAY_OFFSET if addr in delayed else 0
                    for port in web["ports"]:
                        blocks.append(nginx_server(out, s, addr, port, web, off))
                        if off:
                            relay.append({"listen": [addr, port], "target": [addr, port + off],
                                          "delay_ms": delayed[addr], "scenario": s["name"]})
        for p in pages:
            gen_pages(out, s, p)
    dup = {x for x in all_addrs if all_addrs.count(x) > 1}
    if dup:
        die(f"address used twice: {sorted(dup)}")
    leaf_zones = gen_zones(out, scen)
    daemons = [
        knot_conf(out, "root", ROOT, [".", "root-servers.net."]),
        knot_conf(out, "tld", TLD, ["test."]),
        knot_conf(out, "leaf", auth, leaf_zones),
        # Reachable over IPv6 only: a resolver without IPv6 cannot resolve v6ns.beacon.test.
        knot_conf(out, "v6ns", (BEACON_V6NS_NS,), ["v6ns.beacon.test."]),
    ]
    hints = (rr(".", "NS", "a.root.test.", 3600000) + rr("a.root.test.", "A", ROOT[0], 3600000)
             + rr("a.root.test.", "AAAA", ROOT[1], 3600000))
    w(f"{out}/unbound/root.hints", hints)
    lab_acl = [(str(n), "allow") for n in ALLOWED] + [("127.0.0.0/8", "allow"), ("::1/128", "allow")]
    daemons.append(unbound_conf(out, "resolver", RESOLVER, lab_acl, True))
    if refused:
        daemons.append(unbound_conf(out, "refused", refused,
                                    [("0.0.0.0/0", "refuse"), ("::/0", "refuse")], False))
    if recursive:
        daemons.append(unbound_conf(out, "recursive", recursive,
                                    [(str(n), "allow_setrd") for n in ALLOWED], True))
    if blocks:
        daemons.append(gen_nginx(out, blocks))
    if smtp:
        daemons.append(gen_postfix(out, smtp))
    if relay:
        w(f"{out}/relay.json", json.dumps(relay, indent=1) + "\n")
        here = os.path.dirname(os.path.abspath(__file__))
        daemons.append(f"{sys.executable} {here}/relay.py {out}/relay.json {out}/run/relay.pid")
    # nftables + tc
    nin, nout, rates = [], [], []
    for s in scen:
        for r in s["rules"]:
            a = r["address"]
            fam = "ip6" if ":" in a else "ip"
            ports = r.get("ports")
            pm = f" tcp dport {{ {', '.join(str(p) for p in ports)} }}" if ports else ""
            tag = f' comment "{s["name"]}"'
            if r["action"] == "drop":
                nin.append(f"{fam} daddr {a}{pm or ''} drop{tag}")
            elif r["action"] == "reset":
                nin.append(f"{fam} daddr {a}{pm or ' meta l4proto tcp'} reject with tcp reset{tag}")
            elif r["action"] == "drop-tcp53":
                nin.append(f"{fam} daddr {a} tcp dport 53 drop{tag}")
            elif r["action"] == "flap":
                # A deterministic share of new connections refused: of every 10
                # SYNs (counted by nftables), the first fail_in_10 get a reset.
                n = int(r.get("fail_in_10", 3))
                nin.append(f"{fam} daddr {a}{pm or ' tcp dport { 80, 443 }'} tcp flags & (syn | ack) == syn "
                           f"numgen inc mod 10 < {n} reject with tcp reset{tag}")
            elif r["action"] == "pmtu-blackhole":
                nout.append(f"{fam} saddr {a} meta length > 1280 drop{tag}")
            elif r["action"] == "delay":
                if a not in [x["listen"][0] for x in relay]:
                    die(f"scenario {s['name']}: delay rules need a web server on {a}")
            elif r["action"] == "rate":
                rates.append((a, int(r.get("rate_kbit", 8)), s["name"]))
    nft = ["table inet v6lab {",
           "  chain input {", "    type filter hook input priority 0; policy accept;"]
    nft += [f"    {x}" for x in nin] + ["  }", "  chain output {",
                                         "    type filter hook output priority 0; policy accept;"]
    nft += [f"    {x}" for x in nout] + ["  }", "}"]
    w(f"{out}/nft.conf", "\n".join(nft) + "\n")
    # tc: this kernel has htb and u32 but no netem, so tc only does rate limits
    # (egress from world to client); delays are done by relay.py.
    tc = ["#!/bin/sh", "set -e"]
    if rates:
        tc.append("tc qdisc add dev v6lab-w root handle 1: htb default 1")
        tc.append("tc class add dev v6lab-w parent 1: classid 1:1 htb rate 10gbit quantum 60000")
        for i, (a, kbit, name) in enumerate(rates):
            cid = 10 + i
            m, proto, pl = ("ip6 src", "ipv6", "/128") if ":" in a else ("ip src", "ip", "/32")
            tc.append(f"# {name}")
            tc.append(f"tc class add dev v6lab-w parent 1: classid 1:{cid} htb rate {kbit}kbit "
                      f"ceil {kbit}kbit burst 1600 cburst 1600 quantum 1514")
            tc.append(f"tc filter add dev v6lab-w parent 1: protocol {proto} prio 1 u32 "
                      f"match {m} {a}{pl} flowid 1:{cid}")
    w(f"{out}/tc.sh", "\n".join(tc) + "\n", 0o755)
    # addresses on world lo
    al = []
    for x in all_addrs:
        check_doc(x, "address list")
        al.append(f"address add {x}/{'128' if ':' in x else '32'} dev lo" + (" nodad" if ":" in x else ""))
    w(f"{out}/addrs.batch", "\n".join(al) + "\n")
    w(f"{out}/daemons.sh", "#!/bin/sh\nset -e\n" + "".join(
        f"echo 'starting: {d.split()[0]}'\n{d}\n" for d in daemons), 0o755)
    w(f"{out}/addresses.tsv", "\n".join(table) + "\n")
    plan = [{**{k: v for k, v in s.items() if k not in ("glue",)},
             "records": [" ".join(r) for r in s["records"]]} for s in scen]
    w(f"{out}/scenarios.json", json.dumps(plan, indent=1, ensure_ascii=False) + "\n")
    env = {
        "V6LAB_CLIENT_NS": NS_CLIENT, "V6LAB_WORLD_NS": NS_WORLD,
        "V6LAB_RESOLVER_V4": RESOLVER[0], "V6LAB_RESOLVER_V6": RESOLVER[1],
        "V6LAB_CA_FILE": f"{out}/ca/ca.pem",
        "V6LAB_ROOT_V4": ROOT[0], "V6LAB_ROOT_V6": ROOT[1],
        "V6LAB_TLD_V4": TLD[0], "V6LAB_TLD_V6": TLD[1],
        "V6LAB_ALLOW_PREFIX": "2001:db8::/32",
        "V6LAB_SCENARIOS": os.path.abspath(os.path.join(os.path.dirname(__file__), "scenarios.toml")),
        "V6LAB_ADDRESSES": f"{out}/addresses.tsv",
        "V6LAB_PLAN": f"{out}/scenarios.json",
        "V6LAB_DIR": out,
        "V6LAB_BEACON_ZONE": "beacon.test",
        "V6LAB_BEACON_V4": BEACON[0], "V6LAB_BEACON_V6": BEACON[1], "V6LAB_BEACON_MTU_V6": BEACON_MTU_V6,
    }
    w(f"{out}/lab.env.new", "".join(f"{k}={v}\n" for k, v in env.items()))
    print(f"gen.py: {len(scen)} scenarios, {len(all_addrs)} addresses, {len(blocks)} nginx servers, "
          f"{len(smtp)} smtp listeners, {len(nin) + len(nout)} nft rules, {len(rates)} tc rates, "
          f"{len(relay)} delay relays")
    return 0


if __name__ == "__main__":
    sys.exit(main())
