#!/usr/bin/env bash
# Re-provisioning and retirement end to end: kiln-device (DICE simulator)
# provisions through kiln serve, an engineer opens a re-provisioning, the
# device (repaired: a new UDS; or re-attested after a firmware update: the
# same DeviceID key) provisions again and replaces its record; retirement
# destroys the device's objects in SoftHSM2 (seen gone by pkcs11-tool).
. "$(dirname "$0")/lib.sh"

D=$T/d
FW=$KILN_SOURCE_DIR/examples/firmware
check "deploy" deploy "$D"
# widget v2 also approves firmware 1.1.0 (the update the device installs below).
sed 's/^      sha256: "c8c9676e6bc05eb6553b1dc05178301a99dc147f6263dc1b493f40c59a69d32b"/&\n    - version: "1.1.0"\n      sha256: "cdebfe50e25cec2a65f7e8d19ea1ce9d001130826a282b67f83ab32cabe7d3d8"/' \
	"$EXAMPLES/policies/widget.yaml" >"$T/widget-v2.yaml"
check "widget v2 approves firmware 1.1.0" policy_add "$D" "$T/widget-v2.yaml"
check "station" kiln --dir "$D" identity add --name st-1 --role station --out "$T/st-1"
check "lot" kiln --dir "$D" batch open --product widget --lot LOT-L --quantity 20
check "serve" serve_start "$D"

q() { sqlite3 "$D/kiln.db" "$1"; }
recorded() { test "$(rows "$D" events "type IN ('rejection','anomaly') AND detail LIKE '%\"reason\":\"$1\"%'")" -ge 1; }
newdev() { device init --state "$T/$1" --rot dice --serial "$2" >/dev/null; }
prov() { device provision --state "$T/$1" --server "$URL" --cert "$T/st-1.crt" --key "$T/st-1.key" \
	--ca "$T/service.pem" --product widget --lot LOT-L >"$T/$1.out" 2>"$T/$1.err"; }

newprov() { newdev "$1" "$2" && prov "$1"; }
not() { ! "$@"; }
check "device A provisioned" newprov a WGT-L-0001
old_id=$(q "SELECT id FROM devices WHERE serial='WGT-L-0001'")
old_cert=$(q "SELECT cert_serial FROM devices WHERE id=$old_id")

# ---------------------------------------------------------------- refusals
newdev a2 WGT-L-0001
check "without a grant, the same serial again is a duplicate" not prov a2
check "... recorded as an anomaly" test "$(rows "$D" events "type='anomaly' AND detail LIKE '%device-duplicate%'")" -ge 1
devs0=$(rows "$D" devices); certs0=$(rows "$D" certificates); grants0=$(rows "$D" reprovisions)
unchanged() { test "$(rows "$D" devices)" -eq "$devs0" -a "$(rows "$D" certificates)" -eq "$certs0" -a "$(rows "$D" reprovisions)" -eq "$grants0"; }
refuse "reprovision of an unknown device" "no device" kiln --dir "$D" device reprovision WGT-NOPE
check "... audit event" recorded not-found
refuse "reprovision with a reason kiln does not know" "keyCompromise (a new key) or superseded" \
	kiln --dir "$D" device reprovision WGT-L-0001 --reason cessationOfOperation
check "... nothing written" unchanged

# ---------------------------------------------------------------- keyCompromise: a repaired device, new UDS
check "engineer opens a re-provisioning (keyCompromise)" kiln --dir "$D" device reprovision WGT-L-0001
refuse "a second grant for the same device" "already open" kiln --dir "$D" device reprovision WGT-L-0001
check "the repaired device (new UDS, same serial) provisions" prov a2
new_id=$(q "SELECT id FROM devices WHERE serial='WGT-L-0001' AND live=1")
check "a new device record" test -n "$new_id" -a "$new_id" != "$old_id"
check "it names the record it replaces" test "$(q "SELECT replaces FROM devices WHERE id=$new_id")" = "$old_id"
check "the old record is no longer live, and revoked" test "$(q "SELECT live || status FROM devices WHERE id=$old_id")" = "0revoked"
check "the old certificate is revoked (keyCompromise)" test "$(q "SELECT status || ' ' || reason FROM certificates WHERE serial='$old_cert'")" = "revoked keyCompromise"
check "the grant is used by the new record" test "$(q "SELECT used_by FROM reprovisions WHERE device_id=$old_id")" = "$new_id"
check "one reprovision event names both" test "$(rows "$D" events "type='reprovision' AND detail LIKE '%\"replaces\":$old_id%' AND detail LIKE '%$old_cert%'")" = 1
shows_replaces() { kiln --dir "$D" device show WGT-L-0001 --json | grep -q "\"replaces\": *$old_id"; }
check "kiln device show finds the live record by serial" shows_replaces
verify_a2() {
	kiln --dir "$D" ca chain --env production >"$T/prod.pem" &&
		awk '/BEGIN CERT/{n++} n==2' "$T/prod.pem" >"$T/root.pem" &&
		awk '/BEGIN CERT/{n++} n==1' "$T/a2/cert.pem" >"$T/leaf.pem" &&
		awk '/BEGIN CERT/{n++} n==2' "$T/a2/cert.pem" >"$T/iss.pem" &&
		openssl verify -CAfile "$T/root.pem" -untrusted "$T/iss.pem" "$T/leaf.pem"
}
check "the new certificate verifies against the production chain" verify_a2
refuse "a replaced record cannot be re-provisioned again" "was replaced by device" \
	kiln --dir "$D" device reprovision "$old_id"

# ---------------------------------------------------------------- superseded: firmware update, same DeviceID key
check "device B provisioned (firmware 1.0.0)" newprov b WGT-L-0002
b_old=$(q "SELECT id FROM devices WHERE serial='WGT-L-0002'")
b_cert=$(q "SELECT cert_serial FROM devices WHERE id=$b_old")
check "device B installs firmware 1.1.0" device install --state "$T/b" --firmware "$FW/widget-fw-1.1.0.bin" --firmware-version 1.1.0
check "engineer opens a re-attestation (superseded)" kiln --dir "$D" device reprovision WGT-L-0002 --reason superseded
# kiln-device keeps one identity per state directory: the re-attesting device sets the old one aside.
mv "$T/b/cert.pem" "$T/b/cert-fw-1.0.0.pem"
check "device B re-attests with the same key" prov b
check "its new record carries the measured firmware 1.1.0" test "$(q "SELECT firmware_version FROM devices WHERE serial='WGT-L-0002' AND live=1")" = 1.1.0
check "the old certificate is revoked (superseded)" test "$(q "SELECT reason FROM certificates WHERE serial='$b_cert'")" = superseded
check "the key stayed the same" test "$(q "SELECT count(DISTINCT hex(spki_sha256)) FROM certificates WHERE product='widget' AND device_id IN (SELECT id FROM devices WHERE serial='WGT-L-0002')")" = 1

# ---------------------------------------------------------------- retirement
export SOFTHSM2_CONF=$D/hsm/softhsm2.conf
P11=(pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --token-label kiln-prod --login --pin "$(cat "$D/secrets/kiln-prod.pin")")
check "a per-device key pair in the production token (pkcs11-tool)" \
	"${P11[@]}" --keypairgen --key-type EC:prime256v1 --label "kiln-device:widget/WGT-L-0001"
labelled() { "${P11[@]}" --list-objects 2>/dev/null | grep -c "label: *$1\$"; }
check "pkcs11-tool lists both halves" test "$(labelled kiln-device:widget/WGT-L-0001)" = 2
cur_cert=$(q "SELECT cert_serial FROM devices WHERE id=$new_id")
check "kiln device retire" kiln --dir "$D" device retire WGT-L-0001 --json
check "retire reports 2 objects destroyed" test "$(json "$T/.out" 'j["destroyed_count"]')" = 2
check "pkcs11-tool no longer lists them" test "$(labelled kiln-device:widget/WGT-L-0001)" = 0
check "the CA keys are still there" test "$("${P11[@]}" --list-objects 2>/dev/null | grep -c 'label:')" -ge 2
check "the device is retired" test "$(q "SELECT status FROM devices WHERE id=$new_id")" = retired
check "its certificate is revoked (cessationOfOperation)" test "$(q "SELECT status || ' ' || reason FROM certificates WHERE serial='$cur_cert'")" = "revoked cessationOfOperation"
check "one device-retire event names what was destroyed" test "$(rows "$D" events "type='device-retire' AND detail LIKE '%\"destroyed_count\":2%' AND detail LIKE '%private-key%'")" = 1
check "retiring a device with nothing in the HSM records a count of 0" kiln --dir "$D" device retire WGT-L-0002
check "... in its event" test "$(rows "$D" events "type='device-retire' AND detail LIKE '%WGT-L-0002%' AND detail LIKE '%\"destroyed_count\":0%'")" = 1
devs0=$(rows "$D" devices); certs0=$(rows "$D" certificates); grants0=$(rows "$D" reprovisions)
revs0=$(rows "$D" certificates "status='revoked'")
refuse "retire twice" "already retired" kiln --dir "$D" device retire WGT-L-0001
check "... audit event" recorded device-retired
refuse "retire an unknown device" "no device WGT-NOPE" kiln --dir "$D" device retire WGT-NOPE
check "... audit event" recorded not-found
refuse "reprovision a retired device" "retired" kiln --dir "$D" device reprovision WGT-L-0001
check "refusals revoked nothing" test "$(rows "$D" certificates "status='revoked'")" -eq "$revs0"
check "refusals changed nothing (rows)" unchanged
check "serve stops cleanly" serve_stop
finish
