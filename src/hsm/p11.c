/*
 * PKCS#11 modules: loading by path, initialisation, slot lookup by token
 * label, and token bootstrap for modules with a free slot (SoftHSM2).
 *
 * Two decisions worth knowing:
 *
 * - C_Initialize is once per module per process, but kiln (and its tests)
 *   may load the same module several times. The registry below is the one
 *   piece of process-wide mutable state in the backend: per loaded module
 *   (keyed by its function list, which dlopen makes unique per library) it
 *   counts kiln_p11 handles and remembers whether kiln called C_Initialize.
 *   The last kiln_p11_free calls C_Finalize, and only if kiln initialised
 *   the module; a module someone else in the process initialised is left
 *   alone.
 *
 * - Modules are never dlclosed. A module may leave process-wide state that
 *   points into its code (thread-local destructors, atexit handlers,
 *   OpenSSL providers), and ASan, LeakSanitizer and valgrind can only name
 *   frames (and apply suppressions) in libraries still mapped at exit. The
 *   cost is the mapping, once per library: dlopen refcounts it.
 */
#include "p11.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define KILN_P11_MAX_MODULES 8
#define KILN_P11_MAX_SLOTS 1024

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	CK_FUNCTION_LIST_PTR fn;
	unsigned refs;
	bool finalize; /* kiln's C_Initialize succeeded: kiln calls C_Finalize */
} registry[KILN_P11_MAX_MODULES];

KILN_MUST_USE
static kiln_result registry_acquire(kiln_p11 *p, kiln_diag *d)
{
	kiln_result r = kiln_ok();
	size_t i, slot = KILN_P11_MAX_MODULES;
	CK_C_INITIALIZE_ARGS args;
	CK_RV rv;

	(void)pthread_mutex_lock(&registry_mu);
	for (i = 0; i < KILN_P11_MAX_MODULES; i++) {
		if (registry[i].fn == p->fn) {
			registry[i].refs++;
			goto out;
		}
		if (registry[i].fn == NULL && slot == KILN_P11_MAX_MODULES)
			slot = i;
	}
	if (slot == KILN_P11_MAX_MODULES) {
		r = kiln_diag_set(d, KILN_ERR_HSM_MODULE,
				  "PKCS#11 module %s cannot be loaded: kiln already uses %d modules",
				  p->path, KILN_P11_MAX_MODULES);
		goto out;
	}
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	rv = p->fn->C_Initialize(&args);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		r = kiln_diag_set(d, KILN_ERR_HSM_MODULE,
				  "C_Initialize failed for PKCS#11 module %s: %s (0x%lx)", p->path,
				  kiln_p11_ckr_name(rv), (unsigned long)rv);
		goto out;
	}
	registry[slot].fn = p->fn;
	registry[slot].refs = 1;
	registry[slot].finalize = rv == CKR_OK;
out:
	(void)pthread_mutex_unlock(&registry_mu);
	return r;
}

static void registry_release(CK_FUNCTION_LIST_PTR fn)
{
	(void)pthread_mutex_lock(&registry_mu);
	for (size_t i = 0; i < KILN_P11_MAX_MODULES; i++) {
		if (registry[i].fn != fn)
			continue;
		if (--registry[i].refs == 0) {
			if (registry[i].finalize)
				(void)fn->C_Finalize(NULL);
			registry[i].fn = NULL;
			registry[i].finalize = false;
		}
		break;
	}
	(void)pthread_mutex_unlock(&registry_mu);
}

static bool printable(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	}
	return true;
}

/* dlerror() usually repeats the path; keep the reason only. */
static const char *dl_reason(const char *path)
{
	const char *e = dlerror();
	size_t n = strlen(path);

	if (e == NULL)
		return "unknown reason";
	if (strncmp(e, path, n) == 0 && e[n] == ':' && e[n + 1] == ' ')
		return e + n + 2;
	return e;
}

KILN_MUST_USE
static kiln_result load_functions(kiln_p11 *p, kiln_diag *d)
{
	CK_C_GetFunctionList get = NULL;
	void *sym;
	CK_RV rv;

	(void)dlerror();
	p->dl = dlopen(p->path, RTLD_NOW | RTLD_LOCAL);
	if (p->dl == NULL)
		return kiln_diag_set(d, KILN_ERR_HSM_MODULE,
				     "PKCS#11 module %s cannot be loaded: %s",
				     p->path, dl_reason(p->path));
	sym = dlsym(p->dl, "C_GetFunctionList");
	if (sym == NULL)
		return kiln_diag_set(d, KILN_ERR_HSM_MODULE,
				     "%s is not a PKCS#11 module: it has no C_GetFunctionList",
				     p->path);
	/* ISO C has no object-to-function pointer cast; POSIX guarantees the copy works. */
	memcpy(&get, &sym, sizeof(get));
	rv = get(&p->fn);
	if (rv != CKR_OK || p->fn == NULL)
		return kiln_diag_set(d, KILN_ERR_HSM_MODULE,
				     "C_GetFunctionList failed for PKCS#11 module %s: %s (0x%lx)",
				     p->path, kiln_p11_ckr_name(rv), (unsigned long)rv);
	if (p->fn->version.major != 2 && p->fn->version.major != 3)
		return kiln_diag_set(d, KILN_ERR_HSM_MODULE,
				     "PKCS#11 module %s implements Cryptoki %u.%u; kiln needs 2.x or 3.x",
				     p->path, p->fn->version.major, p->fn->version.minor);
	return kiln_ok();
}

/* Length of a blank-padded PKCS#11 text field without its padding. */
static int padded_len(const CK_UTF8CHAR *s, size_t n)
{
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\0'))
		n--;
	return (int)n;
}

static void log_module_info(const kiln_p11 *p)
{
	CK_INFO info;

	if (p->log.fn == NULL || p->fn->C_GetInfo(&info) != CKR_OK)
		return;
	kiln_log_info(&p->log, "PKCS#11 module %s: %.*s, Cryptoki %u.%u", p->path,
		      padded_len(info.manufacturerID, sizeof(info.manufacturerID)),
		      (const char *)info.manufacturerID, info.cryptokiVersion.major,
		      info.cryptokiVersion.minor);
}

kiln_result kiln_p11_load(const char *module_path, const kiln_log *log, kiln_p11 **out,
			  kiln_diag *d)
{
	kiln_result r;
	kiln_p11 *p;
	size_t n;

	if (module_path == NULL || out == NULL || *module_path == '\0')
		return kiln_diag_set(d, KILN_ERR_ARG, "no PKCS#11 module path given");
	n = strlen(module_path);
	if (n >= PATH_MAX || !printable(module_path))
		return kiln_diag_set(d, KILN_ERR_ARG,
				     "PKCS#11 module path is too long or holds control characters");
	p = calloc(1, sizeof(*p) + n + 1);
	if (p == NULL)
		return kiln_fail(KILN_ERR_NOMEM);
	memcpy(p->path, module_path, n + 1);
	if (log != NULL)
		p->log = *log;
	KILN_TRY(r, load_functions(p, d));
	KILN_TRY(r, registry_acquire(p, d));
	log_module_info(p);
	*out = p;
	p = NULL;
out:
	free(p); /* only on failure: not registered, and never dlclosed */
	return r;
}

void kiln_p11_free(kiln_p11 *p11)
{
	if (p11 == NULL)
		return;
	registry_release(p11->fn);
	free(p11);
}

kiln_result kiln_p11_check_label(const char *label, kiln_diag *d)
{
	size_t n;

	if (label == NULL || *label == '\0')
		return kiln_diag_set(d, KILN_ERR_ARG, "no HSM token label given");
	n = strlen(label);
	if (n > KILN_TOKEN_LABEL_LEN || !printable(label) || label[n - 1] == ' ')
		return kiln_diag_set(d, KILN_ERR_ARG,
				     "HSM token label must be 1 to %d printable bytes without a trailing blank",
				     KILN_TOKEN_LABEL_LEN);
	return kiln_ok();
}

void kiln_p11_label_pad(const char *label, CK_UTF8CHAR out[KILN_TOKEN_LABEL_LEN])
{
	size_t n = strnlen(label, KILN_TOKEN_LABEL_LEN);

	memset(out, ' ', KILN_TOKEN_LABEL_LEN);
	memcpy(out, label, n);
}

KILN_MUST_USE
static kiln_result check_pin(const char *pin, const char *which, const char *label, kiln_diag *d)
{
	size_t n = pin != NULL ? strnlen(pin, KILN_P11_PIN_MAX + 1) : 0;

	if (n == 0 || n > KILN_P11_PIN_MAX)
		return kiln_diag_set(d, KILN_ERR_HSM_PIN,
				     "%s for HSM token %s must be 1 to %d bytes", which, label,
				     KILN_P11_PIN_MAX);
	return kiln_ok();
}

/* The present slots; caller frees *out. */
KILN_MUST_USE
static kiln_result slot_list(const kiln_p11 *p11, CK_SLOT_ID **out, CK_ULONG *count, kiln_diag *d)
{
	CK_SLOT_ID *slots = NULL;
	CK_ULONG n = 0;
	CK_RV rv;

	/* The list can grow between the two calls; a few rounds settle it. */
	for (int round = 0; round < 4; round++) {
		rv = p11->fn->C_GetSlotList(CK_TRUE, NULL, &n);
		if (rv != CKR_OK)
			break;
		if (n > KILN_P11_MAX_SLOTS)
			return kiln_diag_set(d, KILN_ERR_HSM, "PKCS#11 module %s reports %lu slots",
					     p11->path, (unsigned long)n);
		free(slots);
		slots = calloc(n > 0 ? n : 1, sizeof(*slots));
		if (slots == NULL)
			return kiln_fail(KILN_ERR_NOMEM);
		rv = p11->fn->C_GetSlotList(CK_TRUE, slots, &n);
		if (rv != CKR_BUFFER_TOO_SMALL)
			break;
	}
	if (rv != CKR_OK) {
		free(slots);
		return kiln_p11_fail(d, rv, "C_GetSlotList", "PKCS#11 module", p11->path);
	}
	*out = slots;
	*count = n;
	return kiln_ok();
}

/*
 * Scans the slots: *found gets the slot of the initialised token labelled
 * label (KILN_ERR_HSM_TOKEN_MISSING if none; KILN_ERR_HSM if two), *free_slot
 * the first slot with an uninitialised token (if free_slot is not NULL).
 */
KILN_MUST_USE
static kiln_result scan_slots(const kiln_p11 *p11, const char *label, CK_SLOT_ID *found,
			      bool *have_free, CK_SLOT_ID *free_slot, kiln_diag *d)
{
	CK_UTF8CHAR want[KILN_TOKEN_LABEL_LEN];
	CK_SLOT_ID *slots = NULL;
	CK_ULONG n = 0;
	unsigned matches = 0;

	kiln_p11_label_pad(label, want);
	KILN_GUARD(slot_list(p11, &slots, &n, d));
	if (have_free != NULL)
		*have_free = false;
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO ti;

		/* A token that does not answer is not the one we look for. */
		if (p11->fn->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue;
		if (!(ti.flags & CKF_TOKEN_INITIALIZED)) {
			if (have_free != NULL && !*have_free) {
				*have_free = true;
				*free_slot = slots[i];
			}
			continue;
		}
		if (memcmp(ti.label, want, sizeof(want)) == 0) {
			*found = slots[i];
			matches++;
		}
	}
	free(slots);
	if (matches > 1)
		return kiln_diag_set(d, KILN_ERR_HSM,
				     "%u HSM tokens are labelled %s; labels must be unique", matches,
				     label);
	if (matches == 0)
		return kiln_diag_set(d, KILN_ERR_HSM_TOKEN_MISSING,
				     "no HSM token labelled %s in PKCS#11 module %s", label, p11->path);
	return kiln_ok();
}

kiln_result kiln_p11_find_slot(const kiln_p11 *p11, const char *label, CK_SLOT_ID *slot,
			       kiln_diag *d)
{
	KILN_GUARD(kiln_p11_check_label(label, d));
	return scan_slots(p11, label, slot, NULL, NULL, d);
}

/* Opens a session as security officer and sets the user PIN. */
KILN_MUST_USE
static kiln_result set_user_pin(const kiln_p11 *p11, CK_SLOT_ID slot, const char *label,
				const char *so_pin, const char *user_pin, kiln_diag *d)
{
	CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
	kiln_result r = kiln_ok();
	bool logged_in = false;
	CK_RV rv;

	rv = p11->fn->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h);
	if (rv != CKR_OK)
		return kiln_p11_fail(d, rv, "C_OpenSession", "HSM token", label);
	rv = p11->fn->C_Login(h, CKU_SO, (CK_UTF8CHAR_PTR)so_pin, (CK_ULONG)strlen(so_pin));
	if (rv != CKR_OK) {
		r = kiln_p11_fail(d, rv, "C_Login (security officer)", "HSM token", label);
		goto out;
	}
	logged_in = true;
	rv = p11->fn->C_InitPIN(h, (CK_UTF8CHAR_PTR)user_pin, (CK_ULONG)strlen(user_pin));
	if (rv != CKR_OK)
		r = kiln_p11_fail(d, rv, "C_InitPIN", "HSM token", label);
out:
	if (logged_in)
		(void)p11->fn->C_Logout(h);
	(void)p11->fn->C_CloseSession(h);
	return r;
}

kiln_result kiln_p11_init_token(kiln_p11 *p11, const char *label, const char *so_pin,
				const char *user_pin, kiln_diag *d)
{
	CK_UTF8CHAR padded[KILN_TOKEN_LABEL_LEN];
	CK_SLOT_ID existing = 0, free_slot = 0;
	bool have_free = false;
	kiln_diag scan;
	kiln_result r;
	CK_RV rv;

	if (p11 == NULL)
		return kiln_diag_set(d, KILN_ERR_ARG, "no PKCS#11 module given");
	KILN_GUARD(kiln_p11_check_label(label, d));
	KILN_GUARD(check_pin(so_pin, "security officer PIN", label, d));
	KILN_GUARD(check_pin(user_pin, "user PIN", label, d));

	kiln_diag_clear(&scan);
	r = scan_slots(p11, label, &existing, &have_free, &free_slot, &scan);
	if (kiln_is_ok(r))
		return kiln_diag_set(d, KILN_ERR_EXISTS, "HSM token %s exists already", label);
	if (r.code != KILN_ERR_HSM_TOKEN_MISSING)
		return kiln_p11_forward(d, r, &scan);
	if (!have_free)
		return kiln_diag_set(d, KILN_ERR_HSM,
				     "PKCS#11 module %s has no free slot for token %s",
				     p11->path, label);

	kiln_p11_label_pad(label, padded);
	rv = p11->fn->C_InitToken(free_slot, (CK_UTF8CHAR_PTR)so_pin, (CK_ULONG)strlen(so_pin),
				  padded);
	if (rv != CKR_OK)
		return kiln_p11_fail(d, rv, "C_InitToken", "HSM token", label);
	/* SoftHSM2 moves a freshly initialised token to a new slot id: look again. */
	r = scan_slots(p11, label, &existing, NULL, NULL, NULL);
	if (!kiln_is_ok(r))
		return kiln_diag_set(d, KILN_ERR_HSM,
				     "HSM token %s was initialised but is not found again", label);
	KILN_GUARD(set_user_pin(p11, existing, label, so_pin, user_pin, d));
	kiln_log_info(&p11->log, "HSM token %s initialised in slot %lu", label,
		      (unsigned long)existing);
	return kiln_ok();
}
