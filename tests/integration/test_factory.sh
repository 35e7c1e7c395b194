#!/usr/bin/env bash
# The factory line end to end: kiln serve, two stations provisioning 100
# simulated DICE devices into two lots, every certificate checked by OpenSSL
# and every device's lineage by the inventory.
. "$(dirname "$0")/lib.sh"

D=$T/d
check "deploy" deploy "$D"
check "station st-1" kiln --dir "$D" identity add --name st-1 --role station --out "$T/st-1"
check "station st-2" kiln --dir "$D" identity add --name st-2 --role station --out "$T/st-2"
check "engineer" kiln --dir "$D" identity add --name eng --role engineer --out "$T/eng"
check "lot A from the CLI" kiln --dir "$D" batch open --product widget --lot LOT-A --quantity 50 --line L1 --station st-1
check "serve" serve_start "$D"
cat >"$T/lot-b.json" <<'JSON'
{"product": "widget", "lot": "LOT-B", "quantity": 50, "line": "L2", "station": "st-2"}
JSON
check "lot B over the API (engineer)" test "$(api "$T/eng" POST /v1/batches "$T/lot-b.json")" = 201
check "lot B is open with its budget" test "$(json "$T/api.body" 'j["status"], j["quantity"], j["issued"]')" = "open 50 0"

prov() { # station lot prefix
	device provision --state "$T/$1" --server "$URL" --cert "$T/$1.crt" --key "$T/$1.key" \
		--ca "$T/service.pem" --product widget --lot "$2" --count 50 --parallel 4 \
		--serial-prefix "$3" --json >"$T/$1.out" 2>"$T/$1.err"
}
prov st-1 LOT-A WGT-A- & p1=$!
prov st-2 LOT-B WGT-B- & p2=$!
wait $p1; rc1=$?; wait $p2; rc2=$?
check "station 1 provisioned 50" test $rc1 -eq 0 -a "$(json "$T/st-1.out" 'j["issued"]')" = 50
check "station 2 provisioned 50" test $rc2 -eq 0 -a "$(json "$T/st-2.out" 'j["issued"]')" = 50
[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] || { cat "$T/st-1.err" "$T/st-2.err" | head -n 20; }

# Every certificate, by OpenSSL, against the production root.
kiln --dir "$D" ca chain --env production >"$T/prod.pem"
awk '/BEGIN CERT/{n++} n==2' "$T/prod.pem" >"$T/prod-root.pem"
bad=0; n=0
for cert in "$T"/st-*/devices/*/cert.pem; do
	n=$((n + 1))
	awk '/BEGIN CERT/{n++} n==1' "$cert" >"$T/leaf.pem"
	awk '/BEGIN CERT/{n++} n==2' "$cert" >"$T/issuing.pem"
	openssl verify -purpose sslclient -CAfile "$T/prod-root.pem" -untrusted "$T/issuing.pem" "$T/leaf.pem" >/dev/null 2>&1 || bad=$((bad + 1))
done
check "100 certificates on the devices" test "$n" -eq 100
check "all 100 verify with openssl verify" test "$bad" -eq 0

# Each certificate is the DICE DeviceID key of its device, and the inventory holds its lineage.
fw=$(sha256sum "$KILN_SOURCE_DIR/examples/firmware/widget-fw-1.0.0.bin" | cut -d' ' -f1)
check "100 device rows" test "$(rows "$D" devices)" -eq 100
check "every device has its lot, station, firmware and evidence" test "$(rows "$D" devices \
	"policy_version = 1 AND firmware_version = '1.0.0' AND firmware_sha256 = '$fw' AND length(attestation_sha256) = 64 AND components LIKE '{\"pcb\":%' AND status = 'active' AND ((lot = 'LOT-A' AND station = 'st-1' AND serial LIKE 'WGT-A-%') OR (lot = 'LOT-B' AND station = 'st-2' AND serial LIKE 'WGT-B-%'))")" -eq 100
check "the lots' budgets were drawn" test "$(sqlite3 "$D/kiln.db" "SELECT group_concat(issued) FROM (SELECT issued FROM batches ORDER BY lot)")" = "50,50"
check "every device certificate row matches its device" test "$(sqlite3 "$D/kiln.db" \
	"SELECT count(*) FROM devices v JOIN certificates c ON c.serial = v.cert_serial AND c.device_id = v.id WHERE c.kind = 'device'")" -eq 100
check "one issuance event per device" test "$(rows "$D" events "type = 'issuance' AND detail LIKE '%\"attestation\":\"dice\"%'")" -eq 100
one=$(ls -d "$T"/st-1/devices/* | head -n1)
serial=$(basename "$one")
device show --state "$one" >"$T/dev.json"
check "device show (kiln-device) names the device" test "$(json "$T/dev.json" 'j["serial"]')" = "$serial"
check "the certificate is for the device's identity key" test \
	"$(openssl x509 -in "$one/cert.pem" -noout -subject | sed 's/.*CN *= *//; s/,.*//')" = "$serial"
kiln --dir "$D" device show "$serial" --json >"$T/show.json"
check "kiln device show: lineage" test "$(json "$T/show.json" 'j["lot"], j["station"], j["firmware_version"], j["policy_version"]')" = "LOT-A st-1 1.0.0 1"
check "kiln device show: components" test "$(json "$T/show.json" 'sorted(j["components"])')" = "['pcb', 'se', 'soc']"
check "GET /v1/devices/{serial} as the engineer" test "$(api "$T/eng" GET "/v1/devices/$serial")" = 200
check "the API agrees with the inventory" test "$(json "$T/api.body" 'j["certificate"]["serial"]')" = "$(json "$T/show.json" 'j["certificate"]["serial"]')"

# Running the stations again changes nothing: every device is already provisioned.
prov st-1 LOT-A WGT-A-
check "a second run issues nothing" test "$(json "$T/st-1.out" 'j["already"]')" = 50 -a "$(rows "$D" devices)" -eq 100
check "graceful stop (SIGTERM)" serve_stop
finish
