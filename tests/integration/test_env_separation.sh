#!/usr/bin/env bash
# Production and test strictly apart: a test policy cannot issue from the
# production CA, a production policy cannot issue from the test CA, and what
# each issues chains only to its own root.
. "$(dirname "$0")/lib.sh"

D=$T/d
check "deploy" deploy "$D"
csr p256 "$T/a" "/CN=WGT-0001"
csr p256 "$T/b" "/CN=WGT-0002"

before=$(rows "$D" certificates)
refuse "test policy on the production CA" "strictly apart" \
	kiln --dir "$D" issue --product widget-test --csr "$T/a.csr" --ca production-issuing
refuse "production policy on the test CA" "strictly apart" \
	kiln --dir "$D" issue --product widget --csr "$T/a.csr" --ca test-issuing
refuse "production policy on the service CA" "strictly apart" \
	kiln --dir "$D" issue --product widget --csr "$T/a.csr" --ca service-issuing
refuse "device straight from a root" "strictly apart" \
	kiln --dir "$D" issue --product widget --csr "$T/a.csr" --ca test-root
refuse "a production root cannot issue devices" "is a root" \
	kiln --dir "$D" issue --product widget --csr "$T/a.csr" --ca production-root
check "no certificate written by the refusals" test "$(rows "$D" certificates)" -eq "$before"
check "refusals recorded as rejection events" test "$(rows "$D" events "type='rejection' AND detail LIKE '%environment%'")" -ge 3

check "widget-test issues from the test CA" kiln --dir "$D" issue --product widget-test --csr "$T/a.csr" --out "$T/a.pem"
refuse "widget (production) is never issued without attestation" "requires dice attestation" \
	kiln --dir "$D" issue --product widget --csr "$T/b.csr" --out "$T/b.pem"
# The production device comes off the factory line: DICE evidence, kiln serve.
check "station" kiln --dir "$D" identity add --name st-1 --role station --out "$T/st-1"
check "lot" kiln --dir "$D" batch open --product widget --lot LOT-E --quantity 1
check "serve" serve_start "$D"
check "device" sh -c "'$KILN_DEVICE_BIN' init --state '$T/dev' --rot dice --serial WGT-0002 >/dev/null"
check "provision the production device" sh -c "'$KILN_DEVICE_BIN' provision --state '$T/dev' --server '$URL' --cert '$T/st-1.crt' --key '$T/st-1.key' --ca '$T/service.pem' --product widget --lot LOT-E >/dev/null"
cp "$T/dev/cert.pem" "$T/b.pem"
check "stop" serve_stop
kiln --dir "$D" ca chain --env production >"$T/prod.pem"
kiln --dir "$D" ca chain --env test >"$T/test.pem"
awk '/BEGIN CERT/{n++} n==1' "$T/a.pem" >"$T/a-leaf.pem"
awk '/BEGIN CERT/{n++} n==1' "$T/b.pem" >"$T/b-leaf.pem"
awk '/BEGIN CERT/{n++} n==2' "$T/prod.pem" >"$T/prod-root.pem"
awk '/BEGIN CERT/{n++} n==2' "$T/test.pem" >"$T/test-root.pem"
check "test device chains to the test root" openssl verify -CAfile "$T/test-root.pem" -untrusted "$T/test.pem" "$T/a-leaf.pem"
check "production device chains to the production root" openssl verify -CAfile "$T/prod-root.pem" -untrusted "$T/prod.pem" "$T/b-leaf.pem"
if openssl verify -CAfile "$T/prod-root.pem" -untrusted "$T/prod.pem" "$T/a-leaf.pem" >/dev/null 2>&1; then
	fail "test device verified against the production root"
else pass "test device does not verify against the production root"; fi
if openssl verify -CAfile "$T/test-root.pem" -untrusted "$T/test.pem" "$T/b-leaf.pem" >/dev/null 2>&1; then
	fail "production device verified against the test root"
else pass "production device does not verify against the test root"; fi
check "test certificate row is in the test environment" test \
	"$(sqlite3 "$D/kiln.db" "SELECT env FROM certificates WHERE kind='device' AND product='widget-test';")" = test
check "production and test CAs live in different tokens" test \
	"$(sqlite3 "$D/kiln.db" "SELECT count(DISTINCT token) FROM cas;")" -eq 3

# A product's environment is fixed once set: a test policy for 'widget' is refused.
sed -e 's/^environment: production/environment: test/' -e 's/^  type: dice/  type: none/' \
	"$EXAMPLES/policies/widget.yaml" >"$T/widget-as-test.yaml"
refuse "a product cannot change environment" "widget" \
	kiln --dir "$D" policy add "$T/widget-as-test.yaml"
finish
