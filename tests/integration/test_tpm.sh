#!/usr/bin/env bash
# TPM 2.0 attestation end to end with real swtpm instances: 20 TPMs whose EK
# certificates a local TPM manufacturer CA signed, each provisioned through
# begin, credential activation and finish; every certificate's key is the
# TPM-resident identity key, and tpm2_checkquote accepts the quote kiln
# accepted. Then every refusal: a precise problem, an audit event, nothing issued.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_tpm.sh"

N=${TPM_DEVICES:-20}
D=$T/d
check "deploy" deploy "$D"
check "station" kiln --dir "$D" identity add --name st-1 --role station --out "$T/st-1"

# TPM manufacturing: the CA first, then N TPMs (two at a time), then their simulators.
tpm_ca "$T/mfr"
check "first TPM manufactured (makes the CA)" tpm_make "$T/mfr" "$T/tpm/1"
pids=()
for i in $(seq 2 "$N"); do tpm_make "$T/mfr" "$T/tpm/$i" & pids+=($!); [ $((i % 2)) -eq 1 ] && wait "${pids[@]}" && pids=(); done
wait
made=0; for i in $(seq 1 "$N"); do [ -s "$T/tpm/$i/tpm2-00.permall" ] && made=$((made + 1)); done
check "$N TPMs manufactured with EK certificates" test "$made" -eq "$N"
ROOT=$T/mfr/ca/swtpm-localca-rootca-cert.pem
INTER=$T/mfr/ca/issuercert.pem

# A rogue manufacturer (its own local CA) for the untrusted-EK case, and a spare TPM.
tpm_ca "$T/rogue"
check "rogue-manufacturer TPM" tpm_make "$T/rogue" "$T/tpm/rogue"
check "spare TPM" tpm_make "$T/mfr" "$T/tpm/spare"

# The product policy: golden PCRs of the simulated boot, the manufacturer's root.
{
	cat <<'YAML'
product: gateway-test
environment: test
description: "TPM 2.0 gateway (test): EK from the local TPM manufacturer, measured boot"
keys:
  - type: ec
    curves: [p256]
device_serial:
  pattern: '^[A-Z0-9][A-Z0-9-]{3,63}$'
subject:
  CN: "{serial}"
  O: "Example Gateways Inc"
csr_subject_allowed: [CN]
validity_days: 365
key_usage: [digitalSignature]
extended_key_usage: [clientAuth]
attestation:
  type: tpm2
  pcrs:
    sha256:
      0: 5fc17c2a52abb56ab3587cd1866c2470de8b34e2c6dde298e637d92f92f675cc
      2: 4d4de53e5eed5b069cc2581db81ee7431e26276c520621f085423b74f3ef53f4
      4: 6563f7f4df076aecad1b5a3b56433433315c2ed90a041092e6220d269ec2d2ac
      7: 64cc1e268142d593b66ddfbbf592102920e6efc00f7dfa35fc8e0be864772e5c
  ek_roots:
    - |
YAML
	sed 's/^/      /' "$ROOT"
} >"$T/gateway-test.yaml"
check "policy gateway-test" policy_add "$D" "$T/gateway-test.yaml"
check "lot" kiln --dir "$D" batch open --product gateway-test --lot LOT-T --quantity 100
check "serve" serve_start "$D"

# Each device: its swtpm, measured boot and identity key (init), then provisioning.
for i in $(seq 1 "$N"); do
	echo "$(tpm_start "$T/tpm/$i")" >"$T/tpm/$i/tcti"
done
dev() { # i command...
	local i=$1; shift
	KILN_TPM_TCTI=$(cat "$T/tpm/$i/tcti") device "$@"
}
mkdir -p "$T/dev"; inits=0
for i in $(seq 1 "$N"); do
	dev "$i" init --state "$T/dev/$i" --rot tpm --serial "$(printf 'GW-%04d' "$i")" \
		--ek-intermediate "$INTER" >/dev/null 2>"$T/dev-$i.err" && inits=$((inits + 1))
done
check "$N TPM devices initialised (measured boot, identity key in the TPM)" test "$inits" -eq "$N"
started=$(date +%s.%N)
prov() { # i [options]
	local i=$1; shift
	dev "$i" provision --state "$T/dev/$i" --server "$URL" --cert "$T/st-1.crt" --key "$T/st-1.key" \
		--ca "$T/service.pem" --product gateway-test --lot LOT-T "$@"
}
# Four fixtures at a time, as a station with four programming sockets.
pids=()
for i in $(seq 1 "$N"); do
	{ prov "$i" >"$T/prov-$i.out" 2>"$T/prov-$i.err"; echo $? >"$T/prov-$i.rc"; } & pids+=($!)
	if [ ${#pids[@]} -eq 4 ] || [ "$i" -eq "$N" ]; then wait "${pids[@]}"; pids=(); fi
done
ok=0; for i in $(seq 1 "$N"); do [ "$(cat "$T/prov-$i.rc")" = 0 ] && ok=$((ok + 1)); done
elapsed=$(python3 -c "import time; print(round(time.time() - $started, 2))")
echo "     | $N TPM devices provisioned in ${elapsed}s"
check "$N TPM devices provisioned" test "$ok" -eq "$N"
[ "$ok" -eq "$N" ] || cat "$T"/prov-*.err | head -n 10

kiln --dir "$D" ca chain --env test >"$T/test.pem"
awk '/BEGIN CERT/{n++} n==2' "$T/test.pem" >"$T/test-root.pem"
same=0; verified=0; quotes=0
for i in $(seq 1 "$N"); do
	c=$T/dev/$i/cert.pem
	[ -s "$c" ] || continue
	awk '/BEGIN CERT/{n++} n==1' "$c" >"$T/leaf.pem"
	awk '/BEGIN CERT/{n++} n==2' "$c" >"$T/issuing.pem"
	openssl verify -CAfile "$T/test-root.pem" -untrusted "$T/issuing.pem" "$T/leaf.pem" >/dev/null 2>&1 &&
		verified=$((verified + 1))
	# The identity key as the TPM wrote it (tpm2-tools), against the certificate's.
	tpm2_print -t TPM2B_PUBLIC -f pem "$T/dev/$i/key.pub" >"$T/key.pem" 2>/dev/null
	[ "$(openssl pkey -pubin -in "$T/key.pem" -outform der 2>/dev/null | sha256sum)" = \
	  "$(openssl x509 -in "$T/leaf.pem" -pubkey -noout | openssl pkey -pubin -outform der | sha256sum)" ] &&
		same=$((same + 1))
	TPM2TOOLS_TCTI=none tpm2_checkquote -u "$T/dev/$i/quote.ak.pem" -m "$T/dev/$i/quote.msg" \
		-s "$T/dev/$i/quote.sig" -q "$(cat "$T/dev/$i/quote.nonce")" -g sha256 >/dev/null 2>&1 &&
		quotes=$((quotes + 1))
done
check "all $N certificates verify with openssl verify" test "$verified" -eq "$N"
check "each certificate's key is its TPM identity key (tpm2_print)" test "$same" -eq "$N"
check "tpm2_checkquote accepts each quote kiln accepted" test "$quotes" -eq "$N"
check "$N device rows, attested by tpm2" test "$(rows "$D" events "type = 'issuance' AND detail LIKE '%\"attestation\":\"tpm2\"%'")" -eq "$N"
check "$N activations recorded" test "$(rows "$D" activations)" -eq "$N" -a "$(rows "$D" events "type = 'activation'")" -eq "$N"

# ------------------------------------------------------------ refusals
devs0=$(rows "$D" devices); certs0=$(rows "$D" certificates)
unchanged() { test "$(rows "$D" devices)" -eq "$devs0" -a "$(rows "$D" certificates)" -eq "$certs0"; }
recorded() { test "$(rows "$D" events "type IN ('rejection','anomaly') AND detail LIKE '%\"reason\":\"$1\"%'")" -ge 1; }
# case_ NAME SLUG DETAIL DEVICE [provision options]: the device (its certificate put aside)
# is refused with the problem SLUG, whose detail contains DETAIL; an event; nothing issued.
case_() {
	local name=$1 slug=$2 want=$3 i=$4; shift 4
	[ -f "$T/dev/$i/cert.pem" ] && mv "$T/dev/$i/cert.pem" "$T/dev/$i/cert.pem.first"
	refuse "$name" "$want" prov "$i" "$@"
	check "$name: audit event $slug" recorded "$slug"
	check "$name: nothing issued" unchanged
}
case_ "replayed quote (over another nonce)" evidence-nonce "another nonce" 1 --fault quote-other-nonce
SPARE=$(tpm_start "$T/tpm/spare")
KILN_TPM_OTHER_TCTI=$SPARE case_ "AK from another TPM than the EK" credential-activation "not in the EK's TPM" 2 --fault ak-other-tpm
case_ "identity key without fixedTPM" key-not-resident "lacks fixedTPM fixedParent" 3 --fault key-not-fixedtpm
case_ "CSR for another key than the certified one" evidence-key-mismatch "not the key the TPM certified" 4 --fault csr-other-key
for m in quote quote_signature key_public; do
	case_ "truncated $m" evidence-malformed "\"$m\" is not a well-formed" 5 --fault "truncate:$m"
	case_ "oversized $m" evidence-malformed "\"$m\" is larger than" 5 --fault "oversize:$m"
done
echo "$SPARE" >"$T/tpm/spare/tcti"
check "tampered boot stage: device init" dev spare init --state "$T/dev/spare" --rot tpm --serial GW-TAMPER \
	--ek-intermediate "$INTER" --tamper bootloader
case_ "tampered boot stage (PCR 4 differs)" pcr-mismatch "PCR 4 is" spare
echo "$(tpm_start "$T/tpm/rogue")" >"$T/tpm/rogue/tcti"
check "untrusted manufacturer: device init" dev rogue init --state "$T/dev/rogue" --rot tpm --serial GW-ROGUE
case_ "EK certificate from an untrusted manufacturer" ek-untrusted "does not chain to a TPM manufacturer root" rogue

# The same refusals as RFC 9457 problems on the wire (activate, straight with curl).
begin() { echo '{"lot": "LOT-T"}' >"$T/begin.json"; api "$T/st-1" POST /v1/provision/begin "$T/begin.json" >/dev/null; json "$T/api.body" 'j["nonce"]'; }
activate_with() { # AK_PUBLIC_BYTES_FILE
	python3 - "$(begin)" "$1" "$T/act.json" <<'PY'
import base64, sys
nonce, ak, out = sys.argv[1:]
b = lambda p: base64.b64encode(open(p, "rb").read()).decode()
open(out, "w").write('{"nonce": "%s", "ek_cert": "%s", "ak_public": "%s"}' % (nonce, base64.b64encode(b"x" * 64).decode(), b(ak)))
PY
	api "$T/st-1" POST /v1/provision/activate "$T/act.json"
}
printf '\x00\x58\x00\x23\x00\x0b' >"$T/ak-short.bin"
check "activate: truncated TPM2B_PUBLIC is a 400 problem" problem_is 400 evidence-malformed "$(activate_with "$T/ak-short.bin")"
check "activate: the detail names the member" grep -q 'ak_public' "$T/api.body"
head -c 700 /dev/zero >"$T/ak-big.bin"
check "activate: oversized TPM2B_PUBLIC is a 413 problem" problem_is 413 too-big "$(activate_with "$T/ak-big.bin")"
check "activate refusals are audit events" recorded evidence-malformed
check "graceful stop (SIGTERM)" serve_stop
finish
