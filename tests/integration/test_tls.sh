#!/usr/bin/env bash
# kiln serve's TLS, checked with curl and openssl s_client: TLS 1.2 and 1.3
# only, mutual TLS on /v1, RFC 9457 problems for every refusal, caps.
. "$(dirname "$0")/lib.sh"

D=$T/d
check "deploy" deploy "$D"
check "station" kiln --dir "$D" identity add --name st-1 --role station --out "$T/st-1"
check "engineer" kiln --dir "$D" identity add --name eng --role engineer --out "$T/eng"
check "lot" kiln --dir "$D" batch open --product widget --lot LOT-T --quantity 5
check "serve" serve_start "$D"

# What was negotiated, from s_client's own report (its exit status also reflects how the
# connection was closed afterwards, which is not what is tested here).
handshake() { # VERSION_LABEL s_client-args...: succeeds when that version was negotiated
	local want=$1; shift
	openssl s_client -connect "127.0.0.1:$PORT" -CAfile "$T/service.pem" "$@" </dev/null >"$T/s.out" 2>&1
	grep -qE "^New, $want, Cipher is [A-Z0-9]" "$T/s.out"
}
check "TLS 1.3 handshake" handshake TLSv1.3 -tls1_3
check "TLS 1.2 handshake" handshake TLSv1.2 -tls1_2
# SECLEVEL=0 lets this OpenSSL client offer TLS 1.0/1.1 at all: the refusal is the server's.
if handshake 'TLSv1(\.0)?' -tls1 -cipher 'DEFAULT:@SECLEVEL=0'; then fail "TLS 1.0 accepted"
elif grep -q "Cipher is (NONE)" "$T/s.out"; then pass "TLS 1.0 refused"; else fail "TLS 1.0: no handshake report"; fi
if handshake 'TLSv1\.1' -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0'; then fail "TLS 1.1 accepted"
elif grep -q "Cipher is (NONE)" "$T/s.out"; then pass "TLS 1.1 refused"; else fail "TLS 1.1: no handshake report"; fi
check "the server certificate verifies against the service CA for 127.0.0.1" \
	sh -c "openssl s_client -connect 127.0.0.1:$PORT -CAfile '$T/service.pem' -verify_ip 127.0.0.1 -verify_return_error </dev/null 2>&1 | grep -q 'Verify return code: 0 (ok)'"

check "public /healthz without a client certificate" test "$(api - GET /healthz)" = 200
st=$(api - GET /v1/batches/LOT-T)
check "/v1 without a client certificate: 401 problem" problem_is 401 client-certificate-required "$st"
check "the problem names the instance" test "$(json "$T/api.body" 'j["instance"]')" = /v1/batches/LOT-T
check "an auth-failure event was recorded" test "$(rows "$D" events "type = 'auth-failure' AND detail LIKE '%client-certificate-required%'")" -ge 1
# The same with openssl s_client, speaking HTTP by hand without a client certificate.
printf 'GET /v1/batches/LOT-T HTTP/1.1\r\nHost: kiln\r\nConnection: close\r\n\r\n' |
	openssl s_client -quiet -connect "127.0.0.1:$PORT" -CAfile "$T/service.pem" >"$T/raw.out" 2>/dev/null
check "openssl s_client without a client certificate: 401 on /v1" grep -q '^HTTP/1.1 401' "$T/raw.out"

# A client certificate from a CA kiln does not know.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/rogue-ca.key" \
	-subj /CN=rogue -days 1 -out "$T/rogue-ca.crt" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/rogue.key" -subj /CN=st-1 -out "$T/rogue.csr" 2>/dev/null
openssl x509 -req -in "$T/rogue.csr" -CA "$T/rogue-ca.crt" -CAkey "$T/rogue-ca.key" -CAcreateserial -days 1 -out "$T/rogue.crt" 2>/dev/null
st=$(api "$T/rogue" GET /v1/batches/LOT-T)
if [ "$st" = 200 ]; then fail "a foreign client certificate was accepted"; else pass "a foreign client certificate is refused (HTTP $st)"; fi

check "station reads its lot" test "$(api "$T/st-1" GET /v1/batches/LOT-T)" = 200
echo '{"product":"widget","lot":"LOT-X","quantity":1}' >"$T/b.json"
st=$(api "$T/st-1" POST /v1/batches "$T/b.json")
check "a station cannot open a batch: 403" problem_is 403 forbidden "$st"
st=$(api "$T/eng" POST /v1/provision/begin "$T/b.json")
check "an engineer cannot provision: 403" problem_is 403 forbidden "$st"
python3 -c 'print("{\"lot\": \"" + "x" * 70000 + "\"}")' >"$T/big.json"
st=$(api "$T/st-1" POST /v1/provision/begin "$T/big.json")
check "body over 64 KiB: 413 problem" problem_is 413 too-big "$st"
printf '{"lot": ' >"$T/broken.json"
st=$(api "$T/st-1" POST /v1/provision/begin "$T/broken.json")
check "malformed JSON: 400 problem" problem_is 400 malformed "$st"
check "the malformed body was recorded" test "$(rows "$D" events "type = 'rejection' AND detail LIKE '%malformed JSON%'")" -ge 1
echo '{"lot": "LOT-T", "colour": "red"}' >"$T/extra.json"
st=$(api "$T/st-1" POST /v1/provision/begin "$T/extra.json")
check "unknown member: 400 problem naming it" sh -c "[ $st = 400 ] && grep -q colour '$T/api.body'"
st=$(curl -s -o "$T/api.body" -w '%{http_code}' --cacert "$T/service.pem" --cert "$T/st-1.crt" --key "$T/st-1.key" \
	-H 'Content-Type: text/plain' --data-binary '{"lot":"LOT-T"}' "$URL/v1/provision/begin")
check "wrong content type: 415" test "$st" = 415
check "unknown route: 404" test "$(api "$T/st-1" GET /v1/nothing)" = 404
check "wrong method: 405" test "$(api "$T/st-1" GET /v1/provision/begin)" = 405
check "405 says what is allowed" grep -qi '^allow: POST' "$T/api.headers"
check "graceful stop" serve_stop
finish
