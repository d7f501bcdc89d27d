#!/usr/bin/env python3
"""Replay captures through every exporter, then set the ground truth, our own decode of
the captured datagrams (flowsum.py) and the two peers (nfcapd+nfdump, nfacctd/sfacctd, fed
the same captured datagrams) side by side.

    lab/flows/compare.py [--pcaps DIR] [--only mix,app-run1] [--modes m1,m2] [--out DIR]
                         [--json FILE] [--fixtures DIR]

--pcaps DIR     captures made by gen_pcaps.py (made into a temporary directory if absent)
--out DIR       keep the captured datagrams there (DIR/PCAPNAME/MODE.bin)
--fixtures DIR  copy the captures of mix.pcap into DIR as test fixtures, with
                expected.json and mix.truth.json (crates/flow/testdata)
Prints a Markdown table. Exit status 1 if an unsampled IPFIX/v9/sFlow export differs from
the truth by more than the documented exporter behaviour (see README.md).
"""

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("flowsum", os.path.join(HERE, "flowsum.py"))
flowsum = importlib.util.module_from_spec(spec)
spec.loader.exec_module(flowsum)

MODES = ["softflowd-v5", "softflowd-v9", "softflowd-ipfix", "softflowd-ipfix-ms",
         "softflowd-v9-s10", "softflowd-psamp", "pmacct-v5", "pmacct-v9", "pmacct-ipfix",
         "pmacct-sflow", "nfreplay-v5", "nfreplay-v9"]
FIXTURE_MODES = ["softflowd-v5", "softflowd-v9", "softflowd-ipfix", "softflowd-ipfix-ms",
                 "softflowd-v9-s10", "pmacct-v5", "pmacct-v9", "pmacct-ipfix", "pmacct-sflow",
                 "nfreplay-v5", "nfreplay-v9"]
PORT = 39500


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.stderr.write(f"compare: {' '.join(cmd)} failed:\n{r.stdout}{r.stderr}")
        return None
    return r.stdout.strip()


def quad(s):
    return [int(x) for x in s.split()] if s else None


def export(mode, pcap, out):
    args = [os.path.join(HERE, "export"), "-q", "--capture", out]
    if mode.endswith("-s10"):
        args += ["--sampling", "10"]
        mode = mode[:-4]
    return run(args + [mode, pcap, str(PORT)]) is not None


def decode(path):
    s = flowsum.Sum()
    for d in flowsum.records(path):
        s.datagram(d)
    return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pcaps")
    ap.add_argument("--only", default="mix,app-run1,app-run2,app-run3")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--out")
    ap.add_argument("--json")
    ap.add_argument("--fixtures")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="v6flows-compare.")
    try:
        pdir = a.pcaps
        if not pdir or not os.path.exists(os.path.join(pdir, "manifest.json")):
            pdir = pdir or os.path.join(tmp, "pcaps")
            subprocess.run(["/usr/bin/python3", os.path.join(HERE, "gen_pcaps.py"), pdir],
                           check=True, capture_output=True)
        manifest = json.load(open(os.path.join(pdir, "manifest.json")))
        out = a.out or os.path.join(tmp, "out")
        rows, bad = [], []
        names = a.only.split(",")
        modes = a.modes.split(",")
        if a.fixtures:
            names = ["mix"] + [n for n in names if n != "mix"]
        for f in manifest["files"]:
            name = f["file"].rsplit(".", 1)[0]
            if name not in names:
                continue
            pcap = os.path.join(pdir, f["file"])
            truth = json.load(open(os.path.join(pdir, name + ".truth.json")))
            t = truth["totals"]
            tq = [t["ipv4_bytes"], t["ipv4_packets"], t["ipv6_bytes"], t["ipv6_packets"]]
            os.makedirs(os.path.join(out, name), exist_ok=True)
            for mode in modes:
                cap = os.path.join(out, name, mode + ".bin")
                ok = export(mode, pcap, cap)
                row = {"pcap": f["file"], "linktype": f["linktype_name"], "mode": mode,
                       "truth": tq, "ok": ok}
                if ok:
                    s = decode(cap)
                    row["datagrams"] = sum(s.datagrams.values())
                    row["size"] = os.path.getsize(cap)
                    row["records"] = dict(s.records)
                    row["decoded"] = [s.t[4][0], s.t[4][1], s.t[6][0], s.t[6][1]]
                    row["sampling"] = dict(s.sampling)
                    row["sflow_frame_bytes"] = s.frame_bytes
                    row["per_minute"] = [[m, v[4][0], v[4][1], v[6][0], v[6][1]]
                                         for m, v in sorted(s.minutes.items())]
                    if "psamp" not in mode:
                        row["nfdump"] = quad(run([os.path.join(HERE, "peer-nfdump"),
                                                  "--datagrams", cap])) \
                            if "sflow" not in mode or shutil.which("sfcapd") else None
                    row["nfacctd"] = quad(run([os.path.join(HERE, "peer-nfacctd"),
                                               "--datagrams", cap]))
                    if mode.endswith("-s10"):
                        row["nfacctd_renormalized"] = quad(run(
                            [os.path.join(HERE, "peer-nfacctd"), "--renormalize", "--datagrams", cap]))
                    if mode.endswith("-v5"):
                        expect = tq[:2] + [0, 0]
                    else:
                        expect = tq
                    row["decoded_equals_truth"] = row["decoded"] == expect
                    if not mode.endswith("-s10") and not mode.startswith("nfreplay") \
                            and not row["decoded_equals_truth"]:
                        bad.append((f["file"], mode))
                else:
                    bad.append((f["file"], mode))
                rows.append(row)
                print(f"compare: {f['file']} {mode}: decoded {row.get('decoded')} "
                      f"nfdump {row.get('nfdump')} nfacctd {row.get('nfacctd')} truth {tq}",
                      file=sys.stderr)
        fmt = lambda q: " ".join(map(str, q)) if q else "–"
        print("| pcap | mode | datagrams | bytes | decoded v4 B/p v6 B/p | nfdump | nfacctd | truth |")
        print("|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['pcap']} | {r['mode']} | {r.get('datagrams', '–')} | {r.get('size', '–')} | "
                  f"{fmt(r.get('decoded'))} | {fmt(r.get('nfdump'))} | {fmt(r.get('nfacctd'))}"
                  f"{' (renorm ' + fmt(r.get('nfacctd_renormalized')) + ')' if r.get('nfacctd_renormalized') else ''}"
                  f" | {fmt(r['truth'])} |")
        if a.json:
            with open(a.json, "w") as fh:
                json.dump(rows, fh, indent=1)
        if a.fixtures:
            os.makedirs(a.fixtures, exist_ok=True)
            exp = {}
            for r in rows:
                if r["pcap"] != "mix.pcap" or r["mode"] not in FIXTURE_MODES or not r["ok"]:
                    continue
                dst = os.path.join(a.fixtures, r["mode"] + ".bin")
                shutil.copyfile(os.path.join(out, "mix", r["mode"] + ".bin"), dst)
                keys = ("datagrams", "size", "records", "decoded", "nfdump", "nfacctd",
                        "nfacctd_renormalized", "sampling", "sflow_frame_bytes", "per_minute")
                exp[r["mode"] + ".bin"] = {k: r[k] for k in keys if k in r}
            shutil.copyfile(os.path.join(pdir, "mix.truth.json"),
                            os.path.join(a.fixtures, "mix.truth.json"))
            with open(os.path.join(a.fixtures, "expected.json"), "w") as fh:
                json.dump({"columns": "ipv4_bytes ipv4_packets ipv6_bytes ipv6_packets",
                           "per_minute_columns": "start ipv4_bytes ipv4_packets ipv6_bytes "
                                                 "ipv6_packets (by flow start time)",
                           "files": exp}, fh, indent=1)
                fh.write("\n")
        if bad:
            print(f"compare: differs from truth: {bad}", file=sys.stderr)
            return 1
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
