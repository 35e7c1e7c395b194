#!/usr/bin/env bash
# For every CA algorithm: a deployment issues a device certificate and three
# verifiers we did not write accept the chain: OpenSSL, strongSwan pki, GnuTLS
# certtool. The certificate carries the profile the product policy describes.
. "$(dirname "$0")/lib.sh"

split_chain() { # chain.pem DIR -> DIR/leaf.pem DIR/issuing.pem DIR/root.pem
	awk -v d="$2" '/BEGIN CERT/{n++} {f = d "/" (n==1?"leaf":n==2?"issuing":"root") ".pem"; print > f}' "$1"
}

for alg in p256 p384 ed25519 rsa3072; do
	D=$T/$alg
	check "$alg: init + policies" deploy "$D" "$alg"
	# The device key: same family as the CA where the policy allows it.
	case $alg in rsa3072) dalg=rsa3072 ;; ed25519) dalg=ed25519 ;; *) dalg=$alg ;; esac
	csr "$dalg" "$T/$alg-dev" "/CN=WGT-${alg^^}-0001"
	check "$alg: issue" kiln --dir "$D" issue --product widget --csr "$T/$alg-dev.csr" --out "$T/$alg-chain.pem"
	mkdir -p "$T/$alg-parts"
	split_chain "$T/$alg-chain.pem" "$T/$alg-parts"
	P=$T/$alg-parts
	check "$alg: chain has 3 certificates" test "$(grep -c 'BEGIN CERT' "$T/$alg-chain.pem")" -eq 3
	check "$alg: ca chain = issued chain's CAs" cmp <(cat "$P/issuing.pem" "$P/root.pem") <(kiln --dir "$D" ca chain --env production)
	check "$alg: openssl verify (sslclient purpose)" \
		openssl verify -x509_strict -purpose sslclient -CAfile "$P/root.pem" -untrusted "$P/issuing.pem" "$P/leaf.pem"
	check "$alg: strongSwan pki --verify leaf" \
		pki --verify --in "$P/leaf.pem" --cacert "$P/root.pem" --cacert "$P/issuing.pem"
	check "$alg: strongSwan pki --verify issuing" \
		pki --verify --in "$P/issuing.pem" --cacert "$P/root.pem"
	check "$alg: GnuTLS certtool --verify" \
		certtool --verify --load-ca-certificate "$P/root.pem" --infile <(cat "$P/leaf.pem" "$P/issuing.pem")
	# A chain to the wrong root must not verify (the verifiers are not rubber stamps).
	kiln --dir "$D" ca chain --env test | awk '/BEGIN CERT/{n++} n==2' >"$T/$alg-testroot.pem"
	if openssl verify -CAfile "$T/$alg-testroot.pem" -untrusted "$P/issuing.pem" "$P/leaf.pem" >/dev/null 2>&1; then
		fail "$alg: chain verified against the test root"
	else pass "$alg: chain does not verify against the test root"; fi
	# The profile from examples/policies/widget.yaml.
	openssl x509 -in "$P/leaf.pem" -noout -text >"$T/$alg-leaf.txt"
	serial=$(openssl x509 -in "$P/leaf.pem" -noout -serial | cut -d= -f2)
	check "$alg: subject CN is the device serial" grep -q "Subject: .*CN *= *WGT-${alg^^}-0001" "$T/$alg-leaf.txt"
	check "$alg: SAN urn:kiln:widget:<serial>" grep -q "URI:urn:kiln:widget:WGT-${alg^^}-0001" "$T/$alg-leaf.txt"
	check "$alg: CA:FALSE, critical" grep -A1 "Basic Constraints: critical" "$T/$alg-leaf.txt"
	check "$alg: CA:FALSE" grep -q "CA:FALSE" "$T/$alg-leaf.txt"
	check "$alg: EKU clientAuth" grep -q "TLS Web Client Authentication" "$T/$alg-leaf.txt"
	check "$alg: keyUsage critical" grep -q "X509v3 Key Usage: critical" "$T/$alg-leaf.txt"
	check "$alg: CRL distribution point" grep -q "URI:http.*/crl/production-issuing.crl" "$T/$alg-leaf.txt"
	check "$alg: OCSP AIA" grep -q "OCSP - URI:http.*/ocsp" "$T/$alg-leaf.txt"
	check "$alg: SKI and AKI" grep -q "X509v3 Authority Key Identifier" "$T/$alg-leaf.txt"
	check "$alg: 128-bit serial" test "${#serial}" -ge 30
	check "$alg: issuing CA pathlen 0" sh -c "openssl x509 -in '$P/issuing.pem' -noout -text | grep -q 'CA:TRUE, pathlen:0'"
	check "$alg: root CA pathlen 1" sh -c "openssl x509 -in '$P/root.pem' -noout -text | grep -q 'CA:TRUE, pathlen:1'"
	check "$alg: device row" test "$(rows "$D" devices "serial='WGT-${alg^^}-0001'")" -eq 1
	check "$alg: certificate row committed with the DER returned" test \
		"$(sqlite3 "$D/kiln.db" "SELECT hex(der) FROM certificates WHERE kind='device';")" = \
		"$(openssl x509 -in "$P/leaf.pem" -outform DER | xxd -p -u | tr -d '\n')"
	check "$alg: issuance event" test "$(rows "$D" events "type='issuance'")" -eq 1
	# Identities come from the service CA and verify against its chain.
	check "$alg: identity add" kiln --dir "$D" identity add --name station-1 --role station --out "$T/$alg-station"
	kiln --dir "$D" ca chain --env service >"$T/$alg-service.pem"
	awk '/BEGIN CERT/{n++} n==1' "$T/$alg-service.pem" >"$T/$alg-svc-issuing.pem"
	awk '/BEGIN CERT/{n++} n==2' "$T/$alg-service.pem" >"$T/$alg-svc-root.pem"
	check "$alg: identity verifies against the service CA" \
		openssl verify -purpose sslclient -CAfile "$T/$alg-svc-root.pem" -untrusted "$T/$alg-svc-issuing.pem" "$T/$alg-station.crt"
	check "$alg: identity key matches its certificate" test \
		"$(openssl pkey -in "$T/$alg-station.key" -pubout)" = "$(openssl x509 -in "$T/$alg-station.crt" -noout -pubkey)"
	check "$alg: identity key file is 0600" test "$(stat -c %a "$T/$alg-station.key")" = 600
done
finish
