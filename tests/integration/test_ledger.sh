#!/usr/bin/env bash
# The Merkle log end to end: a provisioning run under kiln serve fills the log
# past 1,000 events with checkpoints signed along the way; kiln audit verify,
# an independent Python verifier (standard library only) and openssl agree on
# the roots, proofs and signatures; no secret reaches the events, the export
# or the server's log; and on copies of the deployment an attacker's edit,
# deletion, swap and insertion (triggers dropped, sqlite3 directly) are each
# caught at their exact index while the untouched copy verifies.
. "$(dirname "$0")/lib.sh"

VERIFY=$KILN_SOURCE_DIR/tests/verifier/kiln_verify.py
D=$T/d
check "deploy" deploy "$D"
check "init signed the first checkpoint" test "$(rows "$D" checkpoints)" -ge 1
check "the log key is a public file" test -s "$D/log.pub"
check "the log key is Ed25519 in the service token, made at init" test \
	"$(rows "$D" events "type = 'key-create' AND subject = 'kiln-log'")" -eq 1
check "station" kiln --dir "$D" identity add --name st-1 --role station --out "$T/st-1"
check "auditor" kiln --dir "$D" identity add --name aud --role auditor --out "$T/aud"
check "lot" kiln --dir "$D" batch open --product widget --lot LOT-L --quantity 100 --station st-1
check "serve" serve_start "$D" --rate 100000

check "provision 20 DICE devices" device provision --state "$T/st" --server "$URL" \
	--cert "$T/st-1.crt" --key "$T/st-1.key" --ca "$T/service.pem" --product widget \
	--lot LOT-L --count 20 --parallel 4 --serial-prefix LG- --json
# A raw nonce, as a station sees it: it must never be stored or logged.
echo '{"lot": "LOT-L"}' >"$T/begin.json"
api "$T/st-1" POST /v1/provision/begin "$T/begin.json" >/dev/null
NONCE=$(json "$T/api.body" 'j["nonce"]')
check "a nonce was handed out" test -n "$NONCE"
check "a checkpoint while serving (CLI, second process)" kiln --dir "$D" audit checkpoint
MID=$(sqlite3 "$D/kiln.db" "SELECT max(size) FROM checkpoints")

# Refusals are events too: fill the log past 1,000 with requests for unknown routes.
have=$(rows "$D" events)
for i in $(seq $((1000 - have + 5))); do printf 'url = "%s"\noutput = "/dev/null"\n' "$URL/v1/nothing/$i"; done >"$T/urls"
curl -s --cacert "$T/service.pem" --cert "$T/st-1.crt" --key "$T/st-1.key" -K "$T/urls"
check "the log holds 1,000 events" test "$(rows "$D" events)" -ge 1000

# The HTTP API, for auditors and customers (any authenticated identity).
serial=$(basename "$(ls -d "$T"/st/devices/* | head -n1)")
check "GET /v1/log/checkpoint (auditor)" test "$(api "$T/aud" GET /v1/log/checkpoint)" = 200
cp "$T/api.body" "$T/http-checkpoint.txt"
check "the checkpoint is the text format" test "$(sed -n 1p "$T/http-checkpoint.txt")" = "$(cut -d+ -f1 "$D/log.pub")"
check "GET inclusion proof for a device (station)" test \
	"$(api "$T/st-1" GET "/v1/log/proof/inclusion?device=widget%2F$serial&size=$MID")" = 200
cp "$T/api.body" "$T/http-inclusion.json"
check "GET checkpoints" test "$(api "$T/aud" GET /v1/log/checkpoints)" = 200
check "GET entries (auditor)" test "$(api "$T/aud" GET '/v1/log/entries?start=0&end=10')" = 200
check "entries carry their leaf hashes" test "$(json "$T/api.body" 'len(j[0]["leaf_hash"])')" = 64
check "entries are not for stations (403)" problem_is 403 forbidden \
	"$(api "$T/st-1" GET '/v1/log/entries?start=0&end=10')"
check "a bad proof query is a problem" problem_is 400 bad-argument \
	"$(api "$T/aud" GET '/v1/log/proof/inclusion?index=1&bogus=2')"
check "an index outside the log is a problem" problem_is 400 log-range \
	"$(api "$T/aud" GET "/v1/log/proof/inclusion?index=999999&size=$MID")"
check "a size that is no checkpoint is a problem" problem_is 404 not-found \
	"$(api "$T/aud" GET '/v1/log/proof/consistency?from=3&to=5')"
check "the refused queries are audit events" test \
	"$(rows "$D" events "type = 'rejection' AND subject LIKE '/v1/log/%'")" -ge 3
check "graceful stop signs a last checkpoint" serve_stop
N=$(rows "$D" events)
check "the newest checkpoint covers every event" test \
	"$(sqlite3 "$D/kiln.db" "SELECT max(size) FROM checkpoints")" -eq "$N"
check "kiln audit verify" kiln --dir "$D" audit verify --json
KROOT=$(json "$T/.out" 'j["root_hash"]')

# Proofs from the CLI, and the export checked without kiln.
kiln --dir "$D" audit prove --device "$serial" --json >"$T/inc.json"
check "inclusion proof for the device's issuance" test "$(json "$T/inc.json" 'j["size"]')" -eq "$N"
kiln --dir "$D" audit consistency --from "$MID" --to "$N" --json >"$T/cons.json"
check "consistency proof" test "$(json "$T/cons.json" 'len(j["consistency_path"])')" -ge 1
check "kiln audit export" kiln --dir "$D" audit export "$T/ex"
check "the export has the control map, CAs and policy history" test -s "$T/ex/controls.json" -a \
	-s "$T/ex/ca/production-root.pem" -a -s "$T/ex/policies/widget-v1.yaml"
check "the export's files match SHA256SUMS" bash -c "cd '$T/ex' && sha256sum -c --quiet SHA256SUMS"
check "kiln audit verify --export (public key only)" kiln audit verify --export "$T/ex"
python3 "$VERIFY" "$T/ex" --inclusion "$T/inc.json" --consistency "$T/cons.json" >"$T/py.out"
check "python: roots, inclusion and consistency (CLI proofs)" test $? -eq 0
sed 's/^/     | /' "$T/py.out"
check "python: the same root as kiln" grep -q "root $N $KROOT" "$T/py.out"
check "python: inclusion proof from HTTP" python3 "$VERIFY" "$T/ex" --inclusion "$T/http-inclusion.json"
# The signature, by openssl: the signed message is the note text before the blank line.
sigcheck() { # NOTE_FILE
	python3 - "$1" "$T/body" "$T/sig" <<'PY'
import base64, sys
text = open(sys.argv[1], encoding="utf-8").read()
body, _, sigs = text.rpartition("\n\n")
open(sys.argv[2], "wb").write((body + "\n").encode())
open(sys.argv[3], "wb").write(base64.b64decode(sigs.split(" ")[2])[4:])
PY
	openssl pkeyutl -verify -pubin -inkey "$T/ex/log-key.pem" -rawin -in "$T/body" -sigfile "$T/sig"
}
check "openssl verifies the checkpoint signature" sigcheck "$T/http-checkpoint.txt"
sed -i '2s/.*/999999/' "$T/http-checkpoint.txt"
sigfails() { ! sigcheck "$1" >/dev/null 2>&1; }
check "openssl refuses an altered checkpoint" sigfails "$T/http-checkpoint.txt"

# No secret anywhere: PINs, private keys, a device's UDS, the raw nonce.
sqlite3 "$D/kiln.db" "SELECT * FROM events" >"$T/events.dump"
check "no secret in the events, the export or the server log" python3 - "$D" "$T" "$NONCE" <<'PY'
import base64, glob, os, sys
d, t, nonce = sys.argv[1:4]
secrets = {}
for f in glob.glob(d + "/secrets/*"):
    raw = open(f, "rb").read().strip()
    if f.endswith(".key"):
        body = b"".join(l for l in raw.splitlines() if not l.startswith(b"-----"))
        raw = base64.b64decode(body)
        secrets[f + " (base64)"] = body[-40:]
    secrets[f] = raw
uds = glob.glob(t + "/st/devices/*/uds")
assert uds, "no UDS found"
for f in uds[:5]:
    raw = open(f, "rb").read()
    secrets[f] = raw
    secrets[f + " (hex)"] = raw.hex().encode()
    secrets[f + " (base64)"] = base64.b64encode(raw)
n = base64.b64decode(nonce)
for label, v in (("nonce", nonce.encode()), ("nonce hex", n.hex().encode()), ("nonce raw", n)):
    secrets[label] = v
haystacks = [t + "/events.dump", t + "/serve.log", d + "/kiln.db"] + \
    [p for p in glob.glob(t + "/ex/**", recursive=True) if os.path.isfile(p)]
found = 0
for h in haystacks:
    data = open(h, "rb").read()
    for label, v in secrets.items():
        if len(v) >= 8 and v in data:
            print("secret %s found in %s" % (label, h))
            found += 1
print("searched %d files for %d secrets" % (len(haystacks), len(secrets)))
sys.exit(1 if found else 0)
PY

# Tampering, on copies, as an attacker with the database file would.
tamper() { # NAME SQL
	cp -r "$D" "$T/$1"
	sqlite3 "$T/$1/kiln.db" "DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete;
		DROP TRIGGER events_contiguous; $2"
}
tamper edit "UPDATE events SET actor = 'mallory' WHERE seq = 500"
tamper delete "DELETE FROM events WHERE seq = 600"
tamper swap "CREATE TEMP TABLE s AS SELECT * FROM events WHERE seq IN (700, 701);
	UPDATE events SET time = (SELECT time FROM s WHERE seq = 701), type = (SELECT type FROM s WHERE seq = 701),
	  actor = (SELECT actor FROM s WHERE seq = 701), subject = (SELECT subject FROM s WHERE seq = 701),
	  detail = (SELECT detail FROM s WHERE seq = 701) WHERE seq = 700;
	UPDATE events SET time = (SELECT time FROM s WHERE seq = 700), type = (SELECT type FROM s WHERE seq = 700),
	  actor = (SELECT actor FROM s WHERE seq = 700), subject = (SELECT subject FROM s WHERE seq = 700),
	  detail = (SELECT detail FROM s WHERE seq = 700) WHERE seq = 701;"
tamper insert "UPDATE events SET seq = seq + 1000000 WHERE seq >= 800;
	UPDATE events SET seq = seq - 999999 WHERE seq >= 1000000;
	INSERT INTO events VALUES (800, 1700000000, 'issuance', 'mallory', 'forged', '{}');"
tamper untouched ""
check "the swap really swapped two different events" test \
	"$(sqlite3 "$T/swap/kiln.db" "SELECT actor || type || detail FROM events WHERE seq = 700")" != \
	"$(sqlite3 "$D/kiln.db" "SELECT actor || type || detail FROM events WHERE seq = 700")"
refuse "edited row: caught at its index" "FAILED at index 500" kiln --dir "$T/edit" audit verify
refuse "deleted row: caught at its index" "FAILED at index 600" kiln --dir "$T/delete" audit verify
refuse "swapped rows: caught at the first" "FAILED at index 700" kiln --dir "$T/swap" audit verify
refuse "inserted row: caught at its index" "FAILED at index 800" kiln --dir "$T/insert" audit verify
check "the untouched copy verifies" kiln --dir "$T/untouched" audit verify
# The same attack on an export: no derived hashes there, the signed checkpoints bound it.
cp -r "$T/ex" "$T/ex2"
python3 - "$T/ex2/events.jsonl" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
ev = json.loads(lines[300]); ev["actor"] = "mallory"; lines[300] = json.dumps(ev)
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
PY
refuse "an edited export fails" "log verification FAILED" kiln audit verify --export "$T/ex2"
check "python refuses the edited export too" bash -c "! python3 '$VERIFY' '$T/ex2'"
cp -r "$T/ex" "$T/ex3"
sed -i '2s/.*/5/' "$T/ex3/checkpoints/$(ls "$T/ex3/checkpoints" | tail -n1)"
refuse "a checkpoint altered without the key fails" "signature" kiln audit verify --export "$T/ex3"
finish
