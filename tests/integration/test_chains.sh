#!/usr/bin/env bash
# For every CA algorithm, the chains kiln issues verify with three verifiers
# we did not write (OpenSSL, strongSwan pki, GnuTLS certtool): a test device
# issued from a CSR (kiln issue), a production device off the factory line
# (DICE evidence through kiln serve), a station identity. Each certificate
# carries the profile its product policy describes.
. "$(dirname "$0")/lib.sh"

split_chain() { # chain.pem DIR -> DIR/leaf.pem DIR/issuing.pem DIR/root.pem
	mkdir -p "$2"
	awk -v d="$2" '/BEGIN CERT/{n++} {f = d "/" (n==1?"leaf":n==2?"issuing":"root") ".pem"; print > f}' "$1"
}

# verify_3 NAME PARTS_DIR PURPOSE: the three verifiers on leaf <- issuing <- root.
verify_3() {
	local name=$1 P=$2 purpose=$3
	check "$name: openssl verify ($purpose)" \
		openssl verify -x509_strict -purpose "$purpose" -CAfile "$P/root.pem" -untrusted "$P/issuing.pem" "$P/leaf.pem"
	check "$name: strongSwan pki --verify leaf" pki --verify --in "$P/leaf.pem" --cacert "$P/root.pem" --cacert "$P/issuing.pem"
	check "$name: strongSwan pki --verify issuing" pki --verify --in "$P/issuing.pem" --cacert "$P/root.pem"
	check "$name: GnuTLS certtool --verify" \
		certtool --verify --load-ca-certificate "$P/root.pem" --infile <(cat "$P/leaf.pem" "$P/issuing.pem")
}

for alg in p256 p384 ed25519 rsa3072; do
	D=$T/$alg
	check "$alg: init + policies" deploy "$D" "$alg"
	# --- a test device from a CSR, key of the CA's family where the policy allows it
	case $alg in rsa3072) dalg=rsa3072 ;; ed25519) dalg=ed25519 ;; *) dalg=$alg ;; esac
	serial=TST-${alg^^}-0001
	csr "$dalg" "$T/$alg-dev" "/CN=$serial"
	check "$alg: kiln issue (widget-test)" kiln --dir "$D" issue --product widget-test --csr "$T/$alg-dev.csr" --out "$T/$alg-chain.pem"
	P=$T/$alg-test
	split_chain "$T/$alg-chain.pem" "$P"
	check "$alg: chain has 3 certificates" test "$(grep -c 'BEGIN CERT' "$T/$alg-chain.pem")" -eq 3
	check "$alg: ca chain --env test = the issued chain's CAs" cmp <(cat "$P/issuing.pem" "$P/root.pem") <(kiln --dir "$D" ca chain --env test)
	verify_3 "$alg test device" "$P" sslclient
	kiln --dir "$D" ca chain --env production | awk '/BEGIN CERT/{n++} n==2' >"$T/$alg-prodroot.pem"
	if openssl verify -CAfile "$T/$alg-prodroot.pem" -untrusted "$P/issuing.pem" "$P/leaf.pem" >/dev/null 2>&1; then
		fail "$alg: a test chain verified against the production root"
	else pass "$alg: a test chain does not verify against the production root"; fi
	openssl x509 -in "$P/leaf.pem" -noout -text >"$T/$alg-leaf.txt"
	check "$alg: subject CN is the device serial" grep -q "Subject: .*CN *= *$serial" "$T/$alg-leaf.txt"
	check "$alg: SAN urn:kiln:<product>:<serial>" grep -q "URI:urn:kiln:widget-test:$serial" "$T/$alg-leaf.txt"
	check "$alg: basicConstraints critical, CA:FALSE" sh -c "grep -A1 'Basic Constraints: critical' '$T/$alg-leaf.txt' | grep -q CA:FALSE"
	check "$alg: EKU clientAuth" grep -q "TLS Web Client Authentication" "$T/$alg-leaf.txt"
	check "$alg: keyUsage critical" grep -q "X509v3 Key Usage: critical" "$T/$alg-leaf.txt"
	check "$alg: CRL distribution point" grep -q "URI:http.*/crl/test-issuing.crl" "$T/$alg-leaf.txt"
	check "$alg: OCSP AIA" grep -q "OCSP - URI:http.*/ocsp" "$T/$alg-leaf.txt"
	check "$alg: SKI and AKI" grep -q "X509v3 Authority Key Identifier" "$T/$alg-leaf.txt"
	check "$alg: 128-bit serial" test "$(openssl x509 -in "$P/leaf.pem" -noout -serial | cut -d= -f2 | wc -c)" -ge 31
	check "$alg: issuing CA pathlen 0" sh -c "openssl x509 -in '$P/issuing.pem' -noout -text | grep -q 'CA:TRUE, pathlen:0'"
	check "$alg: root CA pathlen 1" sh -c "openssl x509 -in '$P/root.pem' -noout -text | grep -q 'CA:TRUE, pathlen:1'"
	check "$alg: certificate row committed with the DER returned" test \
		"$(sqlite3 "$D/kiln.db" "SELECT hex(der) FROM certificates WHERE kind='device'")" = \
		"$(openssl x509 -in "$P/leaf.pem" -outform DER | xxd -p -u | tr -d '\n')"

	# --- a production device off the factory line
	check "$alg: station" kiln --dir "$D" identity add --name st-1 --role station --out "$T/$alg-st"
	check "$alg: lot" kiln --dir "$D" batch open --product widget --lot LOT-1 --quantity 1
	check "$alg: serve" serve_start "$D"
	check "$alg: DICE device" sh -c "'$KILN_DEVICE_BIN' init --state '$T/$alg-dice' --rot dice --serial WGT-${alg^^}-0001 >/dev/null"
	check "$alg: provision" sh -c "'$KILN_DEVICE_BIN' provision --state '$T/$alg-dice' --server '$URL' --cert '$T/$alg-st.crt' --key '$T/$alg-st.key' --ca '$T/service.pem' --product widget --lot LOT-1 >/dev/null"
	check "$alg: graceful stop" serve_stop
	P=$T/$alg-prod
	split_chain "$T/$alg-dice/cert.pem" "$P"
	check "$alg: ca chain --env production = the device chain's CAs" cmp <(cat "$P/issuing.pem" "$P/root.pem") <(kiln --dir "$D" ca chain --env production)
	verify_3 "$alg production device" "$P" sslclient
	check "$alg: production SAN" sh -c "openssl x509 -in '$P/leaf.pem' -noout -text | grep -q 'URI:urn:kiln:widget:WGT-${alg^^}-0001'"
	check "$alg: production CRL point" sh -c "openssl x509 -in '$P/leaf.pem' -noout -text | grep -q 'crl/production-issuing.crl'"

	# --- a station identity from the service CA
	P=$T/$alg-svc
	mkdir -p "$P"
	cp "$T/$alg-st.crt" "$P/leaf.pem"
	kiln --dir "$D" ca chain --env service >"$T/$alg-service.pem"
	awk '/BEGIN CERT/{n++} n==1' "$T/$alg-service.pem" >"$P/issuing.pem"
	awk '/BEGIN CERT/{n++} n==2' "$T/$alg-service.pem" >"$P/root.pem"
	verify_3 "$alg identity" "$P" sslclient
	check "$alg: identity key file is 0600" test "$(stat -c %a "$T/$alg-st.key")" = 600
done
finish
