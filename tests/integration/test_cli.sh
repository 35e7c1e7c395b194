#!/usr/bin/env bash
# The CLI contract (DESIGN.md): --help everywhere, exit codes, --json output
# that parses, and the inventory views.
. "$(dirname "$0")/lib.sh"

json_ok() { python3 -c 'import json,sys; json.load(sys.stdin)'; }

for c in "" "init" "ca" "policy" "issue" "identity" "device" "approve" "request"; do
	check "kiln $c --help exits 0 and prints usage" sh -c "'$KILN_BIN' $c --help | grep -q usage"
done
check "kiln --version" kiln --version
refuse "no command" "usage" sh -c "'$KILN_BIN' 2>&1 >/dev/null | head -n1 >&2; exit 2"

D=$T/d
check "init --json" sh -c "'$KILN_BIN' init --dir '$D' --json >'$T/init.json'"
check "init --json parses" json_ok <"$T/init.json"
check "init reports 8 CAs (6 + 2 delegated OCSP signers)" test "$(python3 -c 'import json;print(len(json.load(open("'"$T"'/init.json"))["cas"]))')" -eq 8
check "ca list" sh -c "kiln_out=\$('$KILN_BIN' --dir '$D' ca list) && echo \"\$kiln_out\" | grep -q production-issuing"
check "ca list --json parses" sh -c "'$KILN_BIN' --dir '$D' ca list --json | python3 -c 'import json,sys; assert len(json.load(sys.stdin)) == 8'"
check "KILN_DIR works like --dir" sh -c "KILN_DIR='$D' '$KILN_BIN' ca list | grep -q test-root"
check "policy add widget (two officer approvals)" policy_add "$D" "$EXAMPLES/policies/widget.yaml"
check "policy add widget again (version 2, pending)" sh -c "'$KILN_BIN' --dir '$D' policy add '$EXAMPLES/policies/widget.yaml' --json >'$T/v2.json' && python3 -c 'import json,sys; j = json.load(open(sys.argv[1])); assert j[\"version\"] == 2 and j[\"status\"] == \"pending\"' '$T/v2.json'"
statuses() { kiln --dir "$D" policy list --json | python3 -c 'import json,sys; print(" ".join("%d:%s" % (x["version"], x["status"]) for x in json.load(sys.stdin) if x["product"] == "widget"))'; }
check "policy list: v1 active, v2 pending" test "$(statuses)" = "1:active 2:pending"
V2=$(json "$T/v2.json" 'j["request"]')
check "request list --json shows the pending activation" sh -c "'$KILN_BIN' --dir '$D' request list --json | python3 -c 'import json,sys; r = [x for x in json.load(sys.stdin) if x[\"id\"] == \"$V2\"]; assert r[0][\"status\"] == \"pending\" and r[0][\"quorum\"] == 2, r'"
check "first officer approves" kiln --dir "$D" approve "$V2" --key "$D/kt-officer-a.key"
check "policy list: still v1 active after one approval" test "$(statuses)" = "1:active 2:pending"
check "second officer approves: activated" sh -c "'$KILN_BIN' --dir '$D' approve '$V2' --key '$D/kt-officer-b.key' | grep -q '(2 of 2); executed'"
check "policy list: v1 superseded, v2 active" test "$(statuses)" = "1:superseded 2:active"
check "request show --json: executed, two approvers" sh -c "'$KILN_BIN' --dir '$D' request show '$V2' --json | python3 -c 'import json,sys; j = json.load(sys.stdin); assert j[\"status\"] == \"executed\" and len(j[\"approved_by\"]) == 2, j'"
csr p256 "$T/dev" "/CN=WGT-1234"
check "policy add widget-test" policy_add "$D" "$EXAMPLES/policies/widget-test.yaml"
check "issue --json" sh -c "'$KILN_BIN' --dir '$D' issue --product widget-test --csr '$T/dev.csr' --json >'$T/issue.json'"
check "issue --json parses and carries the chain" python3 -c 'import json; j=json.load(open("'"$T"'/issue.json")); assert j["chain_pem"].count("BEGIN CERTIFICATE") == 3 and j["policy_version"] == 1'
csr p256 "$T/dev2" "/CN=unused"
check "issue from stdin" sh -c "openssl req -new -key '$T/dev2.key' -subj /CN=WGT-1235 | '$KILN_BIN' --dir '$D' issue --product widget-test --csr - --device-serial WGT-1235 --out '$T/s.pem'"
check "device list shows both" test "$(kiln --dir "$D" device list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" -eq 2
check "device show by serial" sh -c "'$KILN_BIN' --dir '$D' device show WGT-1234 | grep -q 'widget-test (policy v1)'"
check "device show by product/serial --json" sh -c "'$KILN_BIN' --dir '$D' device show widget-test/WGT-1235 --json | python3 -c 'import json,sys; j=json.load(sys.stdin); assert j[\"certificate\"][\"status\"] == \"valid\"'"
refuse "device show unknown" "WGT-9999" kiln --dir "$D" device show WGT-9999
for role in engineer operator station auditor; do
	check "identity add --role $role" kiln --dir "$D" identity add --name "id-$role" --role "$role" --out "$T/id-$role"
done
# Past the bootstrap (two officers exist), an admin or officer needs two approvals over its own key.
for role in admin officer; do
	csr p256 "$T/id-$role" "/CN=id-$role"
	refuse "identity add --role $role without a CSR" "--csr" kiln --dir "$D" identity add --name "id-$role" --role "$role" --out "$T/id-$role"
	id=$(kiln --dir "$D" --json identity add --name "id-$role" --role "$role" --csr "$T/id-$role.csr" --out "$T/id-$role" | python3 -c 'import json,sys; print(json.load(sys.stdin)["request"])')
	kiln --dir "$D" approve "$id" --key "$D/kt-officer-a.key" >/dev/null
	kiln --dir "$D" approve "$id" --key "$D/kt-officer-b.key" >/dev/null
	check "identity add --role $role --request (approved)" kiln --dir "$D" identity add --name "id-$role" --role "$role" --csr "$T/id-$role.csr" --out "$T/id-$role" --request "$id"
done
refuse "identity add: unknown role" "unknown role" kiln --dir "$D" identity add --name x --role wizard --out "$T/x"
refuse "identity add: duplicate name" "already exists" kiln --dir "$D" identity add --name id-engineer --role engineer --out "$T/y"
refuse "identity add: bad name" "identity names" kiln --dir "$D" identity add --name 'a b' --role admin --out "$T/z"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/own.key" 2>/dev/null
openssl req -new -key "$T/own.key" -subj /CN=ignored -out "$T/own.csr"
before=$(sha256sum <"$T/own.key")
check "identity add --csr keeps the holder's key" kiln --dir "$D" identity add --name own --role operator --csr "$T/own.csr" --out "$T/own"
check "identity add --csr writes no key (the holder's key file is untouched)" test "$(sha256sum <"$T/own.key")" = "$before"
check "identity add --csr certifies the holder's key" test \
	"$(openssl pkey -in "$T/own.key" -pubout)" = "$(openssl x509 -in "$T/own.crt" -noout -pubkey)"
check "identity roles in the inventory (and the two officers)" test "$(rows "$D" identities)" -eq 9
check "events recorded for every change" test "$(rows "$D" events "type IN ('identity-add','issuance','policy-add','ca-create','init')")" -eq $((9 + 2 + 3 + 8 + 1))
check "identity list --json" sh -c "'$KILN_BIN' --dir '$D' identity list --json | python3 -c 'import json,sys; assert len(json.load(sys.stdin)) == 9'"
finish
