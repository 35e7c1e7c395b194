#!/usr/bin/env bash
# Revocation and CRLs: a station's output in a time window is recalled with
# kiln revoke, which only makes a revoke-bulk request: nothing is revoked until
# two officers other than the requester approve it, and the recall runs in the
# transaction of the approval that completes the quorum, once, before the
# request expires; an operator cannot approve. kiln crl issues a CRL that OpenSSL and GnuTLS accept and that
# lists exactly the recalled set; revoked certificates then fail
# `openssl verify -crl_check` and `certtool --verify`, the others pass.
# Refusals (unknown serial, bad reason, twice, bad window) change nothing but
# a rejection event. CRL numbers only grow.
. "$(dirname "$0")/lib.sh"

D=$T/d
check "init + policies" deploy "$D"
check "station st-1" kiln --dir "$D" identity add --name st-1 --role station --out "$T/st-1"
check "station st-2" kiln --dir "$D" identity add --name st-2 --role station --out "$T/st-2"
check "lot" kiln --dir "$D" batch open --product widget --lot LOT-R --quantity 10
HP=$(free_port)
check "serve (with --listen-http)" serve_start "$D" --listen-http "127.0.0.1:$HP"

prov() { # STATION SERIAL
	"$KILN_DEVICE_BIN" init --state "$T/dev-$2" --rot dice --serial "$2" >/dev/null &&
		"$KILN_DEVICE_BIN" provision --state "$T/dev-$2" --server "$URL" --cert "$T/$1.crt" \
			--key "$T/$1.key" --ca "$T/service.pem" --product widget --lot LOT-R >/dev/null
}
serial_of() { openssl x509 -in "$T/dev-$1/cert.pem" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f'; }

FROM=$(date +%s)
check "st-1 provisions WR-1" prov st-1 WR-1
check "st-1 provisions WR-2" prov st-1 WR-2
check "st-2 provisions WR-3 (another station, inside the window)" prov st-2 WR-3
sleep 1.2
TO=$(date +%s)
sleep 1.2
check "st-1 provisions WR-4 (after the window)" prov st-1 WR-4

kiln --dir "$D" ca chain --env production >"$T/prod.pem"
awk '/BEGIN CERT/{n++} n==1' "$T/prod.pem" >"$T/issuing.pem"
awk '/BEGIN CERT/{n++} n==2' "$T/prod.pem" >"$T/root.pem"
leaf() { awk '/BEGIN CERT/{n++} n==1' "$T/dev-$1/cert.pem" >"$T/$1.pem"; }
for s in WR-1 WR-2 WR-3 WR-4; do leaf $s; done

# --- refusals first: nothing changes but rejection events
rej0=$(rows "$D" events "type='rejection'")
refuse "unknown serial" "no certificate 0123456789abcdef" kiln --dir "$D" revoke --serial 0123456789abcdef --reason keyCompromise
refuse "bad reason" "unknown revocation reason" kiln --dir "$D" revoke --serial "$(serial_of WR-1)" --reason compromised
refuse "two ways at once" "exactly one of" kiln --dir "$D" revoke --serial "$(serial_of WR-1)" --batch LOT-R --reason keyCompromise
refuse "window ends before it starts" "must end after it starts" kiln --dir "$D" revoke --station st-1 --from "$TO" --to "$FROM" --reason keyCompromise
refuse "empty recall (refused at request time)" "no valid certificate matches" kiln --dir "$D" revoke --station st-9 --reason keyCompromise
refuse "no reason" "--reason is required" kiln --dir "$D" revoke --serial "$(serial_of WR-1)"
check "no revocation recorded" test "$(rows "$D" revocations)" -eq 0
check "no certificate revoked" test "$(rows "$D" certificates "status='revoked'")" -eq 0
check "each refusal left a rejection event" test "$(rows "$D" events "type='rejection'")" -eq $((rej0 + 5))
check "the empty recall stored no request" test "$(rows "$D" requests "operation='revoke-bulk'")" -eq 0

# --- an empty CRL first (number 1)
check "kiln crl (empty)" kiln --dir "$D" crl --env production --out "$T/crl1.der"
check "empty CRL verifies against the issuing CA" openssl crl -inform DER -in "$T/crl1.der" -CAfile "$T/issuing.pem" -noout
n1=$(openssl crl -inform DER -in "$T/crl1.der" -noout -crlnumber | cut -d= -f2)
check "CRL has a number" test -n "$n1"
check "the CRL file is published under DIR/crl" cmp "$T/crl1.der" "$D/crl/production-issuing.crl"

# --- the recall: what st-1 produced in [FROM, TO), gated by two officers
status_of() { openssl ocsp -issuer "$T/issuing.pem" -cert "$T/$1.pem" -url "http://127.0.0.1:$HP/ocsp" -CAfile "$T/cas.pem" 2>/dev/null | grep -o "$1.pem: [a-z]*" | cut -d' ' -f2; }
cat "$T/root.pem" "$T/issuing.pem" >"$T/cas.pem"
check "recall st-1 in the window: a request" kiln --dir "$D" revoke --station st-1 --from "$FROM" --to "$TO" --reason keyCompromise --json
cp "$T/.out" "$T/recall.json"
R=$(json "$T/recall.json" 'j["request"]')
check "the request names revoke-bulk and matched 2 certificates" test \
	"$(json "$T/recall.json" 'j["operation"] + " " + str(j["matched"]) + " " + str(j["quorum"])')" = "revoke-bulk 2 2"
check "its params: the selector, window and reason" test \
	"$(sqlite3 "$D/kiln.db" "SELECT params FROM requests WHERE id = '$R'")" = \
	"{\"count\":2,\"from\":$FROM,\"reason\":\"keyCompromise\",\"station\":\"st-1\",\"to\":$TO}"
check "a request event" test "$(rows "$D" events "type='request' AND subject='$R'")" -eq 1
check "nothing revoked by the request" test "$(rows "$D" certificates "status='revoked'")" -eq 0
check "OCSP: WR-1 and WR-2 still good" test "$(status_of WR-1) $(status_of WR-2)" = "good good"
check "officer a approves (1 of 2)" kiln --dir "$D" approve "$R" --key "$D/kt-officer-a.key"
cp "$T/.out" "$T/approve1.txt"
check "... and says so" grep -q "(1 of 2)$" "$T/approve1.txt"
check "one approval is not enough: nothing revoked" test "$(rows "$D" certificates "status='revoked'")" -eq 0
check "one approval is not enough: no revocation recorded" test "$(rows "$D" revocations)" -eq 0
check "a CRL after one approval" kiln --dir "$D" crl --env production --out "$T/crl-mid.der"
openssl crl -inform DER -in "$T/crl-mid.der" -out "$T/crl-mid.pem"
check "one approval: openssl verify -crl_check still accepts WR-1" openssl verify -crl_check -CAfile "$T/cas.pem" -CRLfile "$T/crl-mid.pem" "$T/WR-1.pem"
check "one approval: OCSP WR-1 good" test "$(status_of WR-1)" = good
check "operator identity" kiln --dir "$D" identity add --name op-1 --role operator --out "$T/op-1"
refuse "an operator cannot approve" "only officers approve" kiln --dir "$D" approve "$R" --key "$T/op-1.key"
refuse "an officer approves once" "has already approved" kiln --dir "$D" approve "$R" --key "$D/kt-officer-a.key"
check "still nothing revoked" test "$(rows "$D" certificates "status='revoked'")" -eq 0
check "officer b approves: the recall runs" kiln --dir "$D" --json approve "$R" --key "$D/kt-officer-b.key"
cp "$T/.out" "$T/approve.json"
check "executed, 2 revoked" test "$(json "$T/approve.json" 'str(j["executed"]) + " " + str(j["affected"])')" = "True 2"
check "the request is executed" test "$(kiln --dir "$D" request show "$R" --json | json /dev/stdin 'j["status"]')" = executed
printf '%s\n' "$(serial_of WR-1)" "$(serial_of WR-2)" | sort >"$T/want.txt"
sqlite3 "$D/kiln.db" "SELECT serial FROM certificates WHERE status='revoked' ORDER BY serial" >"$T/got.txt"
check "the recall is exactly WR-1 and WR-2" cmp "$T/want.txt" "$T/got.txt"
check "devices WR-1, WR-2 revoked, WR-3, WR-4 active" test \
	"$(sqlite3 "$D/kiln.db" "SELECT group_concat(serial || ':' || status, ' ') FROM (SELECT serial, status FROM devices ORDER BY serial)")" = \
	"WR-1:revoked WR-2:revoked WR-3:active WR-4:active"
check "one revocation event per certificate, naming the request, by officer b" test \
	"$(rows "$D" events "type='revocation' AND actor='kt-officer-b' AND detail LIKE '%\"request\":\"$R\"%'")" -eq 2
# The approval, the two revocations and request-executed are one commit: consecutive events.
ids=$(sqlite3 "$D/kiln.db" "SELECT min(seq) || ' ' || max(seq) || ' ' || count(*) FROM events WHERE (subject='$R' AND type IN ('approval','request-executed') AND actor='kt-officer-b') OR type='revocation'")
read -r lo hi n <<<"$ids"
check "approval, revocations and request-executed are consecutive events ($ids)" test "$n" -eq 4 -a "$((hi - lo))" -eq 3
check "officer c" officer_c "$D" "$T/officer-c"
refuse "the recall cannot run twice" "was already executed" kiln --dir "$D" approve "$R" --key "$T/officer-c.key"
check "still 2 revocations" test "$(rows "$D" revocations)" -eq 2
# OCSP shows exactly the recalled set, within seconds
ok=0
for _ in $(seq 50); do
	[ "$(status_of WR-1) $(status_of WR-2)" = "revoked revoked" ] && { ok=1; break; }
	sleep 0.1
done
check "OCSP: WR-1 and WR-2 revoked within 5 s" test "$ok" = 1
check "OCSP: WR-3 (other station) and WR-4 (after the window) good" test "$(status_of WR-3) $(status_of WR-4)" = "good good"
refuse "revoking WR-1 again" "was already revoked at" kiln --dir "$D" revoke --serial "$(serial_of WR-1)" --reason superseded
check "one more single revocation (WR-3, by device)" kiln --dir "$D" revoke --device widget/WR-3 --reason cessationOfOperation

check "kiln crl" kiln --dir "$D" crl --env production --out "$T/crl2.der"
n2=$(openssl crl -inform DER -in "$T/crl2.der" -noout -crlnumber | cut -d= -f2)
check "CRL number grew ($n1 -> $n2)" test "$((n2))" -gt "$((n1))"
check "CRL verifies against the issuing CA" openssl crl -inform DER -in "$T/crl2.der" -CAfile "$T/issuing.pem" -noout
openssl crl -inform DER -in "$T/crl2.der" -noout -text >"$T/crl2.txt"
grep -o 'Serial Number: [0-9A-F]*' "$T/crl2.txt" | awk '{print tolower($3)}' | sort >"$T/crl-serials.txt"
printf '%s\n' "$(serial_of WR-1)" "$(serial_of WR-2)" "$(serial_of WR-3)" | sort >"$T/want3.txt"
check "the CRL lists exactly the revoked set" cmp "$T/want3.txt" "$T/crl-serials.txt"
check "reason codes in the CRL" sh -c "grep -c 'Key Compromise' '$T/crl2.txt' | grep -qx 2 && grep -q 'Cessation Of Operation' '$T/crl2.txt'"
openssl crl -inform DER -in "$T/crl2.der" -out "$T/crl2.pem"
cat "$T/root.pem" "$T/issuing.pem" >"$T/cas.pem"
for s in WR-1 WR-2 WR-3; do
	if openssl verify -crl_check -CAfile "$T/cas.pem" -CRLfile "$T/crl2.pem" "$T/$s.pem" >"$T/v.txt" 2>&1; then
		fail "openssl verify -crl_check accepted revoked $s"
	elif grep -q "certificate revoked" "$T/v.txt"; then pass "openssl verify -crl_check: $s revoked"
	else fail "openssl verify -crl_check on $s: $(cat "$T/v.txt")"; fi
done
check "openssl verify -crl_check accepts WR-4" openssl verify -crl_check -CAfile "$T/cas.pem" -CRLfile "$T/crl2.pem" "$T/WR-4.pem"
check "certtool accepts the CRL" certtool --crl-info --inder --infile "$T/crl2.der"
check "certtool verifies the CRL's signature" certtool --verify-crl --load-ca-certificate "$T/issuing.pem" --infile "$T/crl2.pem"
if certtool --verify --load-ca-certificate "$T/root.pem" --load-crl "$T/crl2.pem" --infile <(cat "$T/WR-1.pem" "$T/issuing.pem") >"$T/ct.txt" 2>&1; then
	fail "certtool --verify accepted revoked WR-1"
elif grep -qi "revoked" "$T/ct.txt"; then pass "certtool --verify: WR-1 revoked"
else fail "certtool --verify on WR-1: $(tail -n 3 "$T/ct.txt")"; fi
check "certtool --verify accepts WR-4" certtool --verify --load-ca-certificate "$T/root.pem" --load-crl "$T/crl2.pem" --infile <(cat "$T/WR-4.pem" "$T/issuing.pem")
if command -v pki >/dev/null; then
	if pki --verify --in "$T/WR-1.pem" --cacert "$T/root.pem" --cacert "$T/issuing.pem" --crl "$T/crl2.der" >"$T/pk.txt" 2>&1; then
		fail "strongSwan pki accepted revoked WR-1"
	else pass "strongSwan pki --verify --crl: WR-1 refused"; fi
	check "strongSwan pki --verify --crl accepts WR-4" pki --verify --in "$T/WR-4.pem" --cacert "$T/root.pem" --cacert "$T/issuing.pem" --crl "$T/crl2.der"
fi
# --- a recall over HTTPS: 202 and a request; the requester's own approval does not count;
# an expired recall cannot run
echo '{"lot":"LOT-R","reason":"superseded"}' >"$T/rv-lot.json"
st=$(api "$T/op-1" POST /v1/revocations "$T/rv-lot.json")
check "operator may not ask for a recall (403)" problem_is 403 forbidden "$st"
sed -i 's/^  request_ttl_s: .*/  request_ttl_s: 15/' "$D/kiln.yaml"
E=$(kiln --dir "$D" --json revoke --batch LOT-R --reason superseded | json /dev/stdin 'j["request"]')
sed -i 's/^  request_ttl_s: .*/  request_ttl_s: 86400/' "$D/kiln.yaml"
check "approve the short-lived recall once" kiln --dir "$D" approve "$E" --key "$D/kt-officer-a.key"
past_expiry "$D" "$E"
refuse "an expired recall cannot run" "expired at" kiln --dir "$D" approve "$E" --key "$D/kt-officer-b.key"
check "WR-4 still valid after the expired recall" test "$(rows "$D" certificates "serial='$(serial_of WR-4)' AND status='valid'")" -eq 1
st=$(api "$D/kt-officer-a" POST /v1/revocations "$T/rv-lot.json")
check "officer a asks for the lot's recall: 202" test "$st" = 202
H=$(json "$T/api.body" 'j["request"]')
check "Location: /v1/requests/ID" grep -qi "^location: /v1/requests/$H" "$T/api.headers"
check "the recall matched WR-4 only (the rest is revoked)" test "$(json "$T/api.body" 'j["matched"]')" = 1
refuse "the requester's own approval does not count" "own approval does not count" kiln --dir "$D" approve "$H" --key "$D/kt-officer-a.key"
kiln --dir "$D" request show "$H" --json | json /dev/stdin 'j["digest"]' | python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.stdin.read().strip()))' >"$T/digest.bin"
openssl dgst -sha256 -sign "$D/kt-officer-a.key" -out "$T/self.sig" "$T/digest.bin"
echo "{\"signature\":\"$(base64 -w0 "$T/self.sig")\"}" >"$T/self.json"
st=$(api "$D/kt-officer-a" POST "/v1/requests/$H/approvals" "$T/self.json")
check "... nor over HTTPS (403 approval-self)" problem_is 403 approval-self "$st"
echo '{"signature":"AAAA"}' >"$T/sig.json"
st=$(api "$T/op-1" POST "/v1/requests/$H/approvals" "$T/sig.json")
check "an operator cannot approve over HTTPS (403)" problem_is 403 forbidden "$st"
check "officer b approves (1 of 2)" kiln --dir "$D" approve "$H" --key "$D/kt-officer-b.key"
check "WR-4 still valid: one non-requester approval is not enough" test "$(rows "$D" certificates "serial='$(serial_of WR-4)' AND status='valid'")" -eq 1
check "officer c approves: the recall runs" kiln --dir "$D" approve "$H" --key "$T/officer-c.key"
cp "$T/.out" "$T/approve3.txt"
check "... and says so" grep -q "recall executed: 1 certificates revoked" "$T/approve3.txt"
check "WR-4 revoked (superseded)" test "$(sqlite3 "$D/kiln.db" "SELECT status || ' ' || reason FROM certificates WHERE serial='$(serial_of WR-4)'")" = "revoked superseded"
check "refusals of approvals are events" test "$(rows "$D" events "type='approval-refused'")" -ge 5
check "graceful stop" serve_stop
check "CRL numbers only grow (kiln serve issued some too)" test "$(sqlite3 "$D/kiln.db" "SELECT count(*) FROM crls a JOIN crls b ON a.ca_id = b.ca_id AND a.number < b.number AND a.this_update > b.this_update")" -eq 0
check "every CRL has a crl-issue event" test "$(rows "$D" events "type='crl-issue'")" -eq "$(rows "$D" crls)"
refuse "crl for the service environment" "--env production or --env test" kiln --dir "$D" crl --env service
finish
