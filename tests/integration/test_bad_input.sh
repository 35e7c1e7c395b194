#!/usr/bin/env bash
# Bad input through the CLI: each refusal is one clear line on stderr, a
# non-zero exit, no certificate or device row, and (for issuance requests) a
# rejection event naming the reason.
. "$(dirname "$0")/lib.sh"

D=$T/d
check "deploy" deploy "$D"
certs0=$(rows "$D" certificates); devs0=$(rows "$D" devices)

nothing_written() {
	check "$1: no certificate or device row" test "$(rows "$D" certificates)" -eq "$certs0" -a "$(rows "$D" devices)" -eq "$devs0"
}
rejected() { # reason-slug
	check "$2: rejection event '$1' recorded" test "$(rows "$D" events "type='rejection' AND detail LIKE '%\"reason\":\"$1\"%'")" -ge 1
}
# Operator issuance is for products without attestation: widget-test (the test hierarchy).
issue() { kiln --dir "$D" issue --product widget-test --csr "$@"; }

# --- CSRs
: >"$T/empty.csr"
refuse "empty CSR" "empty" issue "$T/empty.csr"; nothing_written "empty CSR"; rejected csr-empty "empty CSR"

head -c 700 /dev/urandom >"$T/garbage.csr"
refuse "garbage CSR" "CSR" issue "$T/garbage.csr"; nothing_written "garbage CSR"; rejected csr-malformed "garbage CSR"

csr p256 "$T/good" "/CN=WGT-0001"
openssl req -in "$T/good.csr" -outform DER -out "$T/good.der"
size=$(stat -c %s "$T/good.der")
head -c $((size / 2)) "$T/good.der" >"$T/trunc.der"
refuse "truncated DER CSR" "CSR" issue "$T/trunc.der"; nothing_written "truncated DER CSR"
head -n 4 "$T/good.csr" >"$T/trunc.pem"; echo "-----END CERTIFICATE REQUEST-----" >>"$T/trunc.pem"
refuse "truncated PEM CSR" "CSR" issue "$T/trunc.pem"; nothing_written "truncated PEM CSR"
{ cat "$T/good.der"; printf 'trailing'; } >"$T/trailing.der"
refuse "CSR with trailing bytes" "CSR" issue "$T/trailing.der"; nothing_written "trailing bytes"

# Over 64 KiB: a real CSR carrying thousands of SANs.
sans=$(python3 -c 'print(",".join("DNS:host%05d.example.com" % i for i in range(3000)))')
openssl req -new -key "$T/good.key" -subj "/CN=WGT-0002" -addext "subjectAltName=$sans" -out "$T/big.csr" 2>/dev/null
check "oversized CSR really is over 64 KiB" test "$(stat -c %s "$T/big.csr")" -gt 65536
refuse "oversized CSR" "65536" issue "$T/big.csr"; nothing_written "oversized CSR"; rejected csr-too-big "oversized CSR"

# A signature that does not verify: flip a bit in the last byte of the signature.
python3 - "$T/good.der" "$T/badsig.der" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read()); b[-1] ^= 0x01
open(sys.argv[2], "wb").write(b)
PY
refuse "CSR signature does not verify" "does not verify" issue "$T/badsig.der"; nothing_written "bad signature"; rejected csr-signature "bad signature"

# --- policy: algorithms, subject, serial, product
csr rsa2048 "$T/rsa2048" "/CN=WGT-0003"
refuse "RSA-2048 key (policy wants >= 3072)" "rsa2048 is not allowed" issue "$T/rsa2048.csr"; nothing_written "rsa2048"; rejected key-algorithm "rsa2048"
csr secp256k1 "$T/k1" "/CN=WGT-0004"
refuse "secp256k1 key" "not allowed" issue "$T/k1.csr"; nothing_written "secp256k1"
csr p521 "$T/p521" "/CN=WGT-0005"
refuse "P-521 key (policy allows p256, p384)" "p521 is not allowed" issue "$T/p521.csr"; nothing_written "p521"
csr p256 "$T/evil" "/CN=WGT-0006/O=Evil Corp"
refuse "forbidden subject field O" "O=Evil Corp" issue "$T/evil.csr"; nothing_written "subject O"; rejected subject-forbidden "subject O"
csr p256 "$T/badserial" "/CN=not a serial!"
refuse "device serial outside the pattern" "does not match" issue "$T/badserial.csr"; nothing_written "bad serial"
refuse "unknown product" "unknown product 'gizmo'" kiln --dir "$D" issue --product gizmo --csr "$T/good.csr"; nothing_written "unknown product"; rejected unknown-product "unknown product"

# --- duplicates: the same device serial, then the same key again
check "first issuance of WGT-0001" issue "$T/good.csr" --out "$T/good.pem"
certs0=$(rows "$D" certificates); devs0=$(rows "$D" devices)
csr p256 "$T/dup" "/CN=WGT-0001"
refuse "duplicate device serial" "already exists" issue "$T/dup.csr"; nothing_written "duplicate serial"
check "duplicate serial: anomaly event" test "$(rows "$D" events "type='anomaly' AND detail LIKE '%\"reason\":\"device-duplicate\"%'")" -ge 1
openssl req -new -key "$T/good.key" -subj "/CN=WGT-0042" -out "$T/samekey.csr"
refuse "a public key certified before (another serial)" "already certified" issue "$T/samekey.csr"; nothing_written "duplicate key"
check "duplicate key: anomaly event" test "$(rows "$D" events "type='anomaly' AND detail LIKE '%\"reason\":\"key-duplicate\"%'")" -ge 1
csr p256 "$T/prod" "/CN=WGT-0077"
refuse "a production product needs attestation: no operator issuance" "requires dice attestation" \
	kiln --dir "$D" issue --product widget --csr "$T/prod.csr"; nothing_written "attestation required"; rejected attestation-required "attestation required"

# --- policy files: the error names the file and the line
cat >"$T/unknown-key.yaml" <<'YAML'
product: gadget
environment: test
keys:
  - type: ec
    curves: [p256]
device_serial:
  pattern: '^[A-Z0-9-]{4,32}$'
subject:
  CN: "{serial}"
validity_days: 365
colour: blue
key_usage: [digitalSignature]
attestation:
  type: none
YAML
refuse "policy with an unknown key" "unknown-key.yaml:11:" kiln --dir "$D" policy add "$T/unknown-key.yaml"
sed -e 's/^colour: blue$//' -e 's/^validity_days: 365$/validity_days: "a year"/' "$T/unknown-key.yaml" >"$T/wrong-type.yaml"
refuse "policy with a wrong type" "wrong-type.yaml:10:" kiln --dir "$D" policy add "$T/wrong-type.yaml"
printf 'product: [unclosed\n' >"$T/syntax.yaml"
refuse "policy that is not YAML" "syntax.yaml:" kiln --dir "$D" policy add "$T/syntax.yaml"
check "no policy written by the refusals" test "$(rows "$D" policies)" -eq 2

# --- HSM: wrong PIN, missing token, missing module (on copies of the deployment)
cp -a "$D" "$T/pin"; echo 0000 >"$T/pin/secrets/kiln-test.pin"
sed -i "s|$D|$T/pin|g" "$T/pin/hsm/softhsm2.conf"
refuse "wrong HSM PIN" "PIN" kiln --dir "$T/pin" issue --product widget-test --csr "$T/dup.csr"
check "wrong PIN: nothing written" test "$(rows "$T/pin" certificates)" -eq "$certs0"
cp -a "$D" "$T/tok"; sed -i "s|$D|$T/tok|g" "$T/tok/hsm/softhsm2.conf"
sed -i 's/"kiln-test"/"kiln-nope"/' "$T/tok/kiln.yaml"
refuse "missing HSM token" "kiln-nope" kiln --dir "$T/tok" issue --product widget-test --csr "$T/dup.csr"
check "missing token: nothing written" test "$(rows "$T/tok" certificates)" -eq "$certs0"
cp -a "$D" "$T/mod"; sed -i "s|$D|$T/mod|g" "$T/mod/hsm/softhsm2.conf"
sed -i 's|/usr/lib/softhsm/libsofthsm2.so|/usr/lib/nowhere/libnothing.so|' "$T/mod/kiln.yaml"
refuse "missing PKCS#11 module" "/usr/lib/nowhere/libnothing.so" kiln --dir "$T/mod" issue --product widget-test --csr "$T/dup.csr"
check "missing module: nothing written" test "$(rows "$T/mod" certificates)" -eq "$certs0"

# --- usage errors
refuse "issue without --csr" "required" kiln --dir "$D" issue --product widget-test
refuse "unknown option" "unknown option" kiln --dir "$D" issue --product widget-test --csr "$T/good.csr" --frobnicate
refuse "unknown command" "unknown command" kiln --dir "$D" frobnicate
refuse "not a deployment" "not a kiln deployment" kiln --dir "$T" ca list
refuse "init into a non-empty directory" "not empty" kiln init --dir "$D"
finish
