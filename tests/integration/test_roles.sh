#!/usr/bin/env bash
# The role matrix of docs/roles.md, walked: every HTTP route and every identity-acting CLI
# command, as an identity of every role. Admitted roles get past the role check; the
# others are refused (403 forbidden, or a CLI refusal naming the role) and each refusal is
# an audit event. The matrix is read from the document, so the two cannot drift apart.
. "$(dirname "$0")/lib.sh"

ROLES=(admin officer engineer operator station auditor)
DOC=$KILN_SOURCE_DIR/docs/roles.md
D=$T/d
check "deploy" deploy "$D"
for r in "${ROLES[@]}"; do
	# Past the bootstrap an admin or officer is added with two approvals over its own key.
	if [ "$r" = admin ] || [ "$r" = officer ]; then
		csr p256 "$T/$r" "/CN=$r-1"
		id=$(kiln --dir "$D" --json identity add --name "$r-1" --role "$r" --csr "$T/$r.csr" --out "$T/$r" | json /dev/stdin 'j["request"]')
		kiln --dir "$D" approve "$id" --key "$D/kt-officer-a.key" >/dev/null
		kiln --dir "$D" approve "$id" --key "$D/kt-officer-b.key" >/dev/null
		check "identity $r" kiln --dir "$D" identity add --name "$r-1" --role "$r" --csr "$T/$r.csr" --out "$T/$r" --request "$id"
	else
		check "identity $r" kiln --dir "$D" identity add --name "$r-1" --role "$r" --out "$T/$r"
	fi
done
check "a lot" kiln --dir "$D" batch open --product widget-test --lot LOT-R --quantity 5
csr p256 "$T/dev" /CN=TST-000001
check "a device" kiln --dir "$D" issue --product widget-test --csr "$T/dev.csr" --out "$T/dev.pem"
sed 's/^validity_days: .*/validity_days: 30/' "$EXAMPLES/policies/widget-test.yaml" >"$T/p.yaml"
REQ=$(kiln --dir "$D" --json policy add "$T/p.yaml" | json /dev/stdin 'j["request"]')
check "serve" serve_start "$D"

# The HTTP table: "| METHOD | PATH | admin | officer | ... |"
mapfile -t HTTP < <(grep -E '^\| (GET|POST) \| /' "$DOC")
check "docs/roles.md lists every /v1 route" test "${#HTTP[@]}" -eq 10
echo '{}' >"$T/empty.json"
for line in "${HTTP[@]}"; do
	IFS='|' read -r _ method path marks <<<"$line"
	method=$(echo $method); path=$(echo $path)
	read -r -a allowed <<<"$(echo "$marks" | tr -d '|')"
	url=${path//\{lot\}/LOT-R}; url=${url//\{id\}/$REQ}
	[[ $path == /v1/devices/* ]] && url=/v1/devices/TST-000001
	for i in "${!ROLES[@]}"; do
		r=${ROLES[$i]}
		if [ "$method" = POST ]; then st=$(api "$T/$r" POST "$url" "$T/empty.json"); else st=$(api "$T/$r" GET "$url"); fi
		type=$(json "$T/api.body" 'j.get("type", "") if isinstance(j, dict) else ""' 2>/dev/null)
		if [ "${allowed[$i]}" = yes ]; then
			if [ "$st" = 401 ] || [ "$type" = urn:kiln:problem:forbidden ]; then
				fail "$method $path as $r: admitted by docs/roles.md, got $st $type"
			else pass "$method $path as $r: admitted ($st)"; fi
		else
			if [ "$st" = 403 ] && [ "$type" = urn:kiln:problem:forbidden ]; then
				pass "$method $path as $r: 403 forbidden"
			else fail "$method $path as $r: wanted 403 forbidden, got $st $type"; fi
		fi
	done
done
# 60 requests, 31 of them by roles the matrix does not admit.
check "every HTTP role refusal is an auth-failure event" test \
	"$(rows "$D" events "type = 'auth-failure' AND detail LIKE '%\"reason\":\"forbidden\"%' AND subject LIKE '/v1/%'")" -eq 31
check "serve stops" serve_stop

# The CLI table: "| kiln COMMAND ... --key KEY | admin | ... |"
mapfile -t CLI < <(grep -E '^\| kiln .*--key KEY \|' "$DOC")
check "docs/roles.md lists the identity-acting commands" test "${#CLI[@]}" -eq 4
for line in "${CLI[@]}"; do
	IFS='|' read -r _ cmd marks <<<"$line"
	cmd=$(echo $cmd)
	read -r -a allowed <<<"$(echo "$marks" | tr -d '|')"
	for i in "${!ROLES[@]}"; do
		r=${ROLES[$i]}
		case $cmd in
		"kiln approve ID --key KEY")
			REQ2=$(kiln --dir "$D" --json policy add "$T/p.yaml" | json /dev/stdin 'j["request"]')
			args=(approve "$REQ2" --key "$T/$r.key") ;;
		"kiln policy add FILE --key KEY")
			args=(policy add "$T/p.yaml" --key "$T/$r.key") ;;
		"kiln identity add ... --key KEY")
			csr p256 "$T/new-$r" "/CN=new-$r"
			args=(identity add --name "new-officer-$r" --role officer --csr "$T/new-$r.csr" --out "$T/new-$r" --key "$T/$r.key") ;;
		"kiln ca rotate --env ENV --key KEY")
			args=(ca rotate --env test --key "$T/$r.key") ;;
		*) fail "unknown command in docs/roles.md: $cmd"; continue ;;
		esac
		if [ "${allowed[$i]}" = yes ]; then
			check "$cmd as $r: admitted" kiln --dir "$D" "${args[@]}"
		else
			refuse "$cmd as $r: refused" "$r" kiln --dir "$D" "${args[@]}"
		fi
	done
done
check "CLI role refusals are events" test \
	"$(rows "$D" events "(type = 'auth-failure' AND detail LIKE '%\"reason\":\"forbidden\"%' AND subject = 'cli') OR type = 'approval-refused'")" -ge 8
finish
