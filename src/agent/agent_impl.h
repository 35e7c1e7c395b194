/*
 * kiln agent internals: the root-of-trust vtable rot.c dispatches through,
 * the state directory's metadata (rot.json) every root of trust shares, and
 * the constructors of each implementation. Not part of include/kiln/agent.h.
 */
#ifndef KILN_AGENT_IMPL_H
#define KILN_AGENT_IMPL_H

#include "kiln/agent.h"

#include "crypto/crypto.h"

struct json_t;

#define KILN_ROT_META_MAX 65536 /* rot.json */
#define KILN_ROT_TEXT_MAX 64    /* firmware version and component ids, NUL included */
#define KILN_ROT_PATH_MAX 4096

/*
 * What a root of trust implements. Every function gets the kiln_rot whose
 * impl it made; destroy wipes and frees impl (never NULL when called).
 */
struct kiln_rot_ops {
	const char *type; /* "dice": the rot.json type and kiln_rot_type() */
	kiln_result (*csr)(kiln_rot *rot, kiln_buf *der, kiln_diag *d);
	kiln_result (*evidence)(kiln_rot *rot, const uint8_t nonce[KILN_NONCE_LEN],
				kiln_slice csr_der, struct json_t **out, kiln_diag *d);
	kiln_result (*inject)(kiln_rot *rot, const char *fault);
	void (*destroy)(void *impl);
	/* Optional (NULL: the root of trust needs no activation round trip). */
	kiln_result (*activation_request)(kiln_rot *rot, struct json_t **out, kiln_diag *d);
	kiln_result (*activate)(kiln_rot *rot, const struct json_t *resp, kiln_diag *d);
};

/* rot.json: {"type", "serial", "firmware_version", "components": {"soc", "pcb", "se"}}. */
struct kiln_rot_meta {
	char type[16];
	char serial[KILN_DEVICE_SERIAL_MAX + 1];
	char firmware_version[KILN_ROT_TEXT_MAX];
	char soc[KILN_ROT_TEXT_MAX];
	char pcb[KILN_ROT_TEXT_MAX];
	char se[KILN_ROT_TEXT_MAX];
};

/* A booted root of trust. Owned by its user; kiln_rot_free wipes it. */
struct kiln_rot {
	const struct kiln_rot_ops *ops;
	struct kiln_rot_meta meta;
	EVP_PKEY *identity;      /* the identity key's public half only (owned) */
	void *impl;              /* the implementation's state (owned, freed by ops->destroy) */
};

/* Printable ASCII without spaces, 1 to cap - 1 bytes: serials, versions, component ids. */
bool kiln_rot_text_ok(const char *s, size_t cap);
/* state_dir/name into out (cap bytes); KILN_ERR_ARG when it does not fit. */
KILN_MUST_USE kiln_result kiln_rot_path(const char *state_dir, const char *name, char *out,
					size_t cap, kiln_diag *d);
/* Reads and strictly checks state_dir/rot.json. */
KILN_MUST_USE kiln_result kiln_rot_meta_read(const char *state_dir, struct kiln_rot_meta *m,
					     kiln_diag *d);
/* Writes state_dir/rot.json atomically (mode 0600). */
KILN_MUST_USE kiln_result kiln_rot_meta_write(const char *state_dir, const struct kiln_rot_meta *m,
					      kiln_diag *d);

/* Boots the simulated DICE device in state_dir, described by m (dice_sim.c). Caller frees. */
KILN_MUST_USE kiln_result kiln_dice_sim_open(const char *state_dir, const struct kiln_rot_meta *m,
					     kiln_rot **out, kiln_diag *d);

/* Boots the TPM device in state_dir (tpm.c): connects, loads its keys. Caller frees. */
KILN_MUST_USE kiln_result kiln_tpm_open(const char *state_dir, const struct kiln_rot_meta *m,
					kiln_rot **out, kiln_diag *d);

/*
 * The station's next nonce (client.c): the "next" member of the last finish
 * answer (the shape of a begin answer), kept on the client that got it.
 * keep takes ownership (NULL drops what is kept). take hands it over when it
 * is for lot and valid for at least KILN_NEXT_NONCE_MARGIN_S more seconds,
 * else drops it and returns NULL.
 */
#define KILN_NEXT_NONCE_MARGIN_S 5
/* kiln_client_call with the body already serialised (NULL: none). */
KILN_MUST_USE kiln_result kiln_client_call_text(kiln_client *c, const char *method,
						const char *path, const char *text, long *status,
						struct json_t **resp, kiln_diag *d);
void kiln_client_next_keep(kiln_client *c, struct json_t *next);
struct json_t *kiln_client_next_take(kiln_client *c, const char *lot);

#endif /* KILN_AGENT_IMPL_H */
