#!/usr/bin/env python3
"""An independent verifier of a kiln log export, Python standard library only.

It shares no code with kiln: it rebuilds the canonical event bytes and the
RFC 9162 Merkle tree from events.jsonl as docs/verifying.md describes them,
and checks that every checkpoint's root is the root of the events it covers,
that the checkpoint signature lines carry the log key's key hash, and
(optionally) an inclusion proof and a consistency proof as kiln prints them
(`kiln audit prove --json`, `kiln audit consistency --json`, or the HTTP API).
Ed25519 signatures are checked with openssl (see docs/verifying.md): the
standard library has no Ed25519.

usage: kiln_verify.py EXPORT_DIR [--inclusion PROOF.json] [--consistency PROOF.json]
Prints "root SIZE HEX" for the newest checkpoint; exits 1 on any mismatch.
"""
import base64
import hashlib
import json
import os
import struct
import sys


def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def canonical(ev):
    def s(v):
        b = v.encode("utf-8")
        return struct.pack(">I", len(b)) + b
    return (b"kiln-event-v1" + struct.pack(">QQ", ev["seq"], ev["time"] & 0xFFFFFFFFFFFFFFFF)
            + s(ev["type"]) + s(ev["actor"]) + s(ev["subject"]) + s(ev["detail"]))


def mth(leaves):
    """RFC 9162 section 2.1.1, recursively."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k << 1 < n:
        k <<= 1
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def verify_inclusion(leaf, index, size, path, root):
    """RFC 9162 section 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(m, n, root1, root2, path):
    """RFC 9162 section 2.1.4.2."""
    if m == n:
        return not path and root1 == root2
    if m == 0 or m > n or not path:
        return False
    if m & (m - 1) == 0:
        path = [root1] + list(path)
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == root1 and sr == root2


def parse_note(text):
    """A signed note: (body, [(name, keyhash, sig)]); the body is what was signed."""
    body, sep, sigs = text.rpartition("\n\n")
    if not sep:
        raise ValueError("no blank line before the signatures")
    body += "\n"
    lines = []
    for line in sigs.splitlines():
        if not line.startswith("\u2014 "):
            raise ValueError("bad signature line")
        name, b64 = line[2:].split(" ")
        raw = base64.b64decode(b64, validate=True)
        lines.append((name, raw[:4], raw[4:]))
    origin, size, root = body.split("\n")[:3]
    return body, origin, int(size), base64.b64decode(root, validate=True), lines


def parse_key(text):
    name, keyhash, b64 = text.strip().split("+", 2)
    raw = base64.b64decode(b64, validate=True)
    if raw[0] != 1 or len(raw) != 33:
        raise ValueError("not an Ed25519 note key")
    want = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    if want.hex() != keyhash:
        raise ValueError("key hash mismatch")
    return name, want, raw[1:]


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    exp = argv[1]
    opts = dict(zip(argv[2::2], argv[3::2]))
    failures = 0

    def bad(msg):
        nonlocal failures
        failures += 1
        print("FAIL " + msg)

    events = [json.loads(line) for line in open(os.path.join(exp, "events.jsonl"), encoding="utf-8")
              if line.strip()]
    leaves = []
    for i, ev in enumerate(events):
        if ev["seq"] != i:
            bad("event %d has seq %d" % (i, ev["seq"]))
        leaves.append(leaf_hash(canonical(ev)))
        if ev.get("leaf_hash") and ev["leaf_hash"] != leaves[-1].hex():
            bad("event %d: leaf hash differs from kiln's" % i)
    name, keyhash, _pub = parse_key(open(os.path.join(exp, "log.pub"), encoding="utf-8").read())
    cps = {}
    for f in sorted(os.listdir(os.path.join(exp, "checkpoints"))):
        text = open(os.path.join(exp, "checkpoints", f), encoding="utf-8").read()
        _body, origin, size, root, sigs = parse_note(text)
        if origin != name or not any(n == name and h == keyhash and len(s) == 64 for n, h, s in sigs):
            bad("checkpoint %s: no signature line by %s" % (f, name))
        if size > len(leaves):
            bad("checkpoint %d is beyond the %d events" % (size, len(leaves)))
            continue
        if mth(leaves[:size]) != root:
            bad("checkpoint %d: root differs from the events" % size)
        cps[size] = root
    if not cps:
        bad("no checkpoints")
        return 1
    newest = max(cps)
    print("events %d checkpoints %d" % (len(leaves), len(cps)))
    print("root %d %s" % (newest, cps[newest].hex()))

    if "--inclusion" in opts:
        p = json.load(open(opts["--inclusion"], encoding="utf-8"))
        idx, size = p["index"], p["size"]
        path = [bytes.fromhex(h) for h in p["inclusion_path"]]
        root = cps.get(size)
        if root is None and "checkpoint" in p:
            root = parse_note(p["checkpoint"])[3]
        if leaves[idx].hex() != p["leaf_hash"]:
            bad("inclusion: leaf %d differs from the export's event" % idx)
        elif root is None or root.hex() != p["root_hash"]:
            bad("inclusion: root is not a checkpoint's")
        elif not verify_inclusion(leaves[idx], idx, size, path, root):
            bad("inclusion: the proof does not lead to the root")
        else:
            print("inclusion ok: event %d (%s) in tree %d" % (idx, events[idx]["type"], size))
    if "--consistency" in opts:
        p = json.load(open(opts["--consistency"], encoding="utf-8"))
        m, n = p["from"], p["to"]
        path = [bytes.fromhex(h) for h in p["consistency_path"]]
        r1, r2 = mth(leaves[:m]), mth(leaves[:n])
        if r1.hex() != p["from_root"] or r2.hex() != p["to_root"]:
            bad("consistency: roots differ from the events")
        elif not verify_consistency(m, n, r1, r2, path):
            bad("consistency: the proof does not hold")
        else:
            print("consistency ok: %d -> %d" % (m, n))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
