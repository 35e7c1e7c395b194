# TPM fixtures for the integration tests (sourced after lib.sh): a local TPM
# manufacturer CA (swtpm_localca) and swtpm instances whose EK certificates it
# signs, every state under $T. Every swtpm started here is stopped at exit.

tpm_cleanup() {
	local f
	for f in $(find "$T" -name swtpm.pid 2>/dev/null); do kill "$(cat "$f")" 2>/dev/null; done
	cleanup
}
trap tpm_cleanup EXIT

# tpm_ca DIR: a TPM manufacturer CA in DIR (made by swtpm_localca on first use);
# writes DIR/swtpm_setup.conf. The root is DIR/ca/swtpm-localca-rootca-cert.pem
# once the first EK certificate is made, its issuer DIR/ca/issuercert.pem.
tpm_ca() {
	local dir=$1
	mkdir -p "$dir/ca"
	cat >"$dir/localca.conf" <<CONF
statedir = $dir/ca
signingkey = $dir/ca/signkey.pem
issuercert = $dir/ca/issuercert.pem
certserial = $dir/ca/certserial
CONF
	cat >"$dir/localca.options" <<CONF
--platform-manufacturer kiln-test
--platform-version 2.1
--platform-model swtpm
CONF
	cat >"$dir/swtpm_setup.conf" <<CONF
create_certs_tool = /usr/bin/swtpm_localca
create_certs_tool_config = $dir/localca.conf
create_certs_tool_options = $dir/localca.options
CONF
}

# tpm_make CA_DIR STATE_DIR: a manufactured TPM (EK and its certificate in NV).
tpm_make() {
	mkdir -p "$2"
	swtpm_setup --tpm2 --tpmstate "$2" --create-ek-cert --config "$1/swtpm_setup.conf" \
		--overwrite >"$2/setup.log" 2>&1
}

# tpm_start STATE_DIR: runs swtpm on free loopback ports; prints its TCTI string.
tpm_start() {
	local dir=$1 port
	for _ in 1 2 3 4 5; do
		port=$(free_port)
		swtpm socket --tpm2 --tpmstate dir="$dir" --server type=tcp,port="$port",bindaddr=127.0.0.1 \
			--ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 \
			--flags not-need-init,startup-clear --daemon --pid file="$dir/swtpm.pid" \
			>"$dir/swtpm.log" 2>&1 || continue
		echo "swtpm:host=127.0.0.1,port=$port"
		return 0
	done
	return 1
}
