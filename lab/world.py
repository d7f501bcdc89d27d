#!/usr/bin/env python3
"""Generate the benchmark world's runtime files (used by lab/world; stdlib only).

Usage: world.py --count N --out /tmp/v6lab/world [--seed S] [--v4only PCT] [--broken PCT]
                [--mx PCT] [--mix lab|internet] [--crawl-site [--crawl-pages N] [--crawl-level2 N]]

N domains d1.bench.test .. dN.bench.test, each its own zone (apex SOA/NS), delegated
from bench.test. (own knotd, address nic.bench.test) to one of 8 dual-stack NS pairs
ns<p>a/ns<p>b.bench.test. (one shared knotd serving every domain zone).  Web for
every domain is on a pool of 64 IPv4 + 64 IPv6 hosting addresses (one nginx, catch-all,
ports 80 and 443, certificate for *.bench.test from the lab CA); "broken" domains get
an AAAA on one of 8 blackholed IPv6 addresses; MX domains point at the shared dual-stack
mx.bench.test. (a second postfix).  No www records (a *.bench.test certificate cannot
cover www.dN.bench.test).

--crawl-site adds crawl.bench.test (for bench/crawl): its own zone (NS ns1a/ns1b), one
dual-stack address pair, a second nginx (2 workers, 80 and 443, the *.bench.test
certificate) serving a generated static site of --crawl-pages pages (default 1000) over
three levels: / links to --crawl-level2 (30) level-2 pages /l2/<i>.html, which share
the remaining pages as level-3 pages /l3/<i>-<j>.html; every page is a few KB of HTML
with internal links (home, parent, neighbours: no new URLs past level 3) and loads
sub-resources from /static/ (2 stylesheets, 2 scripts, 2 PNG images).

Addresses (documentation space the scenario catalogue never allocates: scenarios use
203.0.113.4-251, 198.51.100.128-251 and 2001:db8:101-15d::/48):
  nic.bench.test.        198.51.100.14    2001:db8:b0::ff
  mx.bench.test.         198.51.100.15    2001:db8:b3::25
  ns<p>a / ns<p>b        198.51.100.16-31 2001:db8:b0::1-10
  hosting pool           198.51.100.64-127 2001:db8:b1::1-40
  broken IPv6 pool       -                2001:db8:b2::1-8 (nftables drop)
  crawl.bench.test.      198.51.100.40    2001:db8:b4::1 (only with --crawl-site)
  nsdead6a / nsdead6b    198.51.100.32-33 2001:db8:b2::101-102 (IPv6 blackholed; --mix internet)
  mx-rst.bench.test.     198.51.100.41    2001:db8:b6::25 (no SMTP: RST on 25)
Writes under --out: zones/, knot-{parent,leaf}.conf, nginx/, postfix/, www/, nft.conf,
addrs.batch, delegation.txt (records for the test. zone), domains.txt, domains.tsv,
world.json; with --crawl-site also crawl/ (www/, nginx.conf).
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys

LAB = "/tmp/v6lab"
TTL = 3600           # the lab resolver caps TTLs at 60 s anyway (cache-max-ttl)
SERIAL = 2024010101
PAIRS = 8
POOL = 64
BROKEN = 8
NIC = ("198.51.100.14", "2001:db8:b0::ff")
MX = ("198.51.100.15", "2001:db8:b3::25")
CRAWL = ("198.51.100.40", "2001:db8:b4::1")
CRAWL_NAME = "crawl.bench.test"
# --mix internet: a name-server pair whose IPv6 addresses are in the blackholed pool
# (IPv4 served by the shared leaf knotd), and an MX host with nothing on port 25, so
# both families answer a SYN there with RST.
DEAD_NS = [("nsdead6a.bench.test.", "198.51.100.32", "2001:db8:b2::101"),
           ("nsdead6b.bench.test.", "198.51.100.33", "2001:db8:b2::102")]
MX_RST = ("198.51.100.41", "2001:db8:b6::25")
KINDS = ["dual", "v4only", "broken-v6", "aaaa-1of3-dead", "ns-v6-dead", "mx-rst"]


def ns_hosts():
    """[(name, v4, v6)] for ns1a, ns1b, ..., ns8b."""
    out = []
    for p in range(PAIRS):
        for j, s in enumerate("ab"):
            i = 2 * p + j
            out.append((f"ns{p + 1}{s}.bench.test.", f"198.51.100.{16 + i}", f"2001:db8:b0::{i + 1:x}"))
    return out


def hosting(i):
    return f"198.51.100.{64 + i}", f"2001:db8:b1::{i + 1:x}"


def broken_v6(i):
    return f"2001:db8:b2::{i + 1:x}"


def rr(owner, rtype, rdata):
    return f"{owner} {TTL} IN {rtype} {rdata}\n"


def w(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, mode)


def sh(*cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"world.py: command failed: {' '.join(cmd)}\n{r.stderr}")


# ---------------------------------------------------------------- crawl site (--crawl-site)
WORDS = ("network address prefix router route packet service server client resolver zone record "
         "deployment government portal citizen public notice policy report annual plan progress "
         "department province city county bureau office regulation guidance standard evaluation "
         "website access mobile broadband operator backbone transition dual stack native support "
         "monitoring measurement statistics quality security certificate content page section "
         "article archive download contact feedback services information open data").split()


def png_image(w_px, h_px, rgb):
    """A valid PNG of one colour, standard library only."""
    import struct
    import zlib

    def chunk(typ, data):
        return struct.pack(">I", len(data)) + typ + data + struct.pack(">I", zlib.crc32(typ + data) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + rgb * w_px for _ in range(h_px))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w_px, h_px, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def crawl_site(out, pages, level2, key, cert):
    """Writes the crawl site under out/crawl (www/ and nginx.conf); returns its facts."""
    base = f"{out}/crawl"
    www = f"{base}/www"
    level3 = pages - 1 - level2
    if level2 < 1 or level3 < level2:
        sys.exit("world.py: --crawl-pages must be at least 1 + 2 x --crawl-level2")
    # level-2 page i gets per[i] level-3 pages (the first ones one more when it does not divide)
    per = [level3 // level2 + (1 if i < level3 % level2 else 0) for i in range(level2)]
    rnd = random.Random(2017)
    for sub in ("static", "l2", "l3"):
        os.makedirs(f"{www}/{sub}", exist_ok=True)
    static = {
        "site.css": "body { font-family: sans-serif; margin: 0 auto; max-width: 60em; }\n"
                    "h1 { color: #246; }\nnav a { margin-right: 1em; }\n.footer { color: #666; }\n" * 8,
        "print.css": "@media print { nav, .footer { display: none; } }\n",
        "site.js": "document.documentElement.className = 'js';\n" + "".join(
            f"function f{i}(x) {{ return x * {i} + 1; }}\n" for i in range(60)),
        "nav.js": "window.addEventListener('load', function () { document.body.dataset.ready = '1'; });\n",
    }
    for name, text in static.items():
        w(f"{www}/static/{name}", text)
    for name, (wd, ht, rgb) in {"logo.png": (32, 32, b"\x20\x60\xc0"),
                                "banner.png": (320, 60, b"\xc0\x30\x30")}.items():
        with open(f"{www}/static/{name}", "wb") as f:
            f.write(png_image(wd, ht, rgb))
        os.chmod(f"{www}/static/{name}", 0o644)

    def text(n_words):
        words = [rnd.choice(WORDS) for _ in range(n_words)]
        return " ".join(words).capitalize() + "."

    def page(path, title, links, paras):
        nav = " ".join(f'<a href="/l2/{i}.html">Section {i}</a>' for i in range(1, min(level2, 6) + 1))
        html = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{title}</title>\n"
                '<link rel="stylesheet" href="/static/site.css">\n'
                '<link rel="stylesheet" href="/static/print.css" media="print">\n'
                '<script src="/static/site.js"></script>\n</head>\n<body>\n'
                f'<nav><a href="/"><img src="/static/logo.png" alt="home" width="32" height="32"></a> {nav}</nav>\n'
                f"<h1>{title}</h1>\n"
                + "".join(f"<p>{p}</p>\n" for p in paras)
                + "<ul>\n" + "".join(f'<li><a href="{h}">{t}</a></li>\n' for h, t in links) + "</ul>\n"
                '<p class="footer">crawl.bench.test, a synthetic site of the v6scope lab.</p>\n'
                '<script src="/static/nav.js"></script>\n</body></html>\n')
        w(f"{www}{path}", html)

    page("/index.html", "crawl.bench.test",
         [(f"/l2/{i}.html", f"Section {i}: {text(4)}") for i in range(1, level2 + 1)],
         ['<img src="/static/banner.png" alt="banner" width="320" height="60">'] + [text(60) for _ in range(4)])
    for i in range(1, level2 + 1):
        nb = [(f"/l2/{k}.html", f"Section {k}") for k in (i - 1, i + 1) if 1 <= k <= level2]
        page(f"/l2/{i}.html", f"Section {i}",
             [("/", "Home")] + nb + [(f"/l3/{i}-{j}.html", f"Article {i}-{j}: {text(5)}")
                                     for j in range(1, per[i - 1] + 1)],
             [text(50) for _ in range(2)])
        for j in range(1, per[i - 1] + 1):
            sib = [(f"/l3/{i}-{k}.html", f"Article {i}-{k}") for k in (j - 1, j + 1) if 1 <= k <= per[i - 1]]
            page(f"/l3/{i}-{j}.html", f"Article {i}-{j}",
                 [("/", "Home"), (f"/l2/{i}.html", f"Back to section {i}")] + sib,
                 [text(70) for _ in range(6)])

    def listen(addr, port, tls):
        h = f"[{addr}]" if ":" in addr else addr
        return f"        listen {h}:{port}{' ssl' if tls else ''};\n"
    srv = ""
    for port, tls in ((80, False), (443, True)):
        srv += "    server {\n" + "".join(listen(x, port, tls) for x in CRAWL)
        srv += f"        server_name {CRAWL_NAME};\n        root {www};\n        index index.html;\n"
        srv += ("        types { text/html html; text/css css; application/javascript js; image/png png; }\n"
                "        default_type text/html;\n        charset utf-8;\n")
        if tls:
            srv += f"        ssl_certificate {cert};\n        ssl_certificate_key {key};\n"
        srv += "        location / { try_files $uri $uri/ =404; }\n    }\n"
    os.makedirs(f"{base}/tmp", exist_ok=True)
    w(f"{base}/nginx.conf", f"""user nobody nogroup;
worker_processes 2;
pid {LAB}/run/nginx-bench-crawl.pid;
error_log {LAB}/logs/nginx-bench-crawl-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {base}/tmp/body;
    proxy_temp_path {base}/tmp/proxy;
    fastcgi_temp_path {base}/tmp/fastcgi;
    uwsgi_temp_path {base}/tmp/uwsgi;
    scgi_temp_path {base}/tmp/scgi;
    sendfile on;
    keepalive_timeout 10s;
    server_tokens off;
    ssl_protocols TLSv1.2 TLSv1.3;
{srv}}}
""")
    sizes = [os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(www) for f in fs if f.endswith(".html")]
    return {"name": CRAWL_NAME, "v4": CRAWL[0], "v6": CRAWL[1], "pages": pages, "level2": level2,
            "level3": level3, "static": sorted(os.listdir(f"{www}/static")),
            "html_bytes_mean": round(sum(sizes) / len(sizes)), "root": www}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--out", default=f"{LAB}/world")
    ap.add_argument("--seed", type=int, default=6)
    ap.add_argument("--v4only", type=float, default=30.0, help="percent IPv4-only")
    ap.add_argument("--broken", type=float, default=10.0, help="percent with a blackholed AAAA")
    ap.add_argument("--mx", type=float, default=30.0, help="percent with an MX")
    ap.add_argument("--mix", choices=["lab", "internet"], default="lab",
                    help="internet: 70 %% dual-stack, 10 %% IPv4-only, 10 %% with one of three AAAA "
                         "blackholed, 5 %% with dead IPv6 on their name servers, 5 %% with an MX that "
                         "answers RST on 25 (ignores --v4only/--broken)")
    ap.add_argument("--crawl-site", action="store_true", help="add crawl.bench.test (bench/crawl)")
    ap.add_argument("--crawl-pages", type=int, default=1000, help="pages of crawl.bench.test")
    ap.add_argument("--crawl-level2", type=int, default=30, help="level-2 pages of crawl.bench.test")
    a = ap.parse_args()
    if a.count < 1 or a.v4only + a.broken > 100:
        sys.exit("world.py: bad --count or percentages")
    out = a.out
    rnd = random.Random(a.seed)
    nss = ns_hosts()

    # ---------------------------------------------------------------- domains
    zd = f"{out}/zones"
    os.makedirs(zd, exist_ok=True)
    parent = [rr("bench.test.", "SOA", f"nic.bench.test. hostmaster.bench.test. {SERIAL} 3600 600 86400 60"),
              rr("bench.test.", "NS", "nic.bench.test."),
              rr("nic.bench.test.", "A", NIC[0]), rr("nic.bench.test.", "AAAA", NIC[1]),
              rr("mx.bench.test.", "A", MX[0]), rr("mx.bench.test.", "AAAA", MX[1])]
    for n, v4, v6 in nss + DEAD_NS:
        parent += [rr(n, "A", v4), rr(n, "AAAA", v6)]
    parent += [rr("mx-rst.bench.test.", "A", MX_RST[0]), rr("mx-rst.bench.test.", "AAAA", MX_RST[1])]
    names, tsv = [], ["domain\tkind\tmx\tns_pair\tv4\tv6"]
    counts = {k: 0 for k in KINDS}
    counts["mx"] = 0
    leaf_zones = []
    for i in range(1, a.count + 1):
        d = f"d{i}.bench.test"
        x = rnd.random() * 100
        if a.mix == "internet":
            kind = ("v4only" if x < 10 else "aaaa-1of3-dead" if x < 20 else "ns-v6-dead" if x < 25
                    else "mx-rst" if x < 30 else "dual")
        else:
            kind = "v4only" if x < a.v4only else "broken-v6" if x < a.v4only + a.broken else "dual"
        has_mx = kind == "mx-rst" or rnd.random() * 100 < a.mx
        p = (i - 1) % PAIRS
        na, nb = nss[2 * p][0], nss[2 * p + 1][0]
        if kind == "ns-v6-dead":
            na, nb = DEAD_NS[0][0], DEAD_NS[1][0]
        v4, v6 = hosting(rnd.randrange(POOL))
        v6s = [v6]
        if kind == "broken-v6":
            v6s = [broken_v6(rnd.randrange(BROKEN))]
        elif kind == "v4only":
            v6s = []
        elif kind == "aaaa-1of3-dead":
            v6s = [v6, hosting((int(v6.rsplit(":", 1)[1], 16) % POOL))[1], broken_v6(rnd.randrange(BROKEN))]
        z = [rr(f"{d}.", "SOA", f"{na} hostmaster.{d}. {SERIAL} 3600 600 86400 60"),
             rr(f"{d}.", "NS", na), rr(f"{d}.", "NS", nb), rr(f"{d}.", "A", v4)]
        z += [rr(f"{d}.", "AAAA", x) for x in v6s]
        if has_mx:
            z.append(rr(f"{d}.", "MX", "10 mx-rst.bench.test." if kind == "mx-rst" else "10 mx.bench.test."))
        with open(f"{zd}/{d}.zone", "w") as f:
            f.write("".join(z))
        parent += [rr(f"{d}.", "NS", na), rr(f"{d}.", "NS", nb)]
        leaf_zones.append(d)
        names.append(d)
        counts[kind] += 1
        counts["mx"] += has_mx
        tsv.append(f"{d}\t{kind}\t{int(has_mx)}\t{p + 1}\t{v4}\t{','.join(v6s) or '-'}")
    if a.crawl_site:   # its own zone on ns1a/ns1b, like a dN domain
        d = CRAWL_NAME
        na, nb = nss[0][0], nss[1][0]
        with open(f"{zd}/{d}.zone", "w") as f:
            f.write("".join([rr(f"{d}.", "SOA", f"{na} hostmaster.{d}. {SERIAL} 3600 600 86400 60"),
                             rr(f"{d}.", "NS", na), rr(f"{d}.", "NS", nb),
                             rr(f"{d}.", "A", CRAWL[0]), rr(f"{d}.", "AAAA", CRAWL[1])]))
        parent += [rr(f"{d}.", "NS", na), rr(f"{d}.", "NS", nb)]
        leaf_zones.append(d)
    w(f"{zd}/bench.test.zone", "".join(parent))
    w(f"{out}/domains.txt", "\n".join(names) + "\n")
    w(f"{out}/domains.tsv", "\n".join(tsv) + "\n")
    # records the test. zone needs (added with knotc by lab/world)
    w(f"{out}/delegation.txt", "".join(
        f"{o} 60 {t} {d}\n" for o, t, d in (("bench.test.", "NS", "nic.bench.test."),
                                            ("nic.bench.test.", "A", NIC[0]),
                                            ("nic.bench.test.", "AAAA", NIC[1]))))

    # ---------------------------------------------------------------- knot
    def knot(inst, listen, zones, workers):
        base = f"{out}/knot/{inst}"
        os.makedirs(f"{base}/run", exist_ok=True)
        os.makedirs(f"{base}/db", exist_ok=True)
        c = ["server:", f'    rundir: "{base}/run"', f'    pidfile: "{LAB}/run/knot-bench-{inst}.pid"',
             "    udp-workers: 1", "    tcp-workers: 1", f"    background-workers: {workers}",
             "    listen: [ " + ", ".join(f'"{x}@53"' for x in listen) + " ]",
             "log:", f"  - target: {LAB}/logs/knot-bench-{inst}.log", "    any: warning",
             "database:", f'    storage: "{base}/db"',
             "template:", "  - id: default", f'    file: "{zd}/%s.zone"', "    zonefile-sync: -1",
             "    zonefile-load: whole", "    journal-content: none", "    semantic-checks: off",
             "zone:"]
        c += [f"  - domain: {z}." for z in zones]
        w(f"{out}/knot-{inst}.conf", "\n".join(c) + "\n")

    knot("parent", NIC, ["bench.test"], 1)
    knot("leaf", [x for _, v4, v6 in nss + DEAD_NS for x in (v4, v6)], leaf_zones, 2)

    # ---------------------------------------------------------------- TLS leaf (lab CA)
    cd = f"{out}/certs"
    os.makedirs(cd, exist_ok=True)
    key, ca = f"{LAB}/certs/leaf.key", f"{LAB}/ca"
    w(f"{cd}/bench.ext", "subjectAltName=DNS:*.bench.test,DNS:bench.test\nbasicConstraints=CA:FALSE\n"
                         "extendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n")
    sh("openssl", "req", "-new", "-key", key, "-subj", "/CN=*.bench.test", "-out", f"{cd}/bench.csr")
    sh("openssl", "x509", "-req", "-in", f"{cd}/bench.csr", "-CA", f"{ca}/ca.pem", "-CAkey", f"{ca}/ca.key",
       "-CAcreateserial", "-CAserial", f"{cd}/ca.srl", "-days", "825", "-sha256",
       "-extfile", f"{cd}/bench.ext", "-out", f"{cd}/bench.pem")
    os.chmod(f"{cd}/bench.pem", 0o644)
    crawl = crawl_site(out, a.crawl_pages, a.crawl_level2, key, f"{cd}/bench.pem") if a.crawl_site else None

    # ---------------------------------------------------------------- nginx (catch-all)
    www = f"{out}/www"
    w(f"{www}/index.html", "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>bench</title></head>\n"
      "<body><h1>bench</h1>\n<p>Synthetic benchmark site of the v6scope lab. Every dN.bench.test "
      "is served by this same catch-all page, over IPv4 and IPv6 alike.</p>\n</body></html>\n")
    pool = [x for i in range(POOL) for x in hosting(i)]
    os.makedirs(f"{out}/nginx/tmp", exist_ok=True)

    def listen(addr, port, tls):
        h = f"[{addr}]" if ":" in addr else addr
        return f"    listen {h}:{port} default_server{' ssl' if tls else ''};\n"
    srv = ""
    for port, tls in ((80, False), (443, True)):
        srv += "server {\n" + "".join(listen(x, port, tls) for x in pool)
        srv += f"    server_name _;\n    root {www};\n    index index.html;\n"
        if tls:
            srv += f"    ssl_certificate {cd}/bench.pem;\n    ssl_certificate_key {key};\n"
        srv += "    location / { try_files $uri $uri/ /index.html; }\n}\n"
    w(f"{out}/nginx/nginx.conf", f"""user nobody nogroup;
worker_processes 1;
worker_rlimit_nofile 16384;
pid {LAB}/run/nginx-bench.pid;
error_log {LAB}/logs/nginx-bench-error.log warn;
events {{ worker_connections 8192; }}
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
{srv}}}
""")

    # ---------------------------------------------------------------- postfix (mx.bench.test)
    pf = f"{out}/postfix"
    os.makedirs(f"{pf}/spool", exist_ok=True)
    os.makedirs(f"{pf}/data", exist_ok=True)
    shutil.chown(f"{pf}/data", "postfix", "postfix")
    os.makedirs(f"{pf}/etc", exist_ok=True)
    shutil.copy(f"{LAB}/postfix/etc/master.cf", f"{pf}/etc/master.cf")
    w(f"{pf}/etc/main.cf", f"""# v6lab bench postfix (mx.bench.test): answers SMTP, never relays or delivers
compatibility_level = 3.6
queue_directory = {pf}/spool
data_directory = {pf}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.bench.test
mydomain = bench.test
myorigin = $myhostname
inet_interfaces = {MX[0]}, {MX[1]}
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
smtpd_banner = $myhostname ESMTP v6lab-bench
smtpd_tls_security_level = may
smtpd_tls_cert_file = {cd}/bench.pem
smtpd_tls_key_file = {key}
smtpd_tls_loglevel = 0
smtpd_peername_lookup = no
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
default_process_limit = 200
biff = no
maillog_file_prefixes = {LAB}
maillog_file = {LAB}/logs/postfix-bench.log
""")

    # ---------------------------------------------------------------- addresses, nftables
    addrs = list(NIC) + list(MX) + list(MX_RST) + [x for _, v4, v6 in nss + DEAD_NS for x in (v4, v6)] + pool + [
        broken_v6(i) for i in range(BROKEN)] + (list(CRAWL) if crawl else [])
    w(f"{out}/addrs.batch", "".join(
        f"address add {x}/{'128' if ':' in x else '32'} dev lo{' nodad' if ':' in x else ''}\n" for x in addrs))
    w(f"{out}/addrs-del.batch", "".join(
        f"address del {x}/{'128' if ':' in x else '32'} dev lo\n" for x in addrs))
    w(f"{out}/nft.conf", "table inet v6lab-bench {\n  chain input {\n"
      "    type filter hook input priority 0; policy accept;\n"
      f"    ip6 daddr 2001:db8:b2::/64 drop comment \"bench broken-v6 pool\"\n  }}\n}}\n")
    summary = {"count": a.count, "seed": a.seed, "mix": a.mix,
               "percent": {"v4only": a.v4only, "broken": a.broken, "mx": a.mx},
               "counts": counts, "ns_pairs": PAIRS, "hosting_pool": POOL, "broken_pool": BROKEN,
               "nic": NIC, "mx": MX, "domains": f"{out}/domains.txt", "crawl_site": crawl}
    w(f"{out}/world.json", json.dumps(summary, indent=1) + "\n")
    kinds = ", ".join(f"{counts[k]} {k}" for k in KINDS if counts[k])
    print(f"world.py: {a.count} domains, mix {a.mix} ({kinds}; {counts['mx']} with MX); {len(addrs)} addresses"
          + (f"; {CRAWL_NAME}: {crawl['pages']} pages (1 + {crawl['level2']} + {crawl['level3']}),"
             f" {len(crawl['static'])} static files, {crawl['html_bytes_mean']} bytes of HTML a page" if crawl else ""))


if __name__ == "__main__":
    main()
