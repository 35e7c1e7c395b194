#!/usr/bin/env bash
# The deployment's CA keys, as OpenSC's pkcs11-tool sees them: in three
# separate tokens with their own PINs, private keys sensitive and never
# extractable, and their value cannot be read.
. "$(dirname "$0")/lib.sh"

D=$T/d
check "init" kiln init --dir "$D"
export SOFTHSM2_CONF=$D/hsm/softhsm2.conf
MOD=/usr/lib/softhsm/libsofthsm2.so
p11() { pkcs11-tool --module "$MOD" "$@"; }

check "secrets are mode 0600" test -z "$(find "$D/secrets" -type f ! -perm 600)"
check "secrets dir is mode 0700" test "$(stat -c %a "$D/secrets")" = 700
check "PINs differ per token" test "$(sort -u "$D"/secrets/*.pin | wc -l)" -eq 3

for tok in kiln-prod:production kiln-test:test kiln-service:service; do
	label=${tok%%:*} env=${tok##*:}
	pin=$(cat "$D/secrets/$label.pin")
	p11 --token-label "$label" --login --pin "$pin" --list-objects >"$T/$label.objs" 2>&1
	check "$label: lists its objects" grep -q "Private Key Object" "$T/$label.objs"
	nkeys=$(grep -c "Private Key Object" "$T/$label.objs")
	# Each token holds its root and issuing keys, and one more: production and test
	# their delegated OCSP signer's key, service the log key (Ed25519) that signs checkpoints.
	third="OCSP signer"; [ "$env" = service ] && third=log
	check "$label: holds exactly the $env root, issuing and $third keys" test "$nkeys" -eq 3
	[ "$env" = service ] && check "$label: kiln-log present" grep -q "label: *kiln-log" "$T/$label.objs"
	[ "$env" = service ] || check "$label: $env-ocsp present" grep -q "label: *$env-ocsp" "$T/$label.objs"
	check "$label: $env-root present" grep -q "label: *$env-root" "$T/$label.objs"
	check "$label: $env-issuing present" grep -q "label: *$env-issuing" "$T/$label.objs"
	# Every private key: sensitive, never extractable.
	access=$(awk '/Private Key Object/{p=1} p && /Access:/{print; p=0}' "$T/$label.objs")
	check "$label: every private key is sensitive" test "$(grep -c ' sensitive' <<<"$access")" -eq "$nkeys"
	check "$label: every private key is never extractable" test "$(grep -c 'never extractable' <<<"$access")" -eq "$nkeys"
	check "$label: no private key is extractable" test "$(grep -vc 'never extractable' <<<"$access")" -eq 0
	check "$label: keys were generated in the token (local)" test "$(grep -c 'local' <<<"$access")" -eq "$nkeys"
	if p11 --token-label "$label" --login --pin "$pin" --read-object --type privkey \
		--label "$env-issuing" -o "$T/$label.stolen" >"$T/$label.read" 2>&1 && [ -s "$T/$label.stolen" ]; then
		fail "$label: private key value was readable"
	else
		pass "$label: reading the private key value fails ($(grep -m1 -iE 'error|fail|sensitive' "$T/$label.read" || echo refused))"
	fi
	# Another token's PIN does not open this one.
	other=$(ls "$D"/secrets/*.pin | grep -v "$label.pin" | head -n1)
	if p11 --token-label "$label" --login --pin "$(cat "$other")" --list-objects >/dev/null 2>&1; then
		fail "$label: opened with another token's PIN"
	else pass "$label: another token's PIN is refused"; fi
done
finish
