#!/usr/bin/env bash
# The OCSP responder of kiln serve --listen-http, checked with clients we did
# not write: openssl ocsp (POST with a nonce, GET, SHA-1 and SHA-256 CertIDs)
# and GnuTLS ocsptool. Good, revoked (time and reason) and unknown; an
# issuer kiln does not serve is "unauthorized", garbage is
# "malformedRequest", each with a rejection event and nothing else changed.
# A revocation (CLI and POST /v1/revocations) shows in OCSP within seconds,
# and its time to revoke is measured and recorded. The CRL is served too.
# Roles: an operator may not revoke.
. "$(dirname "$0")/lib.sh"

D=$T/d
check "init + policies" deploy "$D"
check "delegated OCSP signers made at init" test "$(rows "$D" cas "role='ocsp'")" -eq 2
for i in 1 2 3 4; do
	csr p256 "$T/dev$i" "/CN=TST-OCSP-000$i"
	check "issue device $i" kiln --dir "$D" issue --product widget-test --csr "$T/dev$i.csr" --out "$T/chain$i.pem"
	awk '/BEGIN CERT/{n++} n==1' "$T/chain$i.pem" >"$T/leaf$i.pem"
done
awk '/BEGIN CERT/{n++} n==2' "$T/chain1.pem" >"$T/issuing.pem"
awk '/BEGIN CERT/{n++} n==3' "$T/chain1.pem" >"$T/root.pem"
serial() { openssl x509 -in "$T/leaf$1.pem" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f'; }
# Officers are added through approvals (docs/roles.md): use one of the deployment's two.
check "officer" sh -c "cp '$D/kt-officer-a.crt' '$T/off.crt' && cp '$D/kt-officer-a.key' '$T/off.key'"
check "operator" kiln --dir "$D" identity add --name op-1 --role operator --out "$T/op"

HP=$(free_port)
H=http://127.0.0.1:$HP
check "serve with --listen-http" serve_start "$D" --listen-http "127.0.0.1:$HP"
check "plain-HTTP /healthz" curl -sf "$H/healthz"

ocsp() { # N [openssl ocsp options...]: asks about leaf N; output in $T/ocsp.txt
	local n=$1; shift
	openssl ocsp -issuer "$T/issuing.pem" "$@" -cert "$T/leaf$n.pem" -url "$H/ocsp" \
		-CAfile "$T/root.pem" -resp_text >"$T/ocsp.txt" 2>&1
}
check "openssl ocsp POST with a nonce: verifies, good" sh -c "$(declare -f ocsp); T='$T' H='$H' ocsp 1 && grep -q 'Response verify OK' '$T/ocsp.txt' && grep -q 'leaf1.pem: good' '$T/ocsp.txt' && grep -q 'OCSP Nonce' '$T/ocsp.txt'"
ocsp 1; cp "$T/ocsp.txt" "$T/first.txt"
check "responder is the delegated signer (OCSP Signing, OCSP No Check)" sh -c "grep -q 'OCSP Signing' '$T/first.txt' && grep -q 'OCSP No Check' '$T/first.txt' && grep -q 'CN=kiln test OCSP responder' '$T/first.txt'"
check "SHA-256 CertID: verifies, good" sh -c "$(declare -f ocsp); T='$T' H='$H' ocsp 2 -sha256 -no_nonce && grep -q 'leaf2.pem: good' '$T/ocsp.txt' && grep -q 'Hash Algorithm: sha256' '$T/ocsp.txt'"
# GET (RFC 6960 A.1): the request base64 in the path
openssl ocsp -issuer "$T/issuing.pem" -cert "$T/leaf3.pem" -no_nonce -reqout "$T/req3.der" >/dev/null 2>&1
B64=$(base64 -w0 "$T/req3.der" | python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.stdin.read(), safe=""))')
check "GET /ocsp/<base64>: 200 with a Cache-Control" sh -c "curl -sf -D '$T/get.h' -o '$T/get.der' '$H/ocsp/$B64' && grep -qi '^cache-control: max-age' '$T/get.h' && grep -qi '^content-type: application/ocsp-response' '$T/get.h'"
check "GET response verifies with openssl: good" sh -c "openssl ocsp -respin '$T/get.der' -issuer '$T/issuing.pem' -cert '$T/leaf3.pem' -CAfile '$T/root.pem' 2>&1 | grep -q 'leaf3.pem: good'"
check "GnuTLS ocsptool --ask: good, signature verified" sh -c "ocsptool --ask='$H/ocsp' --load-issuer='$T/issuing.pem' --load-cert='$T/leaf4.pem' >'$T/gt.txt' 2>&1; grep -q 'Certificate Status: good' '$T/gt.txt' && grep -q 'Verifying OCSP Response: Success' '$T/gt.txt'"
check "unknown serial: unknown" sh -c "openssl ocsp -issuer '$T/issuing.pem' -serial 0x0123456789abcdef -url '$H/ocsp' -CAfile '$T/root.pem' 2>&1 | grep -q ': unknown'"

# --- refusals: nothing changes but rejection events
rej0=$(rows "$D" events "type='rejection'")
revs0=$(rows "$D" revocations)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/foreign.key" -subj /CN=Foreign -days 1 -out "$T/foreign.pem" 2>/dev/null
check "an issuer kiln does not serve: unauthorized" sh -c "openssl ocsp -issuer '$T/foreign.pem' -serial 0x01 -url '$H/ocsp' 2>&1 | grep -q 'unauthorized (6)'"
curl -s -H 'Content-Type: application/ocsp-request' --data-binary 'not an OCSP request' "$H/ocsp" -o "$T/bad.der"
check "garbage POST: malformedRequest" sh -c "openssl ocsp -respin '$T/bad.der' -noverify 2>&1 | grep -qi 'malformedrequest (1)'"
head -c 5000 /dev/urandom >"$T/big.bin"
curl -s -H 'Content-Type: application/ocsp-request' --data-binary "@$T/big.bin" "$H/ocsp" -o "$T/big.der"
check "oversized POST: malformedRequest" sh -c "openssl ocsp -respin '$T/big.der' -noverify 2>&1 | grep -qi 'malformedrequest (1)'"
curl -s "$H/ocsp/%%%not-base64" -o "$T/badget.der"
check "GET with bad base64: malformedRequest" sh -c "openssl ocsp -respin '$T/badget.der' -noverify 2>&1 | grep -qi 'malformedrequest (1)'"
# The listener's audit thread writes them just after the answers: wait for them (up to 20 s).
rej_is() { for _ in $(seq 200); do [ "$(rows "$D" events "type='rejection'")" -eq "$1" ] && return 0; sleep 0.1; done; return 1; }
check "four rejection events" rej_is $((rej0 + 4))
check "no revocation from refused requests" test "$(rows "$D" revocations)" -eq "$revs0"
check "DELETE /ocsp is 405" test "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$H/ocsp")" = 405

# --- a revocation shows within seconds, and its time is measured and recorded
check "kiln revoke --wait" kiln --dir "$D" revoke --serial "$(serial 1)" --reason keyCompromise --wait 10
cp "$T/.out" "$T/revoke.txt"
check "time to revoke printed" grep -Eq '^time to revoke: [0-9]+ ms from this command to OCSP' "$T/revoke.txt"
grep '^time to revoke' "$T/revoke.txt"
check "time to publish recorded on the revocation" test "$(sqlite3 "$D/kiln.db" "SELECT visible_ms >= 0 FROM revocations WHERE serial='$(serial 1)'")" = 1
check "revocation-published event" test "$(rows "$D" events "type='revocation-published' AND subject='$(serial 1)'")" -eq 1
check "openssl ocsp: revoked, keyCompromise, with the time" sh -c "$(declare -f ocsp); T='$T' H='$H' ocsp 1 && grep -q 'leaf1.pem: revoked' '$T/ocsp.txt' && grep -q 'Reason: keyCompromise' '$T/ocsp.txt' && grep -q 'Revocation Time' '$T/ocsp.txt'"
check "ocsptool: revoked" sh -c "ocsptool --ask='$H/ocsp' --load-issuer='$T/issuing.pem' --load-cert='$T/leaf1.pem' 2>&1 | grep -q 'Certificate Status: revoked'"
check "SHA-256 CertID: revoked" sh -c "$(declare -f ocsp); T='$T' H='$H' ocsp 1 -sha256 -no_nonce && grep -q 'leaf1.pem: revoked' '$T/ocsp.txt'"
check "GET (cached): revoked" sh -c "openssl ocsp -issuer '$T/issuing.pem' -cert '$T/leaf1.pem' -no_nonce -reqout '$T/req1.der' >/dev/null 2>&1; curl -sf -o '$T/get1.der' \"$H/ocsp/\$(base64 -w0 '$T/req1.der' | python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.stdin.read(), safe=\"\"))')\" && openssl ocsp -respin '$T/get1.der' -issuer '$T/issuing.pem' -cert '$T/leaf1.pem' -CAfile '$T/root.pem' 2>&1 | grep -q 'leaf1.pem: revoked'"

# --- POST /v1/revocations: officers and admins only
echo "{\"serial\":\"$(serial 2)\",\"reason\":\"superseded\"}" >"$T/rv.json"
st=$(api "$T/op" POST /v1/revocations "$T/rv.json")
check "operator may not revoke (403 forbidden)" problem_is 403 forbidden "$st"
check "... and nothing was revoked" test "$(rows "$D" certificates "serial='$(serial 2)' AND status='valid'")" -eq 1
echo '{"serial":"00ff","reason":"superseded"}' >"$T/rv-unknown.json"
st=$(api "$T/off" POST /v1/revocations "$T/rv-unknown.json")
check "unknown serial: 404 problem" problem_is 404 not-found "$st"
echo "{\"serial\":\"$(serial 2)\",\"reason\":\"stolen\"}" >"$T/rv-bad.json"
st=$(api "$T/off" POST /v1/revocations "$T/rv-bad.json")
check "bad reason: 400 problem" sh -c "test '$st' = 400 && grep -q 'unknown revocation reason' '$T/api.body'"
echo "{\"serial\":\"$(serial 2)\",\"device\":\"x\",\"reason\":\"superseded\"}" >"$T/rv-two.json"
st=$(api "$T/off" POST /v1/revocations "$T/rv-two.json")
check "two ways at once: 400 problem" sh -c "test '$st' = 400 && grep -q 'exactly one of' '$T/api.body'"
check "still valid after the refusals" test "$(rows "$D" certificates "serial='$(serial 2)' AND status='valid'")" -eq 1
st=$(api "$T/off" POST /v1/revocations "$T/rv.json")
check "officer revokes: 201" sh -c "test '$st' = 201 && grep -q '$(serial 2)' '$T/api.body'"
st=$(api "$T/off" POST /v1/revocations "$T/rv.json")
check "again: 409 already-revoked" problem_is 409 already-revoked "$st"
ok=0
for _ in $(seq 50); do
	ocsp 2 -no_nonce && grep -q 'leaf2.pem: revoked' "$T/ocsp.txt" && { ok=1; break; }
	sleep 0.1
done
check "the API revocation shows in OCSP within 5 s" test "$ok" = 1
check "reason superseded" grep -q 'Reason: superseded' "$T/ocsp.txt"
check "device 3 still good" sh -c "$(declare -f ocsp); T='$T' H='$H' ocsp 3 && grep -q 'leaf3.pem: good' '$T/ocsp.txt'"

# --- the CRL over plain HTTP, regenerated after the revocations (coalesced)
ok=0
for _ in $(seq 50); do
	curl -sf -o "$T/crl.der" "$H/crl/test-issuing.crl" &&
		[ "$(openssl crl -inform DER -in "$T/crl.der" -noout -text | grep -c 'Serial Number')" = 2 ] && { ok=1; break; }
	sleep 0.1
done
check "GET /crl/test-issuing.crl lists both revocations" test "$ok" = 1
check "served CRL verifies" openssl crl -inform DER -in "$T/crl.der" -CAfile "$T/issuing.pem" -noout
check "and is the file in DIR/crl" cmp "$T/crl.der" "$D/crl/test-issuing.crl"
check "unknown CRL: 404" test "$(curl -s -o /dev/null -w '%{http_code}' "$H/crl/nope.crl")" = 404
check "graceful stop" serve_stop
finish
