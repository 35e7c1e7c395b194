#!/usr/bin/env bash
# Encrypted backups and the approved restore (docs/backup.md): the backup key is an
# AES-256 key in the kiln-service token, sensitive and never extractable (pkcs11-tool);
# kiln backup create works while kiln serve runs; kiln backup restore makes a
# backup-restore request, and only with two officers' approvals brings the inventory
# back (rows made after the backup are gone, the log verifies, the restore is an event).
# Refusals, each leaving the live inventory as it was apart from one event: another
# file than the approved one, a tampered file (GCM tag), another deployment's backup, an
# unapproved, expired or executed request, another format version, a truncated file,
# kiln serve running.
. "$(dirname "$0")/lib.sh"

D=$T/d
check "deploy" deploy "$D"
export SOFTHSM2_CONF=$D/hsm/softhsm2.conf
pin=$(cat "$D/secrets/kiln-service.pin")
pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --token-label kiln-service --login --pin "$pin" \
	--list-objects --type secrkey >"$T/secret.objs" 2>&1
check "pkcs11-tool: a secret key labelled backup in kiln-service" grep -q "label: *backup" "$T/secret.objs"
access=$(awk '/Secret Key Object/{p=1} p && /Access:/{print; p=0}' "$T/secret.objs")
check "pkcs11-tool: the backup key is sensitive" grep -q "sensitive" <<<"$access"
check "pkcs11-tool: the backup key is never extractable" grep -q "never extractable" <<<"$access"
check "pkcs11-tool: the backup key is AES-256" grep -q "AES length 32" "$T/secret.objs"
if pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --token-label kiln-service --login --pin "$pin" \
	--read-object --type secrkey --label backup -o "$T/stolen" >"$T/read.txt" 2>&1 && [ -s "$T/stolen" ]; then
	fail "the backup key's value was readable"
else pass "the backup key's value cannot be read out"; fi
check "key-generate event at init" test "$(rows "$D" events "type='key-generate' AND subject='backup'")" -eq 1

check "a lot" kiln --dir "$D" batch open --product widget-test --lot LOT-B1 --quantity 5
check "serve" serve_start "$D"
check "backup create while kiln serve runs" kiln --dir "$D" --json backup create --out "$T/b1.kbk"
cp "$T/.out" "$T/b1.json"
check "backup file is mode 0600" test "$(stat -c %a "$T/b1.kbk")" = 600
check "the file starts with the magic" test "$(head -c 8 "$T/b1.kbk")" = KILNBKUP
check "the SQLite database is not readable in the file" sh -c "! grep -q 'SQLite format 3' '$T/b1.kbk' && ! grep -q 'LOT-B1' '$T/b1.kbk'"
check "the printed sha256 is the file's" test "$(json "$T/b1.json" 'j["sha256"]')" = "$(sha256sum "$T/b1.kbk" | cut -d' ' -f1)"
check "a backup event naming it" test "$(rows "$D" events "type='backup' AND detail LIKE '%$(json "$T/b1.json" 'j["sha256"]')%'")" -eq 1
check "serve stops" serve_stop
# The log's size and root in the header match the events at backup time.
check "tree size in the header is the events then" test "$(json "$T/b1.json" 'j["tree_size"]')" -lt "$(rows "$D" events)"

# --- after the backup: rows that the restore must take away
check "a second lot after the backup" kiln --dir "$D" batch open --product widget-test --lot LOT-B2 --quantity 5
check "an identity after the backup" kiln --dir "$D" identity add --name late-station --role station --out "$T/late"
# ... and rows lost after it (a damaged or wrongly edited inventory): the restore brings them back
check "lot LOT-B1 deleted from the live inventory" sqlite3 "$D/kiln.db" "DELETE FROM batches WHERE lot = 'LOT-B1'"
check "... gone" test "$(rows "$D" batches "lot='LOT-B1'")" -eq 0
batches_before=$(rows "$D" batches)

# counts of every table but events, and the events: what a refusal may change
snap() { for t in batches identities certificates devices policies requests approvals revocations; do printf '%s=%s ' "$t" "$(rows "$D" "$t")"; done; }

# --- refusals before any approval
check "restore asks: a request" kiln --dir "$D" --json backup restore "$T/b1.kbk"
R=$(json "$T/.out" 'j["request"]')
check "the request is backup-restore over the file's SHA-256" test \
	"$(kiln --dir "$D" request show "$R" --json | json /dev/stdin 'j["operation"] + " " + j["params"]["sha256"]')" = \
	"backup-restore $(sha256sum "$T/b1.kbk" | cut -d' ' -f1)"
s0=$(snap); e0=$(rows "$D" events)
refuse "unapproved request" "approvals" kiln --dir "$D" backup restore "$T/b1.kbk" --request "$R"
check "... nothing changed but one event" test "$(snap)" = "$s0" -a "$(rows "$D" events)" -eq $((e0 + 1))
check "officer a approves" kiln --dir "$D" approve "$R" --key "$D/kt-officer-a.key"
refuse "one approval is not enough" "approvals" kiln --dir "$D" backup restore "$T/b1.kbk" --request "$R"
check "officer b approves" kiln --dir "$D" approve "$R" --key "$D/kt-officer-b.key"
check "approved, not executed yet" test "$(kiln --dir "$D" request show "$R" --json | json /dev/stdin 'j["status"]')" = approved

# another file than the approved one
cp "$T/b1.kbk" "$T/flip.kbk"
flip_byte "$T/flip.kbk" $(( $(stat -c %s "$T/b1.kbk") - 10 ))
s0=$(snap); e0=$(rows "$D" events)
refuse "a file whose SHA-256 differs from the approved one" "not the approved one" kiln --dir "$D" backup restore "$T/flip.kbk" --request "$R"
check "... nothing changed but one event" test "$(snap)" = "$s0" -a "$(rows "$D" events)" -eq $((e0 + 1))
# kiln serve running
check "serve again" serve_start "$D"
refuse "refused while kiln serve runs" "kiln serve is running" kiln --dir "$D" backup restore "$T/b1.kbk" --request "$R"
check "serve stops" serve_stop
check "after the refusals the second lot is still there" test "$(rows "$D" batches)" -eq "$batches_before"

# --- a tampered file, approved as it is: the GCM tag fails
check "request for the tampered file" kiln --dir "$D" --json backup restore "$T/flip.kbk"
RT=$(json "$T/.out" 'j["request"]')
approve_all "$D" "$RT"
s0=$(snap); e0=$(rows "$D" events)
refuse "a tampered file (GCM tag)" "authentication failed" kiln --dir "$D" backup restore "$T/flip.kbk" --request "$RT"
check "... nothing changed but one event" test "$(snap)" = "$s0" -a "$(rows "$D" events)" -eq $((e0 + 1))
check "no staged file left behind" test ! -e "$D/kiln.db.restore"
# a changed header field (tree size): the AAD covers it
cp "$T/b1.kbk" "$T/hdr.kbk"
flip_byte "$T/hdr.kbk" 43
RH=$(kiln --dir "$D" --json backup restore "$T/hdr.kbk" | json /dev/stdin 'j["request"]')
approve_all "$D" "$RH"
refuse "a changed header (AAD)" "authentication failed" kiln --dir "$D" backup restore "$T/hdr.kbk" --request "$RH"

# --- format refusals, at request time
head -c 100 "$T/b1.kbk" >"$T/short.kbk"
refuse "a truncated header" "truncated header" kiln --dir "$D" backup restore "$T/short.kbk"
head -c $(( $(stat -c %s "$T/b1.kbk") - 1 )) "$T/b1.kbk" >"$T/cut.kbk"
refuse "a truncated file" "truncated backup" kiln --dir "$D" backup restore "$T/cut.kbk"
cp "$T/b1.kbk" "$T/v2.kbk"
printf '\x02' | dd of="$T/v2.kbk" bs=1 seek=9 conv=notrunc 2>/dev/null
refuse "another format version" "version 2; this kiln reads version 1" kiln --dir "$D" backup restore "$T/v2.kbk"
echo "not a backup at all, just text" >"$T/text.kbk"
refuse "not a backup" "wrong magic" kiln --dir "$D" backup restore "$T/text.kbk"
# another deployment's backup
D2=$T/d2
check "a second deployment" kiln init --dir "$D2"
check "its backup" kiln --dir "$D2" backup create --out "$T/other.kbk"
refuse "a backup from another deployment" "belongs to deployment" kiln --dir "$D" backup restore "$T/other.kbk"

# --- expired
sed -i 's/^  request_ttl_s: .*/  request_ttl_s: 15/' "$D/kiln.yaml"
RE=$(kiln --dir "$D" --json backup restore "$T/b1.kbk" | json /dev/stdin 'j["request"]')
sed -i 's/^  request_ttl_s: .*/  request_ttl_s: 86400/' "$D/kiln.yaml"
approve_all "$D" "$RE"
past_expiry "$D" "$RE"
refuse "an expired request" "expired at" kiln --dir "$D" backup restore "$T/b1.kbk" --request "$RE"
check "the live inventory still has the second lot" test "$(rows "$D" batches "lot='LOT-B2'")" -eq 1

# --- the approved restore
check "restore with the approved request" kiln --dir "$D" backup restore "$T/b1.kbk" --request "$R"
check "the lot made after the backup is gone" test "$(rows "$D" batches "lot='LOT-B2'")" -eq 0
check "the identity made after the backup is gone" test "$(rows "$D" identities "name='late-station'")" -eq 0
check "the lot deleted after the backup is back" test "$(rows "$D" batches "lot='LOT-B1'")" -eq 1
check "the restore is an event in the restored log" test "$(rows "$D" events "type='backup-restore' AND subject='$R'")" -eq 1
check "request-executed in the restored log" test "$(rows "$D" events "type='request-executed' AND subject='$R'")" -eq 1
check "the request and its two approvals carried into the restored inventory" test \
	"$(rows "$D" requests "id='$R' AND status='executed'") $(rows "$D" approvals "request_id='$R'")" = "1 2"
check "kiln audit verify on the restored inventory" kiln --dir "$D" audit verify
check "no staged file left behind" test ! -e "$D/kiln.db.restore"
refuse "the request cannot run twice" "already executed" kiln --dir "$D" backup restore "$T/b1.kbk" --request "$R"
check "serve starts on the restored inventory" serve_start "$D"
check "serve stops" serve_stop
refuse "backup create without --out" "expected 'create --out FILE'" kiln --dir "$D" backup create
finish
