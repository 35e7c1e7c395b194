# Shared by the integration tests: sourced, not run.
# Environment (set by CTest, or by hand): KILN_BIN, KILN_SOURCE_DIR, KILN_TEST_TMP.
# KILN_VALGRIND=1 runs every kiln process under valgrind memcheck.
set -uo pipefail

: "${KILN_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${KILN_BIN:=$KILN_SOURCE_DIR/build/src/cli/kiln}"
: "${KILN_TEST_TMP:=/tmp/kiln-test}"
EXAMPLES=$KILN_SOURCE_DIR/examples
mkdir -p "$KILN_TEST_TMP"
T=$(mktemp -d "$KILN_TEST_TMP/$(basename "$0" .sh).XXXXXX")
TESTS_RUN=0
TESTS_FAILED=0

if [ -n "${KILN_VALGRIND:-}" ]; then
	KILN_WRAP=(valgrind -q --error-exitcode=99 --leak-check=full
		--errors-for-leak-kinds=definite,indirect
		--suppressions="$KILN_SOURCE_DIR/tests/valgrind.supp")
else
	KILN_WRAP=()
fi

cleanup() { [ -n "${KEEP_TMP:-}" ] || rm -rf "$T"; }
trap cleanup EXIT

kiln() { "${KILN_WRAP[@]}" "$KILN_BIN" "$@"; }

pass() { TESTS_RUN=$((TESTS_RUN + 1)); echo "ok   $*"; }
fail() { TESTS_RUN=$((TESTS_RUN + 1)); TESTS_FAILED=$((TESTS_FAILED + 1)); echo "FAIL $*"; }

# check "description" command...: passes when the command succeeds.
check() {
	local what=$1; shift
	if "$@" >"$T/.out" 2>"$T/.err"; then pass "$what"; else
		fail "$what"; sed 's/^/     | /' "$T/.out" "$T/.err" | head -n 20; fi
}

# refuse "description" "expected stderr substring" command...:
# passes when the command fails (exit 1 or 2, not a crash or a valgrind error),
# prints exactly one line on stderr, and that line contains the substring.
refuse() {
	local what=$1 want=$2; shift 2
	"$@" >"$T/.out" 2>"$T/.err"
	local rc=$? lines
	lines=$(grep -c '' "$T/.err")
	if [ "$rc" -ne 1 ] && [ "$rc" -ne 2 ]; then
		fail "$what: exit $rc, wanted 1 or 2"; sed 's/^/     | /' "$T/.err" | head -n 20; return
	fi
	if [ "$lines" -ne 1 ]; then
		fail "$what: $lines lines on stderr, wanted 1"; sed 's/^/     | /' "$T/.err" | head -n 20; return
	fi
	if ! grep -qF -- "$want" "$T/.err"; then
		fail "$what: stderr lacks '$want'"; sed 's/^/     | /' "$T/.err"; return
	fi
	pass "$what ($(cat "$T/.err"))"
}

# Row counts straight from SQLite, not through kiln.
rows() { sqlite3 "$1/kiln.db" "SELECT count(*) FROM $2${3:+ WHERE $3};"; }
# Inverts the low bit of the byte at offset $2 of file $1: always a change (writing a
# constant byte leaves the file as it was when that byte already held it).
flip_byte() {
	python3 -c 'import sys
p, o = sys.argv[1], int(sys.argv[2])
with open(p, "r+b") as f:
    f.seek(o); b = f.read(1); f.seek(o); f.write(bytes([b[0] ^ 1]))' "$1" "$2"
}

# A device key and CSR: csr ALG OUT_PREFIX SUBJECT
csr() {
	local alg=$1 out=$2 subj=$3
	case $alg in
	p256) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$out.key" ;;
	p384) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$out.key" ;;
	p521) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-521 -out "$out.key" ;;
	secp256k1) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:secp256k1 -out "$out.key" ;;
	ed25519) openssl genpkey -algorithm ED25519 -out "$out.key" ;;
	rsa2048) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$out.key" ;;
	rsa3072) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out "$out.key" ;;
	*) echo "csr: unknown algorithm $alg" >&2; return 1 ;;
	esac 2>/dev/null
	openssl req -new -key "$out.key" -subj "$subj" -out "$out.csr" 2>/dev/null
}

# officers DIR: the two officer identities of a deployment, DIR/kt-officer-a and -b
# (.crt, .key), made once per deployment during the bootstrap (docs/roles.md).
officers() {
	local dir=$1 o
	for o in kt-officer-a kt-officer-b; do
		[ -f "$dir/$o.key" ] && continue
		kiln --dir "$dir" identity add --name "$o" --role officer --out "$dir/$o" >/dev/null || return 1
	done
}

# A product policy made active in DIR: policy_add DIR FILE.yaml
# Every test that needs a policy in effect goes through here: policy add makes a pending
# version and a policy-activate request, which two officers approve (docs/roles.md).
policy_add() {
	local dir=$1 file=$2 id
	officers "$dir" || return 1
	id=$(kiln --dir "$dir" --json policy add "$file" | python3 -c 'import json,sys; print(json.load(sys.stdin)["request"])') || return 1
	kiln --dir "$dir" approve "$id" --key "$dir/kt-officer-a.key" >/dev/null &&
		kiln --dir "$dir" approve "$id" --key "$dir/kt-officer-b.key" >/dev/null
}

# Every officer approves a request: approve_all DIR ID (the two kt-officers of officers DIR).
# Completes a quorum of 2: a policy activation or a recall (revoke-bulk) then runs.
approve_all() {
	local dir=$1 id=$2 o
	for o in kt-officer-a kt-officer-b; do
		kiln --dir "$dir" approve "$id" --key "$dir/$o.key" >/dev/null || return 1
	done
}

# A third officer, added past the bootstrap with two approvals: officer_c DIR OUT_PREFIX
officer_c() {
	local dir=$1 out=$2 id
	csr p256 "$out" /CN=kt-officer-c || return 1
	id=$(kiln --dir "$dir" --json identity add --name kt-officer-c --role officer --csr "$out.csr" --out "$out" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["request"])') || return 1
	approve_all "$dir" "$id" &&
		kiln --dir "$dir" identity add --name kt-officer-c --role officer --csr "$out.csr" --out "$out" --request "$id" >/dev/null
}

# Waits until request ID of DIR has expired: past_expiry DIR ID
past_expiry() {
	local exp
	exp=$(sqlite3 "$1/kiln.db" "SELECT expires FROM requests WHERE id = '$2'") || return 1
	while [ "$(date +%s)" -le "$exp" ]; do sleep 0.5; done
}

# A fresh deployment with both example policies: deploy DIR [ALG]
deploy() {
	local dir=$1 alg=${2:-p256}
	kiln init --dir "$dir" --algorithm "$alg" >/dev/null &&
		policy_add "$dir" "$EXAMPLES/policies/widget.yaml" &&
		policy_add "$dir" "$EXAMPLES/policies/widget-test.yaml"
}

finish() {
	echo "$(basename "$0"): $((TESTS_RUN - TESTS_FAILED))/$TESTS_RUN checks passed"
	[ "$TESTS_FAILED" -eq 0 ] && [ "$TESTS_RUN" -gt 0 ]
	exit $?
}

# ------------------------------------------------------------ kiln serve and kiln-device

: "${KILN_DEVICE_BIN:=$(dirname "$KILN_BIN")/kiln-device}"
device() { "${KILN_WRAP[@]}" "$KILN_DEVICE_BIN" "$@"; }

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# serve_start DIR [serve options...]: kiln serve on a free loopback port; sets URL, SERVE_PID,
# and writes the service chain (the anchors clients need) to $T/service.pem.
SERVE_WRAP=()
serve_start() {
	local dir=$1; shift
	PORT=$(free_port)
	URL=https://127.0.0.1:$PORT
	kiln --dir "$dir" ca chain --env service >"$T/service.pem" || return 1
	"${SERVE_WRAP[@]}" "${KILN_WRAP[@]}" "$KILN_BIN" --dir "$dir" serve --listen "127.0.0.1:$PORT" "$@" >>"$T/serve.log" 2>&1 &
	SERVE_PID=$!
	for _ in $(seq 600); do
		"${SERVE_WRAP[@]}" curl -sf --cacert "$T/service.pem" "$URL/healthz" >/dev/null 2>&1 && return 0
		kill -0 "$SERVE_PID" 2>/dev/null || { cat "$T/serve.log"; return 1; }
		sleep 0.1
	done
	echo "kiln serve did not come up"; cat "$T/serve.log"; return 1
}

# serve_start_fake OFFSET DIR [serve options...]: serve_start with kiln serve (and the
# readiness probe) under faketime OFFSET ("+400d"): certificates expire without waiting.
serve_start_fake() {
	local off=$1 rc; shift
	# libfaketime preloaded, not the faketime wrapper: SERVE_PID must be kiln's own pid.
	# Under ASan the preloaded library comes before the sanitizer's runtime: allowed explicitly.
	SERVE_WRAP=(env LD_PRELOAD=/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1 FAKETIME="$off"
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0")
	serve_start "$@"; rc=$?
	SERVE_WRAP=()
	return $rc
}

# serve_stop: SIGTERM, then the exit status of kiln serve.
serve_stop() {
	kill -TERM "$SERVE_PID" 2>/dev/null
	wait "$SERVE_PID"
}

# api PREFIX METHOD PATH [JSON_FILE]: a request with the identity PREFIX.crt/.key (PREFIX "-"
# for none); prints the HTTP status; the body lands in $T/api.body, headers in $T/api.headers.
api() {
	local who=$1 method=$2 path=$3 body=${4:-}
	local args=(-s -o "$T/api.body" -D "$T/api.headers" -w '%{http_code}' --cacert "$T/service.pem" -X "$method")
	[ "$who" != "-" ] && args+=(--cert "$who.crt" --key "$who.key")
	[ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data-binary "@$body")
	curl "${args[@]}" "$URL$path"
}

# json FILE EXPR: a Python expression over the parsed JSON in j.
json() { python3 -c "import json,sys; j = json.load(open(sys.argv[1])); print($2)" "$1"; }

# problem STATUS SLUG: the last api response was that RFC 9457 problem.
problem_is() {
	local want_status=$1 slug=$2 status=$3
	[ "$status" = "$want_status" ] || { echo "status $status, wanted $want_status: $(cat "$T/api.body")"; return 1; }
	grep -qi '^content-type: application/problem+json' "$T/api.headers" || { echo "not problem+json"; return 1; }
	[ "$(json "$T/api.body" 'j["type"]')" = "urn:kiln:problem:$slug" ] || { echo "type: $(cat "$T/api.body")"; return 1; }
	[ "$(json "$T/api.body" 'j["status"]')" = "$want_status" ] || return 1
}
