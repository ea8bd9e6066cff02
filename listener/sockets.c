/*
 * sockets.c: what moatd binds or creates before it gives up root.
 *
 * The listening sockets (every `listen`, `submission_listen` and
 * `smtps_listen` address: one accept loop serves them all, and each
 * session finds the TLS rules of its listener from its own local
 * address, see smtpd-session/tls_listen.c), the control socket
 * run_directory/control.sock that the queue-manager serves for moatctl,
 * and the sealed memfd that carries the configuration to every child.
 * All are created close-on-exec; spawn.c moves the ones a child needs to
 * their fixed numbers.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "moatd.h"
#include "util/log.h"
#include "util/xmalloc.h"

#define SOCKETS_BACKLOG		SOMAXCONN
#define SOCKETS_CTL_BACKLOG	16
#define SOCKETS_CTL_NAME	"control.sock"

/*
 * Numeric address and port of a socket address.  inet_ntop only: no
 * resolver and no system call, so it is safe inside the sandbox.
 */
void
sockets_addr(const struct sockaddr *sa, char *addr, size_t addrsz,
    unsigned int *port)
{
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

	*port = 0;
	if (sa->sa_family == AF_INET &&
	    inet_ntop(AF_INET, &s4->sin_addr, addr, (socklen_t)addrsz) != NULL) {
		*port = ntohs(s4->sin_port);
		return;
	}
	if (sa->sa_family == AF_INET6 &&
	    inet_ntop(AF_INET6, &s6->sin6_addr, addr, (socklen_t)addrsz) != NULL) {
		*port = ntohs(s6->sin6_port);
		return;
	}
	strlcpy_m(addr, "unknown", addrsz);
}

/* "addr:port" or "[addr]:port" for messages. */
static void
sockets_addr_text(const struct sockaddr *sa, char *dst, size_t dstsz)
{
	char addr[MOATD_ADDR_MAX];
	unsigned int port;

	sockets_addr(sa, addr, sizeof(addr), &port);
	snprintf(dst, dstsz, sa->sa_family == AF_INET6 ? "[%s]:%u" : "%s:%u",
	    addr, port);
}

/* Bind and listen on one address; returns the socket or -1. */
static int
sockets_bind_one(const struct sockaddr_storage *ss, char *err, size_t errlen)
{
	char text[MOATD_ADDR_MAX + 16];
	socklen_t slen;
	int fd, on = 1;

	sockets_addr_text((const struct sockaddr *)ss, text, sizeof(text));
	slen = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in);
	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		snprintf(err, errlen, "listen %s: socket: %s", text, strerror(errno));
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1 ||
	    (ss->ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) == -1)) {
		snprintf(err, errlen, "listen %s: setsockopt: %s", text, strerror(errno));
		close(fd);
		return -1;
	}
	if (bind(fd, (const struct sockaddr *)ss, slen) == -1 ||
	    listen(fd, SOCKETS_BACKLOG) == -1) {
		snprintf(err, errlen, "listen %s: %s", text, strerror(errno));
		close(fd);
		return -1;
	}
	log_info("listen=%s", text);
	return fd;
}

/* Bind every listen, submission_listen and smtps_listen address. */
int
sockets_listen(struct moatd *m, char *err, size_t errlen)
{
	static const enum conf_key keys[] = {
		CONF_LISTEN, CONF_SUBMISSION_LISTEN, CONF_SMTPS_LISTEN
	};
	size_t i, k, total = 0;

	for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
		total += m->cfg->v[keys[k]].naddrs;
	if (total == 0) {
		snprintf(err, errlen, "listen: no address to listen on");
		return -1;
	}
	m->listen_fd = xreallocarray(NULL, total, sizeof(int));
	m->nlisten = 0;
	for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		const struct conf_value *v = &m->cfg->v[keys[k]];

		for (i = 0; i < v->naddrs; i++) {
			int fd = sockets_bind_one(&v->addrs[i], err, errlen);

			if (fd == -1)
				return -1;
			m->listen_fd[m->nlisten++] = fd;
		}
	}
	return 0;
}

/*
 * Is something still serving the socket at path?  A stale socket left by
 * a crash refuses connections; a live one means another moat uses this
 * run_directory, and taking its control socket away would be wrong.
 */
static int
sockets_control_alive(const struct sockaddr_un *sun)
{
	int fd, alive;

	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) == -1)
		return 0;
	alive = connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0;
	close(fd);
	return alive;
}

/* Remove a stale control socket; refuse anything that is not one. */
static int
sockets_control_clear(const struct sockaddr_un *sun, char *err, size_t errlen)
{
	struct stat st;

	if (lstat(sun->sun_path, &st) == -1)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s exists and is not a socket; remove it",
		    sun->sun_path);
		return -1;
	}
	if (sockets_control_alive(sun)) {
		snprintf(err, errlen, "%s answers: another moatd is running with "
		    "this run_directory", sun->sun_path);
		return -1;
	}
	if (unlink(sun->sun_path) == -1) {
		snprintf(err, errlen, "%s: unlink: %s", sun->sun_path, strerror(errno));
		return -1;
	}
	log_info("control=%s removed stale socket", sun->sun_path);
	return 0;
}

/*
 * Bind run_directory/control.sock, group admin_group: mode 0660, or 0666
 * when readonly_group is set, so that its members can connect at all.
 * The file mode is not the gate then: the queue-manager checks every
 * caller's SO_PEERCRED/SO_PEERGROUPS and refuses (and logs) anyone who is
 * neither root, the queue user, admin_group nor readonly_group, as
 * Postfix's showq socket is open to every local user.  It is left
 * blocking; the queue-manager, which accepts on it, chooses its mode.
 */
int
sockets_control(struct moatd *m, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	const char *ro = conf_str(m->cfg, CONF_READONLY_GROUP);
	int open_to_all = ro != NULL && ro[0] != '\0';
	mode_t old;
	int fd, r;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	m->control_path = xasprintf("%s/%s", m->rundir, SOCKETS_CTL_NAME);
	if (strlen(m->control_path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "%s: path too long for a socket", m->control_path);
		return -1;
	}
	strlcpy_m(sun.sun_path, m->control_path, sizeof(sun.sun_path));
	if (sockets_control_clear(&sun, err, errlen) == -1)
		return -1;
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) == -1) {
		snprintf(err, errlen, "control socket: %s", strerror(errno));
		return -1;
	}
	/* The umask sets the mode at creation: no window where it is 0777. */
	old = umask(open_to_all ? 0111 : 0117);
	r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (r == -1 || listen(fd, SOCKETS_CTL_BACKLOG) == -1) {
		snprintf(err, errlen, "%s: %s", m->control_path, strerror(errno));
		close(fd);
		return -1;
	}
	if (m->admin_gid != (gid_t)-1 &&
	    lchown(m->control_path, 0, m->admin_gid) == -1) {
		snprintf(err, errlen, "%s: chown: %s", m->control_path, strerror(errno));
		close(fd);
		unlink(m->control_path);
		return -1;
	}
	m->control_fd = fd;
	log_info("control=%s mode=%s group=%s%s", m->control_path,
	    open_to_all ? "0666" : "0660",
	    m->admin_gid != (gid_t)-1 ? conf_str(m->cfg, CONF_ADMIN_GROUP) :
	    "(own)", open_to_all ? " (readonly_group is set: the queue-manager "
	    "checks each caller)" : "");
	return 0;
}

/*
 * A memfd named name holding text, sealed against writing, growing and
 * shrinking: children read exactly the bytes moatd checked, and no
 * process can change them.
 */
int
sockets_sealed_memfd(const char *name, const char *text, size_t len, char *err,
    size_t errlen)
{
	size_t off = 0;
	int fd;

	if ((fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING)) == -1) {
		snprintf(err, errlen, "%s: memfd_create: %s", name, strerror(errno));
		return -1;
	}
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "%s: memfd write: %s", name,
			    strerror(errno));
			close(fd);
			return -1;
		}
		off += (size_t)n;
	}
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW |
	    F_SEAL_WRITE) == -1) {
		snprintf(err, errlen, "%s: memfd seal: %s", name, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* The configuration text (or bundle) in a sealed memfd. */
int
sockets_config_memfd(const char *text, size_t len, char *err, size_t errlen)
{
	return sockets_sealed_memfd("moat.conf", text, len, err, errlen);
}
