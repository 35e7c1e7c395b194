#!/usr/bin/env bash
# The README's run command (through `make demo`): a deployment on the embedded default
# (SoftHSM2 + SQLite), two officers who approve the product policies (M-of-N, 2 of 2), a
# device certificate from a CSR made with openssl (a test product), then the factory line: kiln serve, a station identity, a lot, and simulated DICE devices
# provisioned over mutual TLS; one with unapproved firmware is refused.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
KILN=${KILN_BIN:-$ROOT/build/src/cli/kiln}
DEVICE=${KILN_DEVICE_BIN:-$ROOT/build/src/cli/kiln-device}
DEMO=${DEMO_DIR:-$ROOT/demo}
DEP=$DEMO/deploy
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
split() { awk -v d="$2" '/BEGIN CERT/{n++} {print > (d "-" (n==1?"leaf":n==2?"issuing":"root") ".pem")}' "$1"; }

if [ -e "$DEMO" ]; then
	[ -f "$DEP/kiln.yaml" ] || [ -z "$(ls -A "$DEMO")" ] ||
		{ echo "demo: $DEMO exists and is not a kiln demo" >&2; exit 1; }
	rm -rf "$DEMO"
fi
mkdir -p "$DEMO"
SERVE_PID=
trap '[ -n "$SERVE_PID" ] && kill -TERM "$SERVE_PID" 2>/dev/null; wait 2>/dev/null || true' EXIT

step "1. A deployment: SoftHSM2 tokens (production, test, service), CA hierarchies, inventory"
run "$KILN" init --dir "$DEP" --algorithm p256 --org "Example Widgets"
run "$KILN" --dir "$DEP" ca list

step "2. Two security officers (the bootstrap: no approval is needed before the second exists)"
run "$KILN" --dir "$DEP" identity add --name officer-1 --role officer --out "$DEMO/officer-1"
run "$KILN" --dir "$DEP" identity add --name officer-2 --role officer --out "$DEMO/officer-2"

step "3. Product policies: widget (production, DICE attestation), widget-test (test, none)"
echo "(each version is pending until two officers sign its activation request)"
for p in widget widget-test; do
	run "$KILN" --dir "$DEP" policy add "examples/policies/$p.yaml"
	REQ=$("$KILN" --dir "$DEP" request list --json | python3 -c 'import json,sys; print([r for r in json.load(sys.stdin) if r["status"] == "pending"][-1]["id"])')
	run "$KILN" --dir "$DEP" approve "$REQ" --key "$DEMO/officer-1.key"
	run "$KILN" --dir "$DEP" approve "$REQ" --key "$DEMO/officer-2.key"
done
run "$KILN" --dir "$DEP" policy list

step "4. A test device: key and CSR made with openssl, certificate issued inside the HSM"
run openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$DEMO/test-device.key"
run openssl req -new -key "$DEMO/test-device.key" -subj "/CN=TST-000001" -out "$DEMO/test-device.csr"
run "$KILN" --dir "$DEP" issue --product widget-test --csr "$DEMO/test-device.csr" --out "$DEMO/test-device-chain.pem"
split "$DEMO/test-device-chain.pem" "$DEMO/test"
run openssl verify -purpose sslclient -CAfile "$DEMO/test-root.pem" -untrusted "$DEMO/test-issuing.pem" "$DEMO/test-leaf.pem"
echo "(a production product cannot be issued this way; it needs attestation:)"
"$KILN" --dir "$DEP" issue --product widget --csr "$DEMO/test-device.csr" || true

step "5. The factory line: a station identity, a lot, kiln serve"
run "$KILN" --dir "$DEP" identity add --name station-01 --role station --env production --out "$DEMO/station-01"
run "$KILN" --dir "$DEP" batch open --product widget --lot LOT-DEMO-1 --quantity 10 --line L1 --station station-01
"$KILN" --dir "$DEP" ca chain --env service >"$DEMO/service.pem"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf '$ %s\n' "$KILN --dir $DEP serve --listen 127.0.0.1:$PORT &"
"$KILN" --dir "$DEP" serve --listen "127.0.0.1:$PORT" 2>"$DEMO/serve.log" &
SERVE_PID=$!
for _ in $(seq 100); do
	curl -sf --cacert "$DEMO/service.pem" "https://127.0.0.1:$PORT/healthz" >/dev/null && break
	sleep 0.1
done
run curl -s --cacert "$DEMO/service.pem" "https://127.0.0.1:$PORT/healthz"; echo

step "6. Three simulated DICE devices provisioned by the station (evidence checked, then signed)"
run "$DEVICE" provision --state "$DEMO/station-01" --server "https://127.0.0.1:$PORT" \
	--cert "$DEMO/station-01.crt" --key "$DEMO/station-01.key" --ca "$DEMO/service.pem" \
	--product widget --lot LOT-DEMO-1 --count 3 --parallel 3 --serial-prefix WGT-DEMO-
DEV=$(ls -d "$DEMO"/station-01/devices/* | head -n 1)
split "$DEV/cert.pem" "$DEMO/prod"
run openssl verify -purpose sslclient -CAfile "$DEMO/prod-root.pem" -untrusted "$DEMO/prod-issuing.pem" "$DEMO/prod-leaf.pem"
openssl x509 -in "$DEMO/prod-leaf.pem" -noout -subject -issuer -serial -dates -ext subjectAltName,extendedKeyUsage

step "7. A device with firmware the policy does not approve is refused"
run "$DEVICE" init --state "$DEMO/tampered" --rot dice --serial WGT-DEMO-BAD \
	--firmware examples/firmware/widget-fw-1.1.0.bin --firmware-version 1.1.0
"$DEVICE" provision --state "$DEMO/tampered" --server "https://127.0.0.1:$PORT" \
	--cert "$DEMO/station-01.crt" --key "$DEMO/station-01.key" --ca "$DEMO/service.pem" \
	--product widget --lot LOT-DEMO-1 || true

step "8. The inventory: lineage of a device, the lot's budget"
run "$KILN" --dir "$DEP" device show "$(basename "$DEV")"
run "$KILN" --dir "$DEP" batch list

step "Done"
kill -TERM "$SERVE_PID"; wait "$SERVE_PID" || true; SERVE_PID=
echo "deployment: $DEP   devices: $DEMO/station-01/devices   server log: $DEMO/serve.log"
