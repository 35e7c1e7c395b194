/*
 * libFuzzer target for the YAML parsers: product policies and kiln.yaml.
 * Both are pure (bytes in, struct out), so the whole input goes to each and
 * everything they allocate is freed. Seeds: fuzz/corpus/policy/.
 */
#include "policy/policy.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	kiln_slice in = kiln_slice_of(data, size);
	kiln_policy *p = NULL;
	kiln_config cfg;
	kiln_diag d;

	kiln_diag_clear(&d);
	if (kiln_is_ok(kiln_policy_parse(in, "fuzz.yaml", &p, &d))) {
		/* Exercise the queries on whatever parsed. */
		char out[256];

		(void)kiln_policy_serial_ok(p, "ABCD-1234");
		(void)kiln_policy_key_ok(p, "ec", "p256", 0);
		(void)kiln_policy_csr_attr_ok(p, "CN");
		for (size_t i = 0; i < p->n_subject; i++) {
			struct kiln_policy_vars v = { "ABCD-1234", p->product, "LOT1" };

			if (!kiln_is_ok(kiln_policy_render(p->subject[i].tmpl, &v, out, sizeof(out))))
				out[0] = '\0';
		}
	}
	kiln_policy_free(p);
	kiln_diag_clear(&d);
	if (kiln_is_ok(kiln_config_parse(in, "kiln.yaml", &cfg, &d))) {
		kiln_buf b;

		kiln_buf_init(&b, KILN_POLICY_MAX_BYTES);
		if (kiln_is_ok(kiln_config_format(&cfg, &b))) {
			kiln_config again;

			/* What format writes, parse must read back. */
			if (!kiln_is_ok(kiln_config_parse(kiln_buf_view(&b), "kiln.yaml", &again, NULL)) ||
			    memcmp(&cfg, &again, sizeof(cfg)) != 0)
				__builtin_trap();
		}
		kiln_buf_cleanup(&b);
	}
	return 0;
}
