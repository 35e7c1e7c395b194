#!/usr/bin/env bash
# Issuing CA rotation behind M-of-N approvals (docs/ca.md, docs/roles.md): kiln ca rotate
# makes a ca-rotate request; two officers other than the requester approve it; kiln ca
# rotate --request runs it once. The new key is made in the token (sensitive, not
# extractable, seen with pkcs11-tool), certified by the root; new certificates chain
# through it, old ones still through the old CA (openssl verify); the old CA keeps its CRL
# and OCSP (openssl ocsp against kiln serve --listen-http). Refusals: one approval, the
# requester's own, expired, run twice, operator/engineer, unknown env or algorithm; each
# changes nothing (no key object, no CA row) and is an event. The ledger verifies.
. "$(dirname "$0")/lib.sh"

D=$T/d
check "init + policies" deploy "$D"
OA=$D/kt-officer-a.key
OB=$D/kt-officer-b.key
check "engineer" kiln --dir "$D" identity add --name eng-1 --role engineer --out "$T/eng"
check "operator" kiln --dir "$D" identity add --name op-1 --role operator --out "$T/op"
# A third officer (past the bootstrap: two approvals over its own key), the requester below.
csr p256 "$T/offc" /CN=officer-c
RC=$(kiln --dir "$D" --json identity add --name officer-c --role officer --csr "$T/offc.csr" --out "$T/offc" | json /dev/stdin 'j["request"]')
kiln --dir "$D" approve "$RC" --key "$OA" >/dev/null
kiln --dir "$D" approve "$RC" --key "$OB" >/dev/null
check "officer-c" kiln --dir "$D" identity add --name officer-c --role officer --csr "$T/offc.csr" --out "$T/offc" --request "$RC"
OC=$T/offc.key

leaf() { awk '/BEGIN CERT/{n++} n==1' "$1"; }
for i in 1 2 3; do
	csr p256 "$T/old$i" "/CN=TST-ROT-OLD-$i"
	check "issue old device $i" kiln --dir "$D" issue --product widget-test --csr "$T/old$i.csr" --out "$T/oldchain$i.pem"
	leaf "$T/oldchain$i.pem" >"$T/old$i.pem"
done
awk '/BEGIN CERT/{n++} n==2' "$T/oldchain1.pem" >"$T/issuing1.pem"
awk '/BEGIN CERT/{n++} n==3' "$T/oldchain1.pem" >"$T/root.pem"
serial() { openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f'; }

export SOFTHSM2_CONF=$D/hsm/softhsm2.conf
P11=(pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --token-label kiln-test --login --pin "$(cat "$D/secrets/kiln-test.pin")")
objects() { "${P11[@]}" --list-objects 2>/dev/null | grep -c '^ *label:'; }
OBJ0=$(objects)
CAS0=$(rows "$D" cas)
check "pkcs11-tool sees the test token's objects" test "$OBJ0" -gt 0

# ---------------------------------------------------------------- refusals before any rotation
refuse "unknown environment" "unknown environment 'staging'" kiln --dir "$D" ca rotate --env staging
refuse "service CA does not rotate" "unknown environment 'service'" kiln --dir "$D" ca rotate --env service
refuse "unknown algorithm" "unknown algorithm 'dsa1024'" kiln --dir "$D" ca rotate --env test --algorithm dsa1024
check "env and algorithm refusals are events" test "$(rows "$D" events "type = 'request-refused' AND subject = 'ca-rotate'")" -eq 3
refuse "an operator cannot request" "op-1 has role operator" kiln --dir "$D" ca rotate --env test --key "$T/op.key"
refuse "an engineer cannot request" "eng-1 has role engineer" kiln --dir "$D" ca rotate --env test --key "$T/eng.key"
check "no request was made by the refusals" test "$(rows "$D" requests "operation = 'ca-rotate'")" -eq 0
refuse "neither --env nor --request" "give --env ENV" kiln --dir "$D" ca rotate
refuse "unknown request" "req-000000000000000000000000" kiln --dir "$D" ca rotate --request req-000000000000000000000000

# ---------------------------------------------------------------- the request
check "officer-c requests a rotation" kiln --dir "$D" --json ca rotate --env test --key "$OC"
R=$(json "$T/.out" 'j["request"]')
check "request names generation 2, test-issuing-2, p256" test "$(json "$T/.out" 'j["name"], j["generation"], j["algorithm"], j["status"]')" = "test-issuing-2 2 p256 pending"
check "request params are canonical" test "$(sqlite3 "$D/kiln.db" "SELECT params FROM requests WHERE id = '$R'")" = \
	'{"algorithm":"p256","env":"test","generation":2,"name":"test-issuing-2","role":"issuing"}'
refuse "an engineer cannot approve" "eng-1 has role engineer: only officers approve" kiln --dir "$D" approve "$R" --key "$T/eng.key"
refuse "an operator cannot approve" "op-1 has role operator: only officers approve" kiln --dir "$D" approve "$R" --key "$T/op.key"
refuse "the requester's own approval does not count" "the requester's own approval does not count" kiln --dir "$D" approve "$R" --key "$OC"
check "one officer approves" kiln --dir "$D" approve "$R" --key "$OA"
refuse "one approval is not enough" "has 1 of the 2 officer approvals" kiln --dir "$D" ca rotate --request "$R"
check "no new key object in the token" test "$(objects)" -eq "$OBJ0"
check "no new CA row" test "$(rows "$D" cas)" -eq "$CAS0"
check "test-issuing still active" test "$(sqlite3 "$D/kiln.db" "SELECT status FROM cas WHERE name = 'test-issuing'")" = active
check "a second officer approves" kiln --dir "$D" approve "$R" --key "$OB"
refuse "--algorithm with --request" "--algorithm goes with --env" kiln --dir "$D" ca rotate --request "$R" --algorithm p384
# A running kiln serve would keep issuing from the CA the rotation retires: it must stop first.
check "serve runs" serve_start "$D"
REF0=$(rows "$D" events "type = 'request-refused' AND subject = '$R'")
refuse "approved, but kiln serve runs" "kiln serve is running on this deployment; stop it before running a CA rotation" kiln --dir "$D" ca rotate --request "$R"
check "the refusal is an event naming the request" test "$(rows "$D" events "type = 'request-refused' AND subject = '$R'")" -eq $((REF0 + 1))
check "still no new CA row, no new key object" test "$(rows "$D" cas)" -eq "$CAS0" -a "$(objects)" -eq "$OBJ0"
check "the request is still approved, not executed" test "$(sqlite3 "$D/kiln.db" "SELECT count(*) FROM events WHERE type = 'request-executed' AND subject = '$R'")" -eq 0
check "serve stops" serve_stop
# The other way round: while a rotation or a restore holds serve.lock, kiln serve does not start.
refuse "kiln serve waits for no rotation or restore" "a backup restore or a CA rotation is running on this deployment" \
	flock -x "$D/serve.lock" "$KILN_BIN" --dir "$D" serve --listen "127.0.0.1:$(free_port)"

# ---------------------------------------------------------------- the rotation
check "kiln ca rotate --request runs it" kiln --dir "$D" --json ca rotate --request "$R"
check "executed: test-issuing-2, key test-issuing-2" test "$(json "$T/.out" 'j["status"], j["name"], j["key_label"], j["retired"]')" = "executed test-issuing-2 test-issuing-2 test-issuing"
refuse "the same approved request twice" "was already executed" kiln --dir "$D" ca rotate --request "$R"
check "two new CA rows: issuing generation 2 and its OCSP signer" test "$(rows "$D" cas)" -eq $((CAS0 + 2))
check "test-issuing-2 is active, generation 2" test "$(sqlite3 "$D/kiln.db" "SELECT status, generation FROM cas WHERE name = 'test-issuing-2'")" = "active|2"
check "test-issuing is retired" test "$(sqlite3 "$D/kiln.db" "SELECT status FROM cas WHERE name = 'test-issuing'")" = retired
check "its OCSP signer test-ocsp-2 hangs under it" test "$(sqlite3 "$D/kiln.db" "SELECT p.name FROM cas o JOIN cas p ON o.parent_id = p.id WHERE o.name = 'test-ocsp-2'")" = test-issuing-2
check "kiln ca list shows both, the old retired-for-issuance" sh -c "kiln_out=\$('$KILN_BIN' --dir '$D' ca list) && echo \"\$kiln_out\" | grep -q '^test-issuing .*retired-for-issuance' && echo \"\$kiln_out\" | grep -q '^test-issuing-2 .* 2 *active'"
"${P11[@]}" --list-objects >"$T/p11.txt" 2>/dev/null
check "the token holds the new key pair and the OCSP signer's (4 objects more)" test "$(objects)" -eq $((OBJ0 + 4))
check "pkcs11-tool: new private key is sensitive and never extractable" python3 - "$T/p11.txt" <<'EOF'
import re, sys
blocks = re.split(r'\n(?=\S)', open(sys.argv[1]).read())
keys = [b for b in blocks if b.startswith('Private Key Object') and re.search(r'label:\s+test-issuing-2\s*$', b, re.M)]
assert len(keys) == 1, keys
k = keys[0]
assert re.search(r'Access:.*\bsensitive\b', k) and re.search(r'never extractable', k), k
assert re.search(r'Usage:.*\bsign\b', k), k
EOF

kiln --dir "$D" ca chain --env test >"$T/chain2.pem"
awk '/BEGIN CERT/{n++} n==1' "$T/chain2.pem" >"$T/issuing2.pem"
check "ca chain --env test: the new issuing CA first" sh -c "openssl x509 -in '$T/issuing2.pem' -noout -subject | grep -q 'Test Issuing CA 2'"
check "ca chain ends with the same root" sh -c "awk '/BEGIN CERT/{n++} n==2' '$T/chain2.pem' | cmp - '$T/root.pem'"
check "the new issuing CA verifies against the root" openssl verify -CAfile "$T/root.pem" "$T/issuing2.pem"
openssl x509 -in "$T/issuing2.pem" -noout -text >"$T/issuing2.txt"
check "profile as kiln init's: CA:TRUE, pathlen:0, critical keyCertSign+cRLSign, SKI, AKI" sh -c "grep -q 'CA:TRUE, pathlen:0' '$T/issuing2.txt' && grep -A1 'Key Usage: critical' '$T/issuing2.txt' | grep -q 'Certificate Sign, CRL Sign' && grep -q 'Subject Key Identifier' '$T/issuing2.txt' && grep -q 'Authority Key Identifier' '$T/issuing2.txt'"
check "the AKI of the new CA is the root's SKI" test \
	"$(openssl x509 -in "$T/root.pem" -noout -ext subjectKeyIdentifier | tail -1 | tr -d ' ')" = \
	"$(openssl x509 -in "$T/issuing2.pem" -noout -ext authorityKeyIdentifier | tail -1 | tr -d ' ' | sed 's/^keyid://')"

for i in 1 2; do
	csr p256 "$T/new$i" "/CN=TST-ROT-NEW-$i"
	check "issue new device $i" kiln --dir "$D" issue --product widget-test --csr "$T/new$i.csr" --out "$T/newchain$i.pem"
	leaf "$T/newchain$i.pem" >"$T/new$i.pem"
done
check "new certificates are issued by the new CA" sh -c "openssl x509 -in '$T/new1.pem' -noout -issuer | grep -q 'Test Issuing CA 2'"
check "new certificate verifies through the new CA" openssl verify -CAfile "$T/root.pem" -untrusted "$T/issuing2.pem" "$T/new1.pem"
check "new certificate does not verify through the old CA" sh -c "! openssl verify -CAfile '$T/root.pem' -untrusted '$T/issuing1.pem' '$T/new1.pem' >/dev/null 2>&1"
check "old certificate still verifies through the old CA" openssl verify -CAfile "$T/root.pem" -untrusted "$T/issuing1.pem" "$T/old1.pem"
check "old certificate does not verify through the new CA" sh -c "! openssl verify -CAfile '$T/root.pem' -untrusted '$T/issuing2.pem' '$T/old1.pem' >/dev/null 2>&1"
check "the inventory records the new certificate under test-issuing-2" test \
	"$(sqlite3 "$D/kiln.db" "SELECT c.name FROM certificates x JOIN cas c ON x.ca_id = c.id WHERE x.serial = '$(serial "$T/new1.pem")'")" = test-issuing-2
refuse "the retired CA issues no more" "retired for issuance" kiln --dir "$D" issue --product widget-test --csr "$T/new2.csr" --ca test-issuing --device-serial TST-ROT-X

# ---------------------------------------------------------------- revocation after rotation
check "revoke an old certificate" kiln --dir "$D" revoke --serial "$(serial "$T/old1.pem")" --reason keyCompromise
check "revoke a new certificate" kiln --dir "$D" revoke --serial "$(serial "$T/new2.pem")" --reason superseded
check "kiln crl --env test: both CAs' CRLs" kiln --dir "$D" --json crl --env test --out "$T/active.crl"
check "two CRLs, the active CA's at the top" test "$(json "$T/.out" 'j["ca"], len(j["crls"]), sorted(c["ca"] for c in j["crls"])')" = "test-issuing-2 2 ['test-issuing', 'test-issuing-2']"
check "the old CA's CRL verifies with the old CA" openssl crl -inform DER -in "$D/crl/test-issuing.crl" -CAfile "$T/issuing1.pem" -noout
check "the old CA's CRL lists the old certificate, not the new" sh -c "openssl crl -inform DER -in '$D/crl/test-issuing.crl' -noout -text >'$T/crl1.txt' && grep -qi 'Serial Number: $(serial "$T/old1.pem")' '$T/crl1.txt' && ! grep -qi 'Serial Number: $(serial "$T/new2.pem")' '$T/crl1.txt'"
check "the new CA's CRL verifies with the new CA and lists the new certificate only" sh -c "openssl crl -inform DER -in '$D/crl/test-issuing-2.crl' -CAfile '$T/issuing2.pem' -noout -text >'$T/crl2.txt' 2>&1 && grep -q 'verify OK' '$T/crl2.txt' && grep -qi 'Serial Number: $(serial "$T/new2.pem")' '$T/crl2.txt' && ! grep -qi 'Serial Number: $(serial "$T/old1.pem")' '$T/crl2.txt'"
check "--out got the active CA's CRL" cmp "$T/active.crl" "$D/crl/test-issuing-2.crl"
check "kiln crl --ca test-issuing: just that one" kiln --dir "$D" crl --env test --ca test-issuing
refuse "kiln crl --ca of another environment" "no issuing CA" kiln --dir "$D" crl --env test --ca production-issuing

HP=$(free_port)
H=http://127.0.0.1:$HP
check "serve with --listen-http" serve_start "$D" --listen-http "127.0.0.1:$HP"
ocsp() { # ISSUER CERT: openssl ocsp's verdict line for CERT
	openssl ocsp -issuer "$1" -cert "$2" -url "$H/ocsp" -CAfile "$T/root.pem" >"$T/ocsp.txt" 2>&1
	grep -q 'Response verify OK' "$T/ocsp.txt" && grep "^$2:" "$T/ocsp.txt" | cut -d' ' -f2
}
check "OCSP, old CA: revoked old certificate is revoked" test "$(ocsp "$T/issuing1.pem" "$T/old1.pem")" = revoked
check "OCSP, old CA: other old certificate is good" test "$(ocsp "$T/issuing1.pem" "$T/old2.pem")" = good
check "OCSP, new CA: new certificate is good" test "$(ocsp "$T/issuing2.pem" "$T/new1.pem")" = good
check "OCSP, new CA: revoked new certificate is revoked" test "$(ocsp "$T/issuing2.pem" "$T/new2.pem")" = revoked
# openssl takes the CertID's name hash from the certificate's issuer: the old CA's name with
# the new CA's key names no CA kiln has.
check "OCSP: old certificate asked with the new CA's key: unauthorized" sh -c "openssl ocsp -issuer '$T/issuing2.pem' -cert '$T/old3.pem' -url '$H/ocsp' -CAfile '$T/root.pem' 2>&1 | grep -q 'unauthorized (6)'"
check "OCSP, new CA: an old serial under the new CA's name is unknown" sh -c "openssl ocsp -issuer '$T/issuing2.pem' -serial 0x$(serial "$T/old3.pem") -url '$H/ocsp' -CAfile '$T/root.pem' 2>&1 | grep -q ': unknown'"
check "the new CA's responder is its own delegated signer" sh -c "openssl ocsp -issuer '$T/issuing2.pem' -cert '$T/new1.pem' -url '$H/ocsp' -CAfile '$T/root.pem' -resp_text 2>&1 | grep -q 'CN=kiln test OCSP responder 2'"
check "a revocation of another old certificate reaches OCSP while serving" kiln --dir "$D" revoke --serial "$(serial "$T/old3.pem")" --reason superseded --wait 20
check "... and the old CA answers revoked" test "$(ocsp "$T/issuing1.pem" "$T/old3.pem")" = revoked
ok=0
for _ in $(seq 50); do
	curl -sf -o "$T/served1.crl" "$H/crl/test-issuing.crl" &&
		[ "$(openssl crl -inform DER -in "$T/served1.crl" -noout -text | grep -c 'Serial Number')" = 2 ] && { ok=1; break; }
	sleep 0.2
done
check "serve publishes the old CA's CRL with both old revocations" test "$ok" = 1
check "serve publishes the new CA's CRL" sh -c "curl -sf -o '$T/served2.crl' '$H/crl/test-issuing-2.crl' && openssl crl -inform DER -in '$T/served2.crl' -CAfile '$T/issuing2.pem' -noout"
check "serve stops" serve_stop

# ---------------------------------------------------------------- a second rotation, another algorithm
check "request generation 3 in p384" kiln --dir "$D" --json ca rotate --env test --algorithm p384
R3=$(json "$T/.out" 'j["request"]')
check "it names test-issuing-3" test "$(json "$T/.out" 'j["name"]')" = test-issuing-3
# An older request for the same generation, made before R3 ran, goes stale.
check "a competing request for generation 3" kiln --dir "$D" --json ca rotate --env test
R3B=$(json "$T/.out" 'j["request"]')
for k in "$OA" "$OB"; do kiln --dir "$D" approve "$R3" --key "$k" >/dev/null; kiln --dir "$D" approve "$R3B" --key "$k" >/dev/null; done
check "generation 3 runs" kiln --dir "$D" ca rotate --request "$R3"
OBJ3=$(objects)
refuse "the stale request for generation 3 is refused" "make a new request" kiln --dir "$D" ca rotate --request "$R3B"
check "... and made no key" test "$(objects)" -eq "$OBJ3"
check "test-issuing-3 is P-384 with the CN numbered 3" sh -c "'$KILN_BIN' --dir '$D' ca chain --env test | openssl x509 -noout -text | grep -q 'ASN1 OID: secp384r1' && '$KILN_BIN' --dir '$D' ca chain --env test | openssl x509 -noout -subject | grep -q 'Test Issuing CA 3\$'"
check "one active test issuing CA, two retired" test "$(sqlite3 "$D/kiln.db" "SELECT group_concat(status, ',') FROM (SELECT status FROM cas WHERE env = 'test' AND role = 'issuing' ORDER BY generation)")" = retired,retired,active
csr p256 "$T/new3" "/CN=TST-ROT-NEW-3"
check "issue under generation 3" kiln --dir "$D" issue --product widget-test --csr "$T/new3.csr" --out "$T/newchain3.pem"
check "chain of generation 3 verifies" sh -c "awk '/BEGIN CERT/{n++} n==1' '$T/newchain3.pem' >'$T/n3.pem' && awk '/BEGIN CERT/{n++} n==2' '$T/newchain3.pem' >'$T/i3.pem' && openssl verify -CAfile '$T/root.pem' -untrusted '$T/i3.pem' '$T/n3.pem'"

# ---------------------------------------------------------------- expiry
sed -i 's/^  request_ttl_s: .*/  request_ttl_s: 3/' "$D/kiln.yaml"
check "a request that will expire" kiln --dir "$D" --json ca rotate --env production
RE=$(json "$T/.out" 'j["request"]')
kiln --dir "$D" approve "$RE" --key "$OA" >/dev/null
kiln --dir "$D" approve "$RE" --key "$OB" >/dev/null
sleep 4
P11P=(pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --token-label kiln-prod --login --pin "$(cat "$D/secrets/kiln-prod.pin")")
PROD0=$("${P11P[@]}" --list-objects 2>/dev/null | grep -c '^ *label:')
refuse "an expired request cannot run, approved or not" "expired at" kiln --dir "$D" ca rotate --request "$RE"
check "no key in the production token" test "$("${P11P[@]}" --list-objects 2>/dev/null | grep -c '^ *label:')" -eq "$PROD0"
check "production-issuing stays the only production issuing CA" test "$(rows "$D" cas "env = 'production' AND role = 'issuing'")" -eq 1

# ---------------------------------------------------------------- evidence
check "ca-rotate events: one per rotation" test "$(rows "$D" events "type = 'ca-rotate'")" -eq 2
check "the rotation event names request, retired and active CA" test \
	"$(sqlite3 "$D/kiln.db" "SELECT json_extract(detail, '\$.request') || ' ' || json_extract(detail, '\$.retired') || ' ' || json_extract(detail, '\$.active') FROM events WHERE type = 'ca-rotate' ORDER BY seq LIMIT 1")" = "$R test-issuing test-issuing-2"
check "the approvals are events" test "$(rows "$D" events "type = 'approval' AND subject = '$R'")" -eq 2
check "the request and its execution are events" test "$(rows "$D" events "(type = 'request' OR type = 'request-executed') AND subject = '$R'")" -eq 2
check "refusals of the request are events" test "$(rows "$D" events "type = 'request-refused' AND subject = '$R' AND detail LIKE '%approvals-missing%'")" -eq 1
check "refusal of the run twice is an event" test "$(rows "$D" events "type = 'request-refused' AND subject = '$R' AND detail LIKE '%request-executed%'")" -eq 1
check "refusal of the stale request is an event" test "$(rows "$D" events "type = 'request-refused' AND subject = '$R3B' AND detail LIKE '%request-mismatch%'")" -eq 1
check "refusal of the expired request is an event" test "$(rows "$D" events "type = 'request-refused' AND subject = '$RE' AND detail LIKE '%request-expired%'")" -eq 1
check "approval refusals are events" test "$(rows "$D" events "type = 'approval-refused' AND subject = '$R'")" -ge 1
check "role refusals are events" test "$(rows "$D" events "type = 'auth-failure' AND subject = 'cli'")" -ge 2
check "kiln audit verify" kiln --dir "$D" audit verify
finish
