#!/usr/bin/env bash
# Every refusal of the factory line: a precise RFC 9457 problem, an audit
# event naming the reason, and no device or certificate row.
. "$(dirname "$0")/lib.sh"

D=$T/d
FW=$KILN_SOURCE_DIR/examples/firmware
check "deploy" deploy "$D"
for who in st-1:station st-2:station eng:engineer; do
	check "identity ${who%%:*}" kiln --dir "$D" identity add --name "${who%%:*}" --role "${who##*:}" --out "$T/${who%%:*}"
done
check "test-only station" kiln --dir "$D" identity add --name st-test --role station --env test --out "$T/st-test"
check "lot" kiln --dir "$D" batch open --product widget --lot LOT-R --quantity 100
check "lot of one" kiln --dir "$D" batch open --product widget --lot LOT-ONE --quantity 1
check "lot to close" kiln --dir "$D" batch open --product widget --lot LOT-SHUT --quantity 10
check "close it" kiln --dir "$D" batch close LOT-SHUT
check "serve" serve_start "$D" --nonce-ttl 10

devs0=$(rows "$D" devices); certs0=$(rows "$D" certificates)
unchanged() { test "$(rows "$D" devices)" -eq "$devs0" -a "$(rows "$D" certificates)" -eq "$certs0"; }
recorded() { test "$(rows "$D" events "type IN ('rejection','anomaly','auth-failure') AND detail LIKE '%\"reason\":\"$1\"%'")" -ge 1; }
newdev() { device init --state "$T/$1" --rot dice --serial "$2" "${@:3}" >/dev/null; }

# begin as STATION into LOT -> NONCE; request for DEVICE -> FILE; finish as STATION
begin() { echo "{\"lot\": \"$2\"}" >"$T/begin.json"; api "$T/$1" POST /v1/provision/begin "$T/begin.json" >/dev/null; json "$T/api.body" 'j["nonce"]'; }
request() { device request --state "$T/$1" --nonce "$2" "${@:3}" >"$T/$1.req.json"; }
finish_as() { api "$T/$1" POST /v1/provision/finish "$T/$2.req.json"; }

case_() { # name slug status station device lot [request options...]
	local name=$1 slug=$2 want=$3 station=$4 dev=$5 lot=$6; shift 6
	local nonce st
	nonce=$(begin "$station" "$lot")
	request "$dev" "$nonce" "$@"
	st=$(finish_as "$station" "$dev")
	check "$name: $want $slug" problem_is "$want" "$slug" "$st"
	check "$name: audit event" recorded "$slug"
	check "$name: no device or certificate row" unchanged
}

newdev bad-fw WGT-R-0001 --firmware "$FW/widget-fw-1.1.0.bin" --firmware-version 1.1.0
case_ "firmware not approved" firmware-not-approved 403 st-1 bad-fw LOT-R
newdev d2 WGT-R-0002
case_ "Alias certificate not signed by the DeviceID key" evidence-chain 403 st-1 d2 LOT-R --fault alias-wrong-signer
case_ "binding signed by another key" evidence-signature 403 st-1 d2 LOT-R --fault binding-wrong-key
case_ "binding over another nonce" evidence-signature 403 st-1 d2 LOT-R --fault binding-other-nonce
case_ "CSR key is not the DeviceID key" evidence-key-mismatch 403 st-1 d2 LOT-R --fault csr-other-key

# Nonces: replay, expiry, another station's.
newdev d3 WGT-R-0003
nonce=$(begin st-1 LOT-R)
request d3 "$nonce"
check "a good request is issued" test "$(finish_as st-1 d3)" = 201
devs0=$(rows "$D" devices); certs0=$(rows "$D" certificates)
check "the same request again gets the same certificate" test "$(finish_as st-1 d3)" = 200
check "... marked repeated, nothing written" sh -c "[ \"\$(python3 -c 'import json; print(json.load(open(\"$T/api.body\"))[\"repeated\"])')\" = True ] && [ $(rows "$D" devices) -eq $devs0 ]"
request d2 "$nonce"
st=$(finish_as st-1 d2)
check "replayed nonce: 409" problem_is 409 nonce-replayed "$st"
check "replayed nonce: audit event" recorded nonce-replayed
check "replayed nonce: nothing written" unchanged
nonce=$(begin st-1 LOT-R)
request d2 "$nonce"
sleep 11
st=$(finish_as st-1 d2)
check "expired nonce: 403" problem_is 403 nonce-expired "$st"
check "expired nonce: nothing written" unchanged
nonce=$(begin st-1 LOT-R)
request d2 "$nonce"
st=$(finish_as st-2 d2)
check "nonce issued to another station: 403" problem_is 403 nonce-station "$st"
check "another station's nonce: audit event" recorded nonce-station
check "another station's nonce: nothing written" unchanged

# Lots: quota, closed.
newdev one-a WGT-R-0010
newdev one-b WGT-R-0011
nonce=$(begin st-1 LOT-ONE); request one-a "$nonce"
check "the one device of LOT-ONE" test "$(finish_as st-1 one-a)" = 201
devs0=$(rows "$D" devices); certs0=$(rows "$D" certificates)
echo '{"lot": "LOT-ONE"}' >"$T/b1.json"
st=$(api "$T/st-1" POST /v1/provision/begin "$T/b1.json")
check "batch quota exceeded: 409" problem_is 409 batch-quota-exceeded "$st"
check "quota: audit event" recorded batch-quota-exceeded
echo '{"lot": "LOT-SHUT"}' >"$T/b2.json"
st=$(api "$T/st-1" POST /v1/provision/begin "$T/b2.json")
check "closed batch: 409" problem_is 409 batch-closed "$st"
check "closed batch: audit event" recorded batch-closed
check "lot refusals: nothing written" unchanged

# Duplicates: a serial seen before, a key seen before (a cloned device).
newdev dup-serial WGT-R-0003
case_ "duplicate device serial" device-duplicate 409 st-1 dup-serial LOT-R
check "duplicate serial is an anomaly" test "$(rows "$D" events "type = 'anomaly' AND detail LIKE '%device-duplicate%'")" -ge 1
cp -a "$T/d3" "$T/clone"; rm -f "$T/clone/cert.pem"
python3 - "$T/clone/rot.json" <<'PY'
import json, sys
p = sys.argv[1]; j = json.load(open(p)); j["serial"] = "WGT-R-0099"; json.dump(j, open(p, "w"))
PY
case_ "duplicate public key (cloned device)" key-duplicate 409 st-1 clone LOT-R
check "duplicate key is an anomaly" test "$(rows "$D" events "type = 'anomaly' AND detail LIKE '%key-duplicate%'")" -ge 1

# Bodies and roles.
python3 -c 'print("{\"nonce\": \"" + "A" * 70000 + "\"}")' >"$T/big.json"
st=$(api "$T/st-1" POST /v1/provision/finish "$T/big.json")
check "body over the cap: 413 problem" problem_is 413 too-big "$st"
check "body over the cap: audit event" recorded too-big
printf '{"nonce": [' >"$T/bad.json"
st=$(api "$T/st-1" POST /v1/provision/finish "$T/bad.json")
check "malformed JSON: 400" problem_is 400 malformed "$st"
check "malformed JSON: audit event" recorded malformed
st=$(api "$T/eng" POST /v1/provision/begin "$T/b1.json")
check "wrong role (engineer provisions): 403" problem_is 403 forbidden "$st"
check "wrong role: audit event" recorded forbidden
echo '{"lot": "LOT-R"}' >"$T/b3.json"
st=$(api "$T/st-test" POST /v1/provision/begin "$T/b3.json")
check "test-environment identity on a production lot: 403" problem_is 403 environment "$st"
check "environment: audit event" recorded environment
check "nothing written by any refusal" unchanged
check "graceful stop" serve_stop
finish
