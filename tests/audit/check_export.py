#!/usr/bin/env python3
"""Check an `mmo audit export` with Python's standard library and openssl.

usage: python3 check_export.py EXPORT_DIR PUBLIC_KEY_HEX
Exit status 0 and "ok: ..." when the export is intact, else "FAILED: ...".
"""
import base64, csv, hashlib, json, os, subprocess, sys, tempfile

d, pub = sys.argv[1], bytes.fromhex(sys.argv[2])
m = json.load(open(os.path.join(d, "manifest.json")))

# 1. The signature: Ed25519 over the canonical manifest without "signature".
body = {k: v for k, v in m.items() if k != "signature"}
signed = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
der = bytes.fromhex("302a300506032b6570032100") + pub  # SubjectPublicKeyInfo, Ed25519
pem = b"-----BEGIN PUBLIC KEY-----\n" + base64.b64encode(der) + b"\n-----END PUBLIC KEY-----\n"
with tempfile.TemporaryDirectory() as t:
    for name, data in (("pub.pem", pem), ("signed", signed),
                       ("sig", bytes.fromhex(m["signature"]["value"]))):
        with open(os.path.join(t, name), "wb") as f:
            f.write(data)
    r = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", t + "/pub.pem",
                        "-rawin", "-in", t + "/signed", "-sigfile", t + "/sig"],
                       capture_output=True)
    if r.returncode != 0:
        sys.exit("FAILED: manifest.json: signature does not verify")

# 2. Each file's SHA-256; 3. the chain; 4. the counts.
prev, seq, counts = bytes.fromhex(m["prev_hash"]), m["range"]["from_seq"], {}
for entry in m["files"]:
    path = os.path.join(d, entry["name"])
    with open(path, "rb") as f:
        if hashlib.sha256(f.read()).hexdigest() != entry["sha256"]:
            sys.exit("FAILED: %s: sha256 mismatch" % entry["name"])
    with open(path, newline="") as f:
        rows = csv.DictReader(f) if m["event_format"] == "csv" else map(json.loads, f)
        for ev in rows:
            record = base64.b64decode(ev["record"])
            h = hashlib.sha256(prev + int(ev["seq"]).to_bytes(8, "big") + record).digest()
            if int(ev["seq"]) != seq or h.hex() != ev["hash"]:
                sys.exit("FAILED: %s: chain broken at seq %s" % (entry["name"], ev["seq"]))
            counts[ev["type"]] = counts.get(ev["type"], 0) + 1
            prev, seq = h, seq + 1
if seq - 1 != m["range"]["to_seq"] or prev.hex() != m["last"]["hash"] \
        or counts != m["counts_by_type"]:
    sys.exit("FAILED: the events do not match the manifest's range, last hash or counts")
print("ok: %d events, seq %d..%d, last hash %s" % (seq - m["range"]["from_seq"],
      m["range"]["from_seq"], seq - 1, prev.hex()))
