#!/usr/bin/env bash
# The README's run command (through `make demo`): a deployment on the embedded
# default (SoftHSM2 + SQLite), the example production policy, a device key and
# CSR made with openssl, a device certificate, and its chain verified.
set -euo pipefail
cd "$(dirname "$0")/.."
KILN=${KILN_BIN:-$PWD/build/src/cli/kiln}
DEMO=${DEMO_DIR:-$PWD/demo}
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

if [ -e "$DEMO" ]; then
	[ -f "$DEMO/kiln.yaml" ] || { echo "demo: $DEMO exists and is not a kiln deployment" >&2; exit 1; }
	rm -rf "$DEMO"
fi
mkdir -p "$DEMO"

step "1. Create a deployment: SoftHSM2 tokens, CA hierarchies, inventory"
run "$KILN" init --dir "$DEMO/deploy" --algorithm p256 --org "Example Widgets"
run "$KILN" --dir "$DEMO/deploy" ca list

step "2. Add the example production policy"
run "$KILN" --dir "$DEMO/deploy" policy add examples/policies/widget.yaml
run "$KILN" --dir "$DEMO/deploy" policy list

step "3. A device key and CSR (openssl stands in for the device)"
run openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$DEMO/device.key"
run openssl req -new -key "$DEMO/device.key" -subj "/CN=WGT-000001" -out "$DEMO/device.csr"

step "4. Issue the device certificate (signed inside the HSM, committed before release)"
run "$KILN" --dir "$DEMO/deploy" issue --product widget --csr "$DEMO/device.csr" --out "$DEMO/device-chain.pem"

step "5. Verify the chain with OpenSSL"
awk -v d="$DEMO" '/BEGIN CERT/{n++} {print > (d "/" (n==1?"device":n==2?"issuing":"root") ".pem")}' "$DEMO/device-chain.pem"
run openssl verify -purpose sslclient -CAfile "$DEMO/root.pem" -untrusted "$DEMO/issuing.pem" "$DEMO/device.pem"
openssl x509 -in "$DEMO/device.pem" -noout -subject -issuer -serial -dates -ext subjectAltName,extendedKeyUsage

step "6. The inventory record"
run "$KILN" --dir "$DEMO/deploy" device show WGT-000001

step "Done"
echo "deployment: $DEMO/deploy   device chain: $DEMO/device-chain.pem"
