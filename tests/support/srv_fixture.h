/*
 * A kiln server in a thread over a whole deployment, for the tests that need
 * the real application on the other end of a connection (the agent's client
 * and provisioning flow): the deployment (ca_fixture.h), the kiln application,
 * kiln's TLS certificate from the service CA, the service anchors, and
 * identities issued by the deployment. One per test process (libevent lets
 * one event base at a time own the signals).
 */
#ifndef KILN_TEST_SRV_FIXTURE_H
#define KILN_TEST_SRV_FIXTURE_H

#include "support/ca_fixture.h"

#include "server/server.h"

#include <pthread.h>

struct kt_srv_fx {
	struct kt_deploy k;
	kiln_app *app;
	kiln_buf tls_chain, tls_key;  /* kiln's TLS chain and key (PEM) */
	kiln_buf svc_root, svc_issuing; /* the service CA: anchor, intermediate */
	char *ca_file;                /* the service chain, as clients are given it */
	/* The server running now, if any. */
	kiln_server *s;
	pthread_t t;
	kiln_result rc;
	char url[64];
	bool is_default;
};

extern struct kt_srv_fx kt_srv;

/* The deployment and the application, or the test fails. */
void kt_srv_fixture_up(const char *name);
/* Stops the server if one runs, then takes everything down. */
void kt_srv_fixture_down(void);
/* The kiln application's routes and hooks, with a rate limit. */
struct kiln_server_opts kt_srv_app_opts(double rate, unsigned burst);
/*
 * Runs a server with o, replacing whatever ran before, so a test that fails
 * half-way leaves nothing behind that the next could trip over.
 */
void kt_srv_run(const struct kiln_server_opts *o, bool is_default);
void kt_srv_stop(void);
/* The URL of the kiln server with a limit no test reaches, started if needed. */
const char *kt_srv_default_url(void);
/* A certificate and key for name in role, issued by the deployment (files in k.dir). */
void kt_srv_identity(const char *name, const char *role, kiln_env env, char **cert, char **key);

/*
 * A loopback port that refuses connections: bound and not listening, so no
 * server (this process's included) can be given it while *fd stays open.
 * Close *fd when done.
 */
int kt_dead_port(int *fd);

#endif
