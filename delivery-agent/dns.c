/*
 * dns.c: MX and address resolution for relay delivery, on c-ares.
 *
 * See dns.h for the rules (RFC 5321 section 5.1, RFC 7505) and the
 * system calls resolution makes once the agent is sandboxed.  c-ares
 * is driven synchronously: the queries of one step are sent together
 * and a poll() loop runs them until they are all answered or the one
 * deadline of the whole resolution (dns_timeout) passes.  Steps: MX of
 * the domain, then AAAA and A of every MX host at once.
 */
#include "config.h"

#include <sys/random.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <ares.h>
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util/conf.h"
#include "util/netaddr.h"
#include "util/xmalloc.h"
#include "dns.h"

#define DNS_SERVERS_MAX	8	/* dns_servers words accepted */
#define DNS_SOCKS_MAX	64	/* sockets c-ares may hold open at once */
#define DNS_QUERIES_MAX	(2 * DNS_MX_MAX)

/* RFC 1035 and 3596 numbers (arpa/nameser.h is not C11-clean). */
#define DNS_C_IN	1
#define DNS_T_A		1
#define DNS_T_MX	15
#define DNS_T_AAAA	28

/* The one resolver of this process. */
static struct {
	int		 ready;
	ares_channel	 ch;
	long long	 timeout_ms;	/* dns_timeout: whole resolution */
	uint64_t	 rnd;		/* shuffle state, seeded in dns_init */
	struct pollfd	 pfd[DNS_SOCKS_MAX];
	size_t		 npfd;
} dns;

/* One query of a step and what was kept of its answer. */
struct dns_query {
	const char	*name;
	int		 type;		/* DNS_T_MX, DNS_T_A, DNS_T_AAAA */
	int		 done;
	int		 status;	/* ARES_SUCCESS or an ARES_E* code */
	size_t		 n;
	union {
		struct in_addr	 a[DNS_ADDRS_MAX];
		struct in6_addr	 aaaa[DNS_ADDRS_MAX];
		struct dns_mx	*mx;	/* DNS_MX_MAX entries, caller's */
	} u;
};

struct dns_step {
	struct dns_query q[DNS_QUERIES_MAX];
	size_t		 n;
	size_t		 pending;
};

const char *
dns_status_name(enum dns_status st)
{
	switch (st) {
	case DNS_OK:
		return "ok";
	case DNS_TEMPFAIL:
		return "tempfail";
	case DNS_NOTFOUND:
		return "notfound";
	case DNS_NULLMX:
		return "nullmx";
	}
	return "unknown";
}

/* ---- Pure helpers ---- */

int
dns_name_valid(const char *name)
{
	size_t len = strlen(name), label = 0, i;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > DNS_NAME_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!isalnum(c) && c != '-' && c != '_')
			return 0;
		if (++label > 63)
			return 0;
	}
	return label > 0;
}

int
dns_mx_is_null(const struct dns_mx *mx, size_t n)
{
	size_t i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++)
		if (mx[i].host[0] != '\0')
			return 0;
	return 1;
}

/* Index of the record with the worst (highest) preference. */
static size_t
dns_mx_worst(const struct dns_mx *mx, size_t n)
{
	size_t i, w = 0;

	for (i = 1; i < n; i++)
		if (mx[i].pref > mx[w].pref)
			w = i;
	return w;
}

int
dns_mx_add(struct dns_mx *mx, size_t *n, size_t cap, unsigned int pref,
    const char *host)
{
	struct dns_mx rec;
	size_t len = strlen(host), i;

	if (len > 0 && host[len - 1] == '.')
		len--;
	if (len > DNS_NAME_MAX)
		return 0;
	rec.pref = pref;
	for (i = 0; i < len; i++)
		rec.host[i] = (char)tolower((unsigned char)host[i]);
	rec.host[len] = '\0';
	/* "" and "." are the root; anything else must be a host name. */
	if (len > 0 && !dns_name_valid(rec.host))
		return 0;
	if (cap == 0)
		return 0;
	if (*n < cap) {
		mx[(*n)++] = rec;
		return 1;
	}
	i = dns_mx_worst(mx, *n);
	if (pref >= mx[i].pref)
		return 0;
	mx[i] = rec;
	return 1;
}

size_t
dns_mx_order(struct dns_mx *mx, size_t n, dns_rnd_fn rnd, void *arg)
{
	size_t i, j, k, m = 0;
	struct dns_mx tmp;

	/* Drop root exchanges and duplicate hosts (keep the best pref). */
	for (i = 0; i < n; i++) {
		if (mx[i].host[0] == '\0')
			continue;
		for (j = 0; j < m; j++)
			if (strcmp(mx[j].host, mx[i].host) == 0)
				break;
		if (j < m) {
			if (mx[i].pref < mx[j].pref)
				mx[j].pref = mx[i].pref;
			continue;
		}
		mx[m++] = mx[i];
	}
	/* Stable insertion sort: the shuffle below alone decides ties. */
	for (i = 1; i < m; i++) {
		tmp = mx[i];
		for (j = i; j > 0 && mx[j - 1].pref > tmp.pref; j--)
			mx[j] = mx[j - 1];
		mx[j] = tmp;
	}
	/* Fisher-Yates within each run of equal preference. */
	for (i = 0; i < m; i = k) {
		for (k = i + 1; k < m && mx[k].pref == mx[i].pref; k++)
			;
		for (j = k - 1; j > i; j--) {
			size_t r = i + rnd(arg, (uint32_t)(j - i + 1));

			tmp = mx[j];
			mx[j] = mx[r];
			mx[r] = tmp;
		}
	}
	return m;
}

int
dns_literal(const char *host, uint16_t port, struct sockaddr_storage *ss,
    socklen_t *sslen)
{
	char buf[64];
	size_t len = strlen(host);
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	if (host[0] == '[') {
		if (len < 2 || host[len - 1] != ']')
			return -1;
		host++;
		len -= 2;
		if (len > 5 && strncasecmp(host, "IPv6:", 5) == 0) {
			host += 5;
			len -= 5;
		}
	}
	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, host, len);
	buf[len] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, buf, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		*sslen = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, buf, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*sslen = sizeof(*sin6);
		return 0;
	}
	return -1;
}

/* Does res already hold this address (port aside)? */
static int
dns_targets_has(const struct dns_result *res, int family, const void *addr)
{
	size_t i;

	for (i = 0; i < res->n; i++) {
		const struct sockaddr_storage *ss = &res->t[i].ss;

		if (ss->ss_family != family)
			continue;
		if (family == AF_INET && memcmp(
		    &((const struct sockaddr_in *)ss)->sin_addr, addr, 4) == 0)
			return 1;
		if (family == AF_INET6 && memcmp(
		    &((const struct sockaddr_in6 *)ss)->sin6_addr, addr, 16) == 0)
			return 1;
	}
	return 0;
}

/* Append one address unless it is there already or res is full. */
static int
dns_target_push(struct dns_result *res, const char *host, unsigned int pref,
    uint16_t port, int family, const void *addr)
{
	struct dns_target *t;

	if (res->n >= DNS_TARGETS_MAX || dns_targets_has(res, family, addr))
		return 0;
	t = &res->t[res->n++];
	memset(t, 0, sizeof(*t));
	strlcpy_m(t->host, host, sizeof(t->host));
	t->pref = pref;
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&t->ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		memcpy(&sin->sin_addr, addr, 4);
		t->sslen = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&t->ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		memcpy(&sin6->sin6_addr, addr, 16);
		t->sslen = sizeof(*sin6);
	}
	return 1;
}

size_t
dns_targets_add(struct dns_result *res, const char *host, unsigned int pref,
    uint16_t port, const void *v6, size_t n6, const void *v4, size_t n4)
{
	const struct in6_addr *a6 = v6;
	const struct in_addr *a4 = v4;
	size_t i, added = 0;

	for (i = 0; i < n6 || i < n4; i++) {
		if (i < n6)
			added += dns_target_push(res, host, pref, port,
			    AF_INET6, &a6[i]);
		if (i < n4)
			added += dns_target_push(res, host, pref, port,
			    AF_INET, &a4[i]);
	}
	return added;
}

int
dns_server_parse(const char *word, struct sockaddr_storage *ss)
{
	const char *colon = strchr(word, ':');
	socklen_t len;

	if (word[0] == '[' && strstr(word, "]:") != NULL)
		return hostport_parse(word, ss);
	if (word[0] != '[' && colon != NULL && strchr(colon + 1, ':') == NULL)
		return hostport_parse(word, ss);
	return dns_literal(word, 53, ss, &len);
}

/* ---- The resolver ---- */

/* splitmix64: fine for spreading load over equal MX hosts. */
static uint32_t
dns_rnd(void *arg, uint32_t bound)
{
	uint64_t z;

	(void)arg;
	z = (dns.rnd += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	z ^= z >> 31;
	return (uint32_t)(((z >> 32) * (uint64_t)bound) >> 32);
}

static long long
dns_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* c-ares says which sockets it wants watched; keep the poll set. */
static void
dns_sock_state(void *data, ares_socket_t s, int readable, int writable)
{
	size_t i;

	(void)data;
	for (i = 0; i < dns.npfd; i++)
		if (dns.pfd[i].fd == s)
			break;
	if (!readable && !writable) {
		if (i < dns.npfd)
			dns.pfd[i] = dns.pfd[--dns.npfd];
		return;
	}
	if (i == dns.npfd) {
		/* More sockets than dns_servers allows cannot happen; if it
		 * did, that query would time out, not hang. */
		if (dns.npfd == DNS_SOCKS_MAX)
			return;
		dns.npfd++;
	}
	dns.pfd[i].fd = s;
	dns.pfd[i].events = (short)((readable ? POLLIN : 0) |
	    (writable ? POLLOUT : 0));
	dns.pfd[i].revents = 0;
}

/* Build the server list of dns_servers for c-ares. */
static int
dns_set_servers(const struct conf_words *w, char *err, size_t errlen)
{
	struct ares_addr_port_node nodes[DNS_SERVERS_MAX];
	struct sockaddr_storage ss;
	size_t i;
	int rc;

	if (w->n > DNS_SERVERS_MAX) {
		snprintf(err, errlen, "dns_servers: at most %d servers",
		    DNS_SERVERS_MAX);
		return -1;
	}
	memset(nodes, 0, sizeof(nodes));
	for (i = 0; i < w->n; i++) {
		struct ares_addr_port_node *nd = &nodes[i];

		if (dns_server_parse(w->v[i], &ss) == -1) {
			snprintf(err, errlen, "dns_servers: bad server \"%s\" "
			    "(address, address:port or [ipv6]:port)", w->v[i]);
			return -1;
		}
		nd->next = i + 1 < w->n ? &nodes[i + 1] : NULL;
		nd->family = ss.ss_family;
		if (ss.ss_family == AF_INET) {
			const struct sockaddr_in *sin = (void *)&ss;

			memcpy(&nd->addr.addr4, &sin->sin_addr, 4);
			nd->udp_port = nd->tcp_port = ntohs(sin->sin_port);
		} else {
			const struct sockaddr_in6 *sin6 = (void *)&ss;

			memcpy(&nd->addr.addr6, &sin6->sin6_addr, 16);
			nd->udp_port = nd->tcp_port = ntohs(sin6->sin6_port);
		}
	}
	if ((rc = ares_set_servers_ports(dns.ch, nodes)) != ARES_SUCCESS) {
		snprintf(err, errlen, "dns_servers: %s", ares_strerror(rc));
		return -1;
	}
	return 0;
}

/* How many servers the channel has. */
static size_t
dns_nservers(void)
{
	struct ares_addr_port_node *list, *p;
	size_t n = 0;

	if (ares_get_servers_ports(dns.ch, &list) != ARES_SUCCESS)
		return 0;
	for (p = list; p != NULL; p = p->next)
		n++;
	ares_free_data(list);
	return n;
}

/*
 * With a single server there is no other to try after SERVFAIL, REFUSED
 * or NOTIMP, so let that answer through (ARES_FLAG_NOCHECKRESP) and say
 * precisely what the server said.  With several, c-ares' default of
 * moving on to the next server is worth more.  The flag is an init
 * option, so the channel is made again with the same server.
 */
static int
dns_reinit_checkresp(struct ares_options *opt, int mask, char *err,
    size_t errlen)
{
	struct ares_addr_port_node *list;
	ares_channel ch;
	int rc;

	if ((rc = ares_get_servers_ports(dns.ch, &list)) != ARES_SUCCESS)
		goto fail;
	opt->flags = ARES_FLAG_NOCHECKRESP;
	rc = ares_init_options(&ch, opt, mask | ARES_OPT_FLAGS);
	if (rc == ARES_SUCCESS && (rc = ares_set_servers_ports(ch, list)) !=
	    ARES_SUCCESS)
		ares_destroy(ch);
	ares_free_data(list);
	if (rc != ARES_SUCCESS)
		goto fail;
	ares_destroy(dns.ch);
	dns.ch = ch;
	dns.npfd = 0;
	return 0;
fail:
	snprintf(err, errlen, "c-ares init: %s", ares_strerror(rc));
	ares_destroy(dns.ch);
	ares_library_cleanup();
	return -1;
}

int
dns_init(const struct conf *cfg, char *err, size_t errlen)
{
	struct ares_options opt;
	const struct conf_words *servers = conf_words(cfg, CONF_DNS_SERVERS);
	long long per_try;
	int rc, mask;

	if (dns.ready)
		dns_shutdown();
	if (getrandom(&dns.rnd, sizeof(dns.rnd), 0) != sizeof(dns.rnd)) {
		snprintf(err, errlen, "getrandom: %s", strerror(errno));
		return -1;
	}
	if ((rc = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
		return -1;
	}
	dns.timeout_ms = conf_num(cfg, CONF_DNS_TIMEOUT) * 1000;
	/* c-ares doubles the wait of each round of tries: T/4 and T/2 for
	 * the first two leave the rest of the deadline (T, which dns_run
	 * enforces) to the third. */
	per_try = dns.timeout_ms / 4;
	if (per_try < 200)
		per_try = 200;
	if (per_try > 5000)
		per_try = 5000;
	memset(&opt, 0, sizeof(opt));
	opt.timeout = (int)per_try;
	opt.tries = 3;
	opt.lookups = (char *)"b";	/* never read /etc/hosts */
	opt.sock_state_cb = dns_sock_state;
	mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS |
	    ARES_OPT_SOCK_STATE_CB;
	dns.npfd = 0;
	if ((rc = ares_init_options(&dns.ch, &opt, mask)) != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares init (/etc/resolv.conf): %s",
		    ares_strerror(rc));
		ares_library_cleanup();
		return -1;
	}
	if (servers->n > 0 && dns_set_servers(servers, err, errlen) == -1) {
		ares_destroy(dns.ch);
		ares_library_cleanup();
		return -1;
	}
	if (dns_nservers() == 1 && dns_reinit_checkresp(&opt, mask, err,
	    errlen) == -1)
		return -1;
	dns.ready = 1;
	return 0;
}

void
dns_shutdown(void)
{
	if (!dns.ready)
		return;
	ares_destroy(dns.ch);
	ares_library_cleanup();
	dns.ready = 0;
	dns.npfd = 0;
}

/* What an ARES_E* status means, for the why text. */
static const char *
dns_strstatus(int status)
{
	switch (status) {
	case ARES_ENOTFOUND:
		return "domain not found (NXDOMAIN)";
	case ARES_ENODATA:
		return "no records of that type";
	case ARES_ESERVFAIL:
		return "server failure (SERVFAIL)";
	case ARES_EREFUSED:
		return "query refused (REFUSED)";
	case ARES_EFORMERR:
		return "server reports a format error (FORMERR)";
	case ARES_ENOTIMP:
		return "server does not support this query (NOTIMP)";
	case ARES_ETIMEOUT:
	case ARES_ECANCELLED:
		return "timed out";
	case ARES_ECONNREFUSED:
		/* c-ares moves on from a server that is unreachable or
		 * answers SERVFAIL, REFUSED or NOTIMP; this is the end. */
		return "no DNS server gave an answer (unreachable, or "
		    "SERVFAIL, REFUSED or NOTIMP from each)";
	case ARES_EBADRESP:
		return "malformed reply";
	case ARES_EBADNAME:
		/* Names are checked before they are asked: this one came
		 * from the reply (a bad compression pointer, say). */
		return "malformed reply (bad name)";
	default:
		return ares_strerror(status);
	}
}

/* Is this the server saying the name or the record is not there? */
static int
dns_absent(int status)
{
	return status == ARES_ENOTFOUND || status == ARES_ENODATA;
}

static const char *
dns_typename(int type)
{
	return type == DNS_T_MX ? "MX" : type == DNS_T_A ? "A" : "AAAA";
}

int
dns_reply_mx(const unsigned char *abuf, int alen, struct dns_mx *mx, size_t *n)
{
	struct ares_mx_reply *list, *p;
	size_t bad = 0;
	int rc;

	*n = 0;
	if ((rc = ares_parse_mx_reply(abuf, alen, &list)) != ARES_SUCCESS)
		return rc;
	for (p = list; p != NULL; p = p->next) {
		if (p->host[0] != '\0' && strcmp(p->host, ".") != 0 &&
		    !dns_name_valid(p->host)) {
			bad++;
			continue;
		}
		dns_mx_add(mx, n, DNS_MX_MAX, p->priority, p->host);
	}
	ares_free_data(list);
	if (*n == 0)
		return bad > 0 ? ARES_EBADRESP : ARES_ENODATA;
	return ARES_SUCCESS;
}

int
dns_reply_addrs(int family, const unsigned char *abuf, int alen, void *addrs,
    size_t *n)
{
	int i, got = DNS_ADDRS_MAX, rc;

	*n = 0;
	if (family == AF_INET) {
		struct ares_addrttl a[DNS_ADDRS_MAX];
		struct in_addr *out = addrs;

		rc = ares_parse_a_reply(abuf, alen, NULL, a, &got);
		for (i = 0; rc == ARES_SUCCESS && i < got && i < DNS_ADDRS_MAX; i++)
			out[(*n)++] = a[i].ipaddr;
	} else {
		struct ares_addr6ttl a6[DNS_ADDRS_MAX];
		struct in6_addr *out = addrs;

		rc = ares_parse_aaaa_reply(abuf, alen, NULL, a6, &got);
		for (i = 0; rc == ARES_SUCCESS && i < got && i < DNS_ADDRS_MAX; i++)
			memcpy(&out[(*n)++], &a6[i].ip6addr, 16);
	}
	if (rc == ARES_SUCCESS && *n == 0)
		rc = ARES_ENODATA;
	return rc;
}

/* c-ares answer callback: note the status, keep what we need. */
static void
dns_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_query *q = arg;

	(void)timeouts;
	if (status == ARES_SUCCESS && abuf != NULL && alen > 0)
		status = q->type == DNS_T_MX ?
		    dns_reply_mx(abuf, alen, q->u.mx, &q->n) :
		    dns_reply_addrs(q->type == DNS_T_A ? AF_INET : AF_INET6,
		    abuf, alen, q->u.aaaa, &q->n);
	else if (status == ARES_SUCCESS)
		status = ARES_EBADRESP;
	q->status = status;
	q->done = 1;
}

/* Add a query to a step. */
static struct dns_query *
dns_step_add(struct dns_step *st, const char *name, int type)
{
	struct dns_query *q = &st->q[st->n++];

	memset(q, 0, sizeof(*q));
	q->name = name;
	q->type = type;
	q->status = ARES_ETIMEOUT;
	return q;
}

/* Send every query of a step and wait until all are answered or the
 * deadline passes (then the rest count as timed out). */
static void
dns_run(struct dns_step *st, long long deadline)
{
	struct pollfd pfd[DNS_SOCKS_MAX];
	struct timeval maxtv, tv, *tvp;
	size_t i, n;
	long long left;
	int ms;

	for (i = 0; i < st->n; i++)
		ares_query(dns.ch, st->q[i].name, DNS_C_IN, st->q[i].type,
		    dns_answer, &st->q[i]);
	for (;;) {
		for (i = 0, st->pending = 0; i < st->n; i++)
			st->pending += !st->q[i].done;
		if (st->pending == 0)
			return;
		if ((left = deadline - dns_now_ms()) <= 0)
			break;
		maxtv.tv_sec = left / 1000;
		maxtv.tv_usec = (left % 1000) * 1000;
		tvp = ares_timeout(dns.ch, &maxtv, &tv);
		ms = (int)(tvp->tv_sec * 1000 + (tvp->tv_usec + 999) / 1000);
		/* c-ares changes the set while processing: poll a copy. */
		n = dns.npfd;
		memcpy(pfd, dns.pfd, n * sizeof(pfd[0]));
		if (poll(pfd, n, ms) == -1 && errno != EINTR)
			break;
		for (i = 0; i < n; i++) {
			if (pfd[i].revents == 0)
				continue;
			ares_process_fd(dns.ch,
			    pfd[i].revents & (POLLIN | POLLERR | POLLHUP) ?
			    pfd[i].fd : ARES_SOCKET_BAD,
			    pfd[i].revents & POLLOUT ? pfd[i].fd : ARES_SOCKET_BAD);
		}
		/* Retransmissions and per-try timeouts. */
		ares_process_fd(dns.ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	}
	/* Out of time: the callbacks run now with ARES_ECANCELLED. */
	ares_cancel(dns.ch);
}

/* Set the why text (long names are cut, which is fine for logs). */
static void __attribute__((format(printf, 2, 3)))
dns_whyf(struct dns_result *res, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(res->why, sizeof(res->why), fmt, ap);
	va_end(ap);
}

/* The first failure of a lookup, as "lookup of TYPE for NAME: why". */
static void
dns_why(struct dns_result *res, const struct dns_query *q)
{
	dns_whyf(res, "lookup of %s for %s: %s",
	    dns_typename(q->type), q->name, dns_strstatus(q->status));
}

/* Is this query's failure temporary? */
static int
dns_temporary(const struct dns_query *q)
{
	return q->status != ARES_SUCCESS && !dns_absent(q->status);
}

/*
 * Resolve the addresses of hosts (n of them, with their preferences) and
 * fill res in that order.  label names the lookup for the why text.
 */
static void
dns_resolve_hosts(const struct dns_mx *hosts, size_t n, uint16_t port,
    long long deadline, struct dns_result *res, const char *label)
{
	struct dns_step *st = xcalloc(1, sizeof(*st));
	const struct dns_query *bad = NULL, *temp = NULL;
	size_t i, skipped = 0;

	for (i = 0; i < n && i < DNS_MX_MAX; i++) {
		dns_step_add(st, hosts[i].host, DNS_T_AAAA);
		dns_step_add(st, hosts[i].host, DNS_T_A);
	}
	dns_run(st, deadline);
	for (i = 0; i + 1 < st->n; i += 2) {
		const struct dns_query *q6 = &st->q[i], *q4 = &st->q[i + 1];

		if (q6->n + q4->n > 0) {
			dns_targets_add(res, q6->name, hosts[i / 2].pref, port,
			    q6->u.aaaa, q6->n, q4->u.a, q4->n);
			continue;
		}
		skipped++;
		if (temp == NULL)
			temp = dns_temporary(q6) ? q6 :
			    dns_temporary(q4) ? q4 : NULL;
		if (bad == NULL)
			bad = q4->status == ARES_ENOTFOUND ? q4 : q6;
	}
	if (res->n > 0) {
		res->status = DNS_OK;
		dns_whyf(res, "%s: %zu address%s of "
		    "%zu host%s%s", label, res->n, res->n == 1 ? "" : "es",
		    n, n == 1 ? "" : "s", skipped ? " (some hosts skipped)" : "");
	} else if (temp != NULL) {
		res->status = DNS_TEMPFAIL;
		dns_why(res, temp);
	} else {
		res->status = DNS_NOTFOUND;
		if (bad != NULL && bad->status == ARES_ENODATA)
			dns_whyf(res,
			    "%s: no address (no A or AAAA record for %s)",
			    label, bad->name);
		else if (bad != NULL)
			dns_why(res, bad);
	}
	free(st);
}

/* MX lookup of domain, then the addresses of its hosts. */
static void
dns_resolve_mx(const char *domain, uint16_t port, long long deadline,
    struct dns_result *res)
{
	struct dns_step *st = xcalloc(1, sizeof(*st));
	struct dns_mx *mx = xcalloc(DNS_MX_MAX, sizeof(*mx));
	struct dns_query *q;
	char label[300];
	size_t n;

	q = dns_step_add(st, domain, DNS_T_MX);
	q->u.mx = mx;
	dns_run(st, deadline);
	if (q->status == ARES_ENODATA) {
		/* RFC 5321 5.1: no MX, the domain itself is the host. */
		strlcpy_m(mx[0].host, domain, sizeof(mx[0].host));
		mx[0].pref = 0;
		snprintf(label, sizeof(label), "no MX for %s, implicit MX",
		    domain);
		dns_resolve_hosts(mx, 1, port, deadline, res, label);
	} else if (q->status != ARES_SUCCESS) {
		res->status = q->status == ARES_ENOTFOUND ? DNS_NOTFOUND :
		    DNS_TEMPFAIL;
		dns_why(res, q);
	} else if (dns_mx_is_null(mx, q->n)) {
		res->status = DNS_NULLMX;
		dns_whyf(res, "lookup of MX for %s: "
		    "null MX, the domain accepts no mail", domain);
	} else {
		n = dns_mx_order(mx, q->n, dns_rnd, NULL);
		snprintf(label, sizeof(label), "MX for %s", domain);
		dns_resolve_hosts(mx, n, port, deadline, res, label);
	}
	free(mx);
	free(st);
}

void
dns_resolve(const struct nexthop *nh, struct dns_result *res)
{
	uint16_t port = nh->port != 0 ? nh->port : 25;
	struct dns_target *t;
	struct dns_mx host;

	memset(res, 0, sizeof(*res));
	res->status = DNS_TEMPFAIL;
	if (nh->kind == NEXTHOP_UNIX) {
		strlcpy_m(res->why, "not a DNS next hop (unix socket)",
		    sizeof(res->why));
		return;
	}
	t = &res->t[0];
	if (dns_literal(nh->host, port, &t->ss, &t->sslen) == 0) {
		strlcpy_m(t->host, nh->host, sizeof(t->host));
		res->n = 1;
		res->status = DNS_OK;
		dns_whyf(res, "address literal %s",
		    nh->host);
		return;
	}
	if (!dns_name_valid(nh->host)) {
		res->status = DNS_NOTFOUND;
		dns_whyf(res, "invalid domain name "
		    "\"%.200s\"", nh->host);
		return;
	}
	if (!dns.ready) {
		strlcpy_m(res->why, "resolver not initialised", sizeof(res->why));
		return;
	}
	if (nh->kind == NEXTHOP_MX) {
		dns_resolve_mx(nh->host, port, dns_now_ms() + dns.timeout_ms,
		    res);
		return;
	}
	host.pref = 0;
	strlcpy_m(host.host, nh->host, sizeof(host.host));
	dns_resolve_hosts(&host, 1, port, dns_now_ms() + dns.timeout_ms,
	    res, nh->host);
}
