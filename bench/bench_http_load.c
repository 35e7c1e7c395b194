/*
 * bench_http_load: a small HTTP load generator for bench/ocsp, so that every
 * responder is measured with the same tool in the same modes. wrk cannot
 * measure `openssl ocsp -port`, which answers HTTP/1.0 and closes every
 * connection: wrk with two or more connections completed no request there.
 *
 * N connections over T threads (epoll, one loop per thread), each sending
 * the same request bytes again and again:
 *   - keep-alive: the next request on the same connection as soon as the
 *     answer is in (a server that closes anyway gets a new connection);
 *   - --close: "Connection: close" and a new connection per request. The
 *     client resets the connection once the answer is in (SO_LINGER 0), so
 *     its ephemeral ports do not run out in TIME_WAIT at 10k connections/s.
 *
 * An answer counts as "ok" only if it is a complete HTTP/1.x response with a
 * 2xx status, the --expect-type Content-Type (case-insensitive) and, with
 * --ocsp, a body that is an OCSPResponse whose responseStatus is successful
 * (0). Everything else is counted by kind. Prints one line:
 *   ok_per_s=... ok=... non2xx=... bad_type=... bad_body=... errors=...
 *   p50_us=... p99_us=... seconds=... connections=... threads=... mode=...
 * Latency is from the first byte written to the last byte read, per answer
 * (with --close, the connect is included).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 4096
#define MAX_THREADS 16
#define RESP_MAX (256 * 1024)
#define LAT_MAX (8u * 1024 * 1024) /* latencies kept per thread */

struct opts {
	struct sockaddr_in addr;
	const char *req;
	size_t req_len;
	const char *expect_type;
	bool ocsp, close_mode;
	unsigned conns, threads;
	double seconds;
};

struct counts {
	uint64_t ok, non2xx, bad_type, bad_body, errors;
};

struct conn {
	int fd;
	size_t sent;
	char *buf;
	size_t have;
	uint64_t t0;
};

struct thr {
	const struct opts *o;
	unsigned n;
	pthread_t th;
	struct counts c;
	uint32_t *lat;
	size_t n_lat;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int conn_open(const struct opts *o, int ep, struct conn *c)
{
	struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN, .data.ptr = c };
	int one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -1;
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (const struct sockaddr *)&o->addr, sizeof(o->addr)) != 0 &&
	    errno != EINPROGRESS) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	c->sent = 0;
	c->have = 0;
	c->t0 = now_ns();
	return epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void conn_close(int ep, struct conn *c, bool reset)
{
	struct linger lg = { 1, 0 };

	if (c->fd < 0)
		return;
	(void)epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	if (reset)
		(void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(c->fd);
	c->fd = -1;
}

/* A header's value in head (up to the blank line), or NULL; *len its length. */
static const char *header(const char *head, size_t head_len, const char *name, size_t *len)
{
	size_t nl = strlen(name);
	const char *p = memchr(head, '\n', head_len), *end = head + head_len;

	while (p != NULL && p + 1 < end) {
		const char *line = p + 1, *eol = memchr(line, '\n', (size_t)(end - line));

		if (eol == NULL)
			break;
		if ((size_t)(eol - line) > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
			const char *v = line + nl + 1;

			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			*len = (size_t)(eol - v);
			while (*len > 0 && (v[*len - 1] == '\r' || v[*len - 1] == ' '))
				--*len;
			return v;
		}
		p = eol;
	}
	return NULL;
}

/* DER OCSPResponse: SEQUENCE { ENUMERATED responseStatus, ... }; true when status 0. */
static bool ocsp_successful(const uint8_t *b, size_t n)
{
	size_t i = 2;

	if (n < 5 || b[0] != 0x30)
		return false;
	if (b[1] & 0x80)
		i += b[1] & 0x7f;
	return i + 3 <= n && b[i] == 0x0a && b[i + 1] == 0x01 && b[i + 2] == 0x00;
}

enum parsed { NEED_MORE, DONE_KEEP, DONE_CLOSE, BROKEN };

/*
 * Looks at what has arrived; when a whole answer is in, counts it.
 * eof: the server closed (a body without Content-Length ends there).
 */
static enum parsed parse(struct thr *t, struct conn *c, bool eof)
{
	const char *b = c->buf, *sep, *v;
	size_t head_len, vlen, clen = 0, body_len;
	bool has_len, server_close;
	int status;

	if (c->have < 12)
		return eof ? BROKEN : NEED_MORE;
	sep = memmem(b, c->have, "\r\n\r\n", 4);
	if (sep == NULL)
		return eof || c->have == RESP_MAX ? BROKEN : NEED_MORE;
	head_len = (size_t)(sep - b) + 2;
	if ((strncmp(b, "HTTP/1.1 ", 9) != 0 && strncmp(b, "HTTP/1.0 ", 9) != 0) ||
	    sscanf(b + 9, "%3d", &status) != 1)
		return BROKEN;
	v = header(b, head_len, "Content-Length", &vlen);
	has_len = v != NULL;
	if (has_len)
		clen = strtoul(v, NULL, 10);
	body_len = c->have - head_len - 2;
	if (has_len && body_len < clen)
		return eof ? BROKEN : NEED_MORE;
	if (!has_len && !eof)
		return NEED_MORE;
	if (!has_len)
		clen = body_len;
	v = header(b, head_len, "Connection", &vlen);
	server_close = strncmp(b, "HTTP/1.0", 8) == 0 ? !(v != NULL && vlen == 10 &&
							   strncasecmp(v, "keep-alive", 10) == 0)
						      : (v != NULL && vlen == 5 &&
							 strncasecmp(v, "close", 5) == 0);
	if (status < 200 || status > 299) {
		t->c.non2xx++;
	} else if ((v = header(b, head_len, "Content-Type", &vlen)) == NULL ||
		   vlen < strlen(t->o->expect_type) ||
		   strncasecmp(v, t->o->expect_type, strlen(t->o->expect_type)) != 0) {
		t->c.bad_type++;
	} else if (t->o->ocsp && !ocsp_successful((const uint8_t *)sep + 4, clen)) {
		t->c.bad_body++;
	} else {
		t->c.ok++;
		if (t->n_lat < LAT_MAX)
			t->lat[t->n_lat++] = (uint32_t)((now_ns() - c->t0) / 1000);
	}
	return server_close || !has_len ? DONE_CLOSE : DONE_KEEP;
}

static void *thr_main(void *arg)
{
	struct thr *t = arg;
	const struct opts *o = t->o;
	struct conn *cs = calloc(t->n, sizeof(*cs));
	struct epoll_event evs[256];
	int ep = epoll_create1(EPOLL_CLOEXEC);
	uint64_t end = now_ns() + (uint64_t)(o->seconds * 1e9);

	t->lat = malloc(LAT_MAX * sizeof(*t->lat));
	if (cs == NULL || ep < 0 || t->lat == NULL) {
		t->c.errors++;
		goto out;
	}
	for (unsigned i = 0; i < t->n; i++) {
		cs[i].buf = malloc(RESP_MAX);
		cs[i].fd = -1;
		if (cs[i].buf == NULL || conn_open(o, ep, &cs[i]) != 0)
			t->c.errors++;
	}
	while (now_ns() < end) {
		int n = epoll_wait(ep, evs, 256, 100);

		for (int k = 0; k < n; k++) {
			struct conn *c = evs[k].data.ptr;
			enum parsed p = NEED_MORE;
			bool eof = false;
			ssize_t r;

			if (c->fd < 0)
				continue;
			if (c->sent < o->req_len) {
				r = write(c->fd, o->req + c->sent, o->req_len - c->sent);
				if (r < 0 && errno != EAGAIN && errno != ENOTCONN) {
					p = BROKEN;
				} else if (r > 0) {
					c->sent += (size_t)r;
					if (c->sent == o->req_len) {
						struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

						(void)epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
					}
				}
			}
			if (p == NEED_MORE && c->sent == o->req_len && (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
				for (;;) {
					r = read(c->fd, c->buf + c->have, RESP_MAX - c->have);
					if (r > 0) {
						c->have += (size_t)r;
						if (c->have < RESP_MAX)
							continue;
					} else if (r == 0) {
						eof = true;
					} else if (errno != EAGAIN) {
						eof = true;
					}
					break;
				}
				p = parse(t, c, eof);
			} else if (p == NEED_MORE && (evs[k].events & (EPOLLHUP | EPOLLERR))) {
				p = BROKEN;
			}
			if (p == NEED_MORE)
				continue;
			if (p == BROKEN)
				t->c.errors++;
			if (p == DONE_KEEP && !o->close_mode && !eof) {
				struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN, .data.ptr = c };

				c->sent = 0;
				c->have = 0;
				c->t0 = now_ns();
				(void)epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
				continue;
			}
			conn_close(ep, c, true);
			if (conn_open(o, ep, c) != 0)
				t->c.errors++;
		}
	}
out:
	for (unsigned i = 0; cs != NULL && i < t->n; i++) {
		conn_close(ep, &cs[i], true);
		free(cs[i].buf);
	}
	free(cs);
	if (ep >= 0)
		close(ep);
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *b = malloc(65536);

	*len = 0;
	if (f == NULL || b == NULL) {
		if (f != NULL)
			fclose(f);
		free(b);
		return NULL;
	}
	*len = fread(b, 1, 65536, f);
	fclose(f);
	return b;
}

static int usage(void)
{
	fputs("usage: bench_http_load --url http://IPv4:PORT/PATH [--method GET|POST]\n"
	      "         [--body FILE] [--content-type TYPE] [--expect-type TYPE] [--ocsp]\n"
	      "         [--connections N] [--threads T] [--seconds S] [--close]\n", stderr);
	return 2;
}

int main(int argc, char **argv)
{
	struct opts o = { .expect_type = "application/ocsp-response", .conns = 32, .threads = 1,
			  .seconds = 5 };
	const char *url = NULL, *method = "GET", *body_file = NULL,
		   *ctype = "application/ocsp-request";
	char host[64], *body = NULL, *req;
	const char *path;
	size_t body_len = 0, cap;
	unsigned port;
	struct thr th[MAX_THREADS];
	struct counts all = { 0 };
	uint32_t *lat;
	size_t n_lat = 0;
	uint64_t t0, t1;
	int n;

	/* A server that closes while we write costs an EPIPE (counted as an error), not the run. */
	(void)signal(SIGPIPE, SIG_IGN);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--close") == 0) {
			o.close_mode = true;
			continue;
		}
		if (strcmp(a, "--ocsp") == 0) {
			o.ocsp = true;
			continue;
		}
		if (v == NULL)
			return usage();
		i++;
		if (strcmp(a, "--url") == 0)
			url = v;
		else if (strcmp(a, "--method") == 0)
			method = v;
		else if (strcmp(a, "--body") == 0)
			body_file = v;
		else if (strcmp(a, "--content-type") == 0)
			ctype = v;
		else if (strcmp(a, "--expect-type") == 0)
			o.expect_type = v;
		else if (strcmp(a, "--connections") == 0)
			o.conns = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--threads") == 0)
			o.threads = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--seconds") == 0)
			o.seconds = strtod(v, NULL);
		else
			return usage();
	}
	if (url == NULL || strncmp(url, "http://", 7) != 0 || o.conns == 0 || o.conns > MAX_CONNS ||
	    o.threads == 0 || o.threads > MAX_THREADS || o.threads > o.conns || !(o.seconds > 0))
		return usage();
	if (sscanf(url + 7, "%63[0-9.]:%u", host, &port) != 2 || port > 65535 ||
	    (path = strchr(url + 7, '/')) == NULL)
		return usage();
	o.addr.sin_family = AF_INET;
	o.addr.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &o.addr.sin_addr) != 1)
		return usage();
	if (body_file != NULL && (body = read_file(body_file, &body_len)) == NULL) {
		fprintf(stderr, "bench_http_load: cannot read %s\n", body_file);
		return 1;
	}
	cap = strlen(path) + body_len + 512;
	req = malloc(cap);
	if (req == NULL)
		return 1;
	n = snprintf(req, cap, "%s %s HTTP/1.1\r\nHost: %s:%u\r\n%s", method, path, host, port,
		     o.close_mode ? "Connection: close\r\n" : "");
	if (body != NULL)
		n += snprintf(req + n, cap - (size_t)n, "Content-Type: %s\r\nContent-Length: %zu\r\n",
			      ctype, body_len);
	n += snprintf(req + n, cap - (size_t)n, "\r\n");
	if (body != NULL) {
		memcpy(req + n, body, body_len);
		n += (int)body_len;
	}
	o.req = req;
	o.req_len = (size_t)n;
	t0 = now_ns();
	for (unsigned i = 0; i < o.threads; i++) {
		th[i] = (struct thr){ .o = &o, .n = o.conns / o.threads + (i < o.conns % o.threads) };
		if (pthread_create(&th[i].th, NULL, thr_main, &th[i]) != 0)
			return 1;
	}
	for (unsigned i = 0; i < o.threads; i++) {
		pthread_join(th[i].th, NULL);
		all.ok += th[i].c.ok;
		all.non2xx += th[i].c.non2xx;
		all.bad_type += th[i].c.bad_type;
		all.bad_body += th[i].c.bad_body;
		all.errors += th[i].c.errors;
		n_lat += th[i].n_lat;
	}
	t1 = now_ns();
	lat = malloc((n_lat + 1) * sizeof(*lat));
	n_lat = 0;
	for (unsigned i = 0; i < o.threads; i++) {
		if (lat != NULL)
			memcpy(lat + n_lat, th[i].lat, th[i].n_lat * sizeof(*lat));
		n_lat += th[i].n_lat;
		free(th[i].lat);
	}
	if (lat != NULL)
		qsort(lat, n_lat, sizeof(*lat), cmp_u32);
	printf("ok_per_s=%.0f ok=%llu non2xx=%llu bad_type=%llu bad_body=%llu errors=%llu "
	       "p50_us=%u p99_us=%u seconds=%.2f connections=%u threads=%u mode=%s\n",
	       (double)all.ok / ((double)(t1 - t0) / 1e9), (unsigned long long)all.ok,
	       (unsigned long long)all.non2xx, (unsigned long long)all.bad_type,
	       (unsigned long long)all.bad_body, (unsigned long long)all.errors,
	       lat != NULL && n_lat > 0 ? lat[n_lat / 2] : 0,
	       lat != NULL && n_lat > 0 ? lat[n_lat * 99 / 100] : 0, (double)(t1 - t0) / 1e9,
	       o.conns, o.threads, o.close_mode ? "close" : "keep-alive");
	free(lat);
	free(body);
	free(req);
	return 0;
}
