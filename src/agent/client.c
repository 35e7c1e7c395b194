/*
 * The provisioning client: JSON over HTTPS with a client certificate
 * (libcurl). The server is verified against the given anchors, TLS 1.2 at
 * least; responses are capped and parsed with core's bounded JSON parser.
 */
#include "agent_impl.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RESPONSE_MAX (4u * 1024 * 1024)
#define CLIENT_MAX_RETRIES 30

struct kiln_client {
	CURL *curl;
	char url[512];
	kiln_buf response;
	json_t *next; /* the next nonce, see kiln_client_next_keep */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t on_data(char *ptr, size_t size, size_t n, void *ctx)
{
	kiln_client *c = ctx;
	size_t len;

	if (!kiln_mul_size(size, n, &len) || !kiln_is_ok(kiln_buf_append(&c->response, ptr, len)))
		return 0; /* over the cap: curl aborts the transfer */
	return len;
}

kiln_result kiln_client_new(const struct kiln_client_opts *o, kiln_client **out, kiln_diag *d)
{
	kiln_client *c;
	bool ok;

	*out = NULL;
	if (o->url == NULL || o->cert == NULL || o->key == NULL || o->ca == NULL)
		return kiln_diag_set(d, KILN_ERR_USAGE,
				     "the client needs a server URL, a certificate, a key and CA anchors");
	if (pthread_once(&curl_once, curl_init) != 0 || curl_init_rc != CURLE_OK)
		return kiln_diag_set(d, KILN_ERR_INTERNAL, "libcurl could not be initialised");
	if (strlen(o->url) >= sizeof(((kiln_client *)NULL)->url))
		return kiln_diag_set(d, KILN_ERR_USAGE, "the server URL is longer than %zu bytes",
				     sizeof(((kiln_client *)NULL)->url) - 1);
	c = calloc(1, sizeof(*c));
	KILN_ENSURE(c != NULL, KILN_ERR_NOMEM);
	kiln_buf_init(&c->response, RESPONSE_MAX);
	c->curl = curl_easy_init();
	ok = c->curl != NULL && kiln_is_ok(kiln_strlcpy(c->url, o->url, sizeof(c->url)));
	ok = ok && curl_easy_setopt(c->curl, CURLOPT_SSLCERT, o->cert) == CURLE_OK &&
	     curl_easy_setopt(c->curl, CURLOPT_SSLKEY, o->key) == CURLE_OK &&
	     curl_easy_setopt(c->curl, CURLOPT_CAINFO, o->ca) == CURLE_OK &&
	     curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK &&
	     curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK &&
	     curl_easy_setopt(c->curl, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) == CURLE_OK &&
	     curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "https") == CURLE_OK &&
	     curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
	     curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS,
			      o->timeout_ms > 0 ? o->timeout_ms : 30000L) == CURLE_OK &&
	     curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L) == CURLE_OK &&
	     curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_data) == CURLE_OK &&
	     curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, c) == CURLE_OK;
	if (!ok) {
		kiln_client_free(c);
		return kiln_diag_set(d, KILN_ERR_INTERNAL, "libcurl refused the client settings");
	}
	*out = c;
	return kiln_ok();
}

void kiln_client_free(kiln_client *c)
{
	if (c == NULL)
		return;
	if (c->curl != NULL)
		curl_easy_cleanup(c->curl);
	kiln_buf_cleanup(&c->response);
	json_decref(c->next);
	free(c);
}

void kiln_client_next_keep(kiln_client *c, json_t *next)
{
	json_decref(c->next);
	c->next = next;
}

json_t *kiln_client_next_take(kiln_client *c, const char *lot)
{
	json_t *next = c->next;
	const char *its_lot = json_string_value(json_object_get(next, "lot"));
	json_t *expires = json_object_get(next, "expires");

	c->next = NULL;
	if (next == NULL || its_lot == NULL || lot == NULL || strcmp(its_lot, lot) != 0 ||
	    !json_is_integer(expires) ||
	    json_integer_value(expires) - kiln_now() < KILN_NEXT_NONCE_MARGIN_S) {
		json_decref(next);
		return NULL;
	}
	return next;
}

static kiln_result perform(kiln_client *c, const char *method, const char *url, const char *body,
			   long *status, kiln_diag *d)
{
	struct curl_slist *headers = NULL;
	CURLcode rc;

	kiln_buf_reset(&c->response);
	headers = curl_slist_append(headers, "Accept: application/json, application/problem+json");
	if (body != NULL)
		headers = curl_slist_append(headers, "Content-Type: application/json");
	KILN_ENSURE(headers != NULL, KILN_ERR_NOMEM);
	(void)curl_easy_setopt(c->curl, CURLOPT_URL, url);
	(void)curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers);
	if (strcmp(method, "POST") == 0) {
		(void)curl_easy_setopt(c->curl, CURLOPT_POST, 1L);
		(void)curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body != NULL ? body : "");
		(void)curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE,
				       (long)(body != NULL ? strlen(body) : 0));
	} else {
		(void)curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
	}
	rc = curl_easy_perform(c->curl);
	curl_slist_free_all(headers);
	(void)curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
	if (rc != CURLE_OK)
		return kiln_diag_set(d, KILN_ERR_IO, "%s %s: %s", method, url, curl_easy_strerror(rc));
	(void)curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, status);
	return kiln_ok();
}

/* How long a 429 asks us to wait (Retry-After), bounded; 1 s when it does not say. */
static unsigned retry_after(kiln_client *c)
{
	curl_off_t wait = 0;

	if (curl_easy_getinfo(c->curl, CURLINFO_RETRY_AFTER, &wait) != CURLE_OK || wait <= 0)
		return 1;
	return wait > 10 ? 10 : (unsigned)wait;
}

kiln_result kiln_client_call_text(kiln_client *c, const char *method, const char *path,
				  const char *text, long *status, json_t **resp, kiln_diag *d)
{
	char url[1024];
	kiln_result r;
	int n;

	*resp = NULL;
	*status = 0;
	n = snprintf(url, sizeof(url), "%s%s", c->url, path);
	KILN_ENSURE(n > 0 && (size_t)n < sizeof(url), KILN_ERR_TOO_BIG);
	/* Rate limited: wait as asked and send the same request again (a bounded number of times). */
	for (int attempt = 0;; attempt++) {
		r = perform(c, method, url, text, status, d);
		if (!kiln_is_ok(r) || *status != 429 || attempt >= CLIENT_MAX_RETRIES)
			break;
		(void)sleep(retry_after(c));
	}
	KILN_GUARD(r);
	if (c->response.len == 0)
		return kiln_diag_set(d, KILN_ERR_MALFORMED, "%s %s: HTTP %ld with an empty body", method,
				     path, *status);
	return kiln_json_parse(kiln_buf_view(&c->response), RESPONSE_MAX, resp, d);
}

kiln_result kiln_client_call(kiln_client *c, const char *method, const char *path,
			     const json_t *body, long *status, json_t **resp, kiln_diag *d)
{
	char *text = NULL;
	kiln_result r;

	*resp = NULL;
	*status = 0;
	if (body != NULL) {
		text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
		KILN_ENSURE(text != NULL, KILN_ERR_NOMEM);
	}
	r = kiln_client_call_text(c, method, path, text, status, resp, d);
	free(text);
	return r;
}
