#!/usr/bin/env bash
# Commit before release, under a crash: kill -9 kiln serve in the middle of a
# 1,000-device run, restart it, run the stations again. Every certificate a
# device received has its rows, no serial was issued twice, the run completes.
. "$(dirname "$0")/lib.sh"

D=$T/d
N=${CRASH_DEVICES:-1000}
HALF=$((N / 2))
check "deploy" deploy "$D"
check "station st-1" kiln --dir "$D" identity add --name st-1 --role station --out "$T/st-1"
check "station st-2" kiln --dir "$D" identity add --name st-2 --role station --out "$T/st-2"
check "lot 1" kiln --dir "$D" batch open --product widget --lot LOT-1 --quantity "$HALF"
check "lot 2" kiln --dir "$D" batch open --product widget --lot LOT-2 --quantity "$HALF"
check "serve" serve_start "$D" --nonce-ttl 600

run_stations() {
	for s in 1 2; do
		device provision --state "$T/st-$s" --server "$URL" --cert "$T/st-$s.crt" --key "$T/st-$s.key" \
			--ca "$T/service.pem" --product widget --lot "LOT-$s" --count "$HALF" --parallel 4 \
			--serial-prefix "WGT-C$s-" --json >"$T/run$1-st-$s.out" 2>"$T/run$1-st-$s.err" &
		eval "pid_$s=\$!"
	done
}

run_stations 1
# Kill the server hard once a good part of the run is committed.
for _ in $(seq 600); do
	[ "$(rows "$D" devices 2>/dev/null || echo 0)" -ge $((N * 3 / 10)) ] && break
	sleep 0.05
done
kill -9 "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null
at_kill=$(rows "$D" devices)
wait "$pid_1"; wait "$pid_2"
pass "killed kiln serve (SIGKILL) with $at_kill devices committed"
check "the database survived the crash" test "$(sqlite3 "$D/kiln.db" 'PRAGMA integrity_check')" = ok
pending=$(ls "$T"/st-*/devices/*/pending.json 2>/dev/null | wc -l)
echo "     devices with a pending request after the crash: $pending"

check "restart" serve_start "$D" --nonce-ttl 600
run_stations 2
wait "$pid_1"; rc1=$?; wait "$pid_2"; rc2=$?
check "the rerun completes (station 1)" test "$rc1" -eq 0
check "the rerun completes (station 2)" test "$rc2" -eq 0
[ "$rc1" -eq 0 ] && [ "$rc2" -eq 0 ] || head -n 20 "$T"/run2-st-*.err
resumed=$(( $(json "$T/run2-st-1.out" 'j["resumed"]') + $(json "$T/run2-st-2.out" 'j["resumed"]') ))
echo "     requests resent after the crash: $resumed"

# Every certificate a device holds is in the inventory, byte for byte.
sqlite3 "$D/kiln.db" "SELECT hex(der) FROM certificates WHERE kind = 'device'" | sort >"$T/db-certs"
: >"$T/dev-certs"
for cert in "$T"/st-*/devices/*/cert.pem; do
	awk '/BEGIN CERT/{n++} n==1' "$cert" | openssl x509 -outform DER | xxd -p -u | tr -d '\n' >>"$T/dev-certs"
	echo >>"$T/dev-certs"
done
sort -o "$T/dev-certs" "$T/dev-certs"
check "$N devices hold a certificate" test "$(wc -l <"$T/dev-certs")" -eq "$N"
missing=$(comm -23 "$T/dev-certs" "$T/db-certs" | wc -l)
check "every certificate a device received has its row, byte for byte" test "$missing" -eq 0
check "$N device rows, $N certificate rows" test "$(rows "$D" devices)" -eq "$N" -a "$(rows "$D" certificates "kind = 'device'")" -eq "$N"
check "no serial issued twice" test "$(sqlite3 "$D/kiln.db" "SELECT count(DISTINCT cert_serial) FROM devices")" -eq "$N"
check "no device certified twice" test "$(sqlite3 "$D/kiln.db" "SELECT count(*) FROM (SELECT device_id FROM certificates WHERE kind='device' GROUP BY device_id HAVING count(*) > 1)")" -eq 0
check "the lots' budgets match exactly" test "$(sqlite3 "$D/kiln.db" "SELECT sum(issued) FROM batches")" -eq "$N"
check "one issuance event per certificate" test "$(rows "$D" events "type = 'issuance'")" -eq "$N"
check "no nonce holds a certificate the inventory lacks" test "$(sqlite3 "$D/kiln.db" \
	"SELECT count(*) FROM nonces n WHERE n.used <> 0 AND NOT EXISTS (SELECT 1 FROM certificates c WHERE c.serial = n.cert_serial)")" -eq 0
check "graceful stop" serve_stop
finish
