/*
 * keyholder.c: main() of the keyholder, the process that holds the TLS
 * private keys and signs handshake digests for smtpd-sessions.
 *
 * The sessions talk to strangers; the keyholder talks only to moatd and
 * to sessions, and never reads a byte of client data.  moatd execs it
 * with (common/proc.h)
 *   fd 3  the configuration (sealed memfd)
 *   fd 4  MOAT_FD_KEYS_PARENT, the channel from moatd
 * and sends it, on fd 4, the PEM keys in a sealed memfd (IPC_L2K_KEYS,
 * at start and at each reload) and one end of a new channel for every
 * session (IPC_L2K_SESSION).  It opens no file at all: after priv_drop()
 * into the empty chroot and its seccomp table (sandbox.c) it can only
 * read and write the descriptors it is given.
 *
 * One poll() loop serves every session at once.  A session may send
 * IPC_S2K_SIGN only, one at a time, and gets IPC_K2S_SIGNATURE or
 * IPC_K2S_FAIL; a session that sends anything malformed, or does not
 * read its answers, is dropped and logged.  The number of channels is
 * bounded by smtpd_max_sessions plus a margin; a session beyond it gets
 * its channel closed, so its handshake fails rather than wait.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "ipc_types.h"
#include "keyholder.h"
#include "key_request.h"
#include "key_store.h"
#include "proc.h"
#include "util/conf.h"
#include "util/ipc.h"
#include "util/log.h"
#include "util/privdrop.h"
#include "util/xmalloc.h"

#define KH_CHAN_MARGIN	16		/* channels beyond smtpd_max_sessions */
#define KH_KEYS_MAX	(1024 * 1024)	/* PEM text of every key file */

struct kh_chan {
	int	 fd;
	long	 pid;			/* the session's, for logs */
};

static struct key_store kh_keys;
static struct kh_chan *kh_chans;
static size_t kh_nchans, kh_maxchans;
static uint8_t kh_msg[IPC_MAX_MSG];
static volatile sig_atomic_t kh_stop;

/* SIGTERM from moatd: leave the loop, so the exit is a clean one. */
static void
kh_sigterm(int sig)
{
	(void)sig;
	kh_stop = 1;
}

/* Close channel i; the last one takes its place. */
static void
kh_chan_drop(size_t i)
{
	close(kh_chans[i].fd);
	kh_chans[i] = kh_chans[--kh_nchans];
}

/* IPC_L2K_SESSION: a new session's channel, non-blocking on our side. */
static void
kh_session(const struct ipc_frame *f)
{
	struct ipc_rd r;
	uint32_t pid;
	int fl;

	ipc_rd_init(&r, f);
	pid = ipc_get_u32(&r);
	if (ipc_rd_end(&r) == -1 || f->fd == -1) {
		log_warn("parent=moatd malformed session message");
		if (f->fd != -1)
			close(f->fd);
		return;
	}
	if (kh_nchans >= kh_maxchans) {
		log_warn("session=%lu refused: channels=%zu limit=%zu",
		    (unsigned long)pid, kh_nchans, kh_maxchans);
		close(f->fd);
		return;
	}
	if ((fl = fcntl(f->fd, F_GETFL)) == -1 ||
	    fcntl(f->fd, F_SETFL, fl | O_NONBLOCK) == -1) {
		log_warnx("session=%lu channel", (unsigned long)pid);
		close(f->fd);
		return;
	}
	kh_chans[kh_nchans].fd = f->fd;
	kh_chans[kh_nchans].pid = (long)pid;
	kh_nchans++;
	log_debug("session=%lu channel open channels=%zu", (unsigned long)pid,
	    kh_nchans);
}

/* The PEM text from a sealed memfd, into a buffer the caller wipes. */
static char *
kh_read_memfd(int fd, size_t *lenp)
{
	struct stat st;
	size_t off = 0;
	char *text;

	if (fstat(fd, &st) == -1 || st.st_size <= 0 || st.st_size > KH_KEYS_MAX)
		return NULL;
	text = xmalloc((size_t)st.st_size);
	while (off < (size_t)st.st_size) {
		ssize_t n = pread(fd, text + off, (size_t)st.st_size - off, (off_t)off);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			explicit_bzero(text, (size_t)st.st_size);
			free(text);
			return NULL;
		}
		off += (size_t)n;
	}
	*lenp = off;
	return text;
}

/* IPC_L2K_KEYS: a new generation of keys. */
static void
kh_keys_load(const struct ipc_frame *f)
{
	char err[256], *text;
	size_t len = 0, n;

	if (f->fd == -1 || f->len != 0) {
		log_warn("parent=moatd malformed keys message");
		if (f->fd != -1)
			close(f->fd);
		return;
	}
	text = kh_read_memfd(f->fd, &len);
	close(f->fd);
	if (text == NULL) {
		log_warn("keys=refused: cannot read the key memfd (empty or over "
		    "%d bytes)", KH_KEYS_MAX);
		return;
	}
	if (key_store_load(&kh_keys, text, len, &n, err, sizeof(err)) == -1)
		log_warn("keys=refused: %s (keeping the keys held)", err);
	else
		log_info("keys=%zu generation=%u held=%zu", n, kh_keys.gen,
		    kh_keys.n);
	explicit_bzero(text, len);
	free(text);
}

/* A message from moatd; 0 when moatd has gone (we follow it). */
static int
kh_parent(void)
{
	struct ipc_frame f;
	const char *why = "";
	int r;

	if ((r = ipc_recv(MOAT_FD_KEYS_PARENT, kh_msg, &f, &why)) == 0)
		return 0;
	if (r == -1) {
		if (errno == EINTR || errno == EAGAIN)
			return 1;
		if (errno == EPROTO) {
			log_warn("parent=moatd malformed message: %s", why);
			return 1;
		}
		log_warnx("parent=moatd receive");
		return 0;
	}
	switch (f.hdr.type) {
	case IPC_L2K_SESSION:
		kh_session(&f);
		break;
	case IPC_L2K_KEYS:
		kh_keys_load(&f);
		break;
	default:
		log_warn("parent=moatd unexpected message type=%s",
		    ipc_type_name(f.hdr.type));
		if (f.fd != -1)
			close(f.fd);
	}
	return 1;
}

/* Answer one request on channel c; -1 drops the channel. */
static int
kh_serve(struct kh_chan *c, const struct ipc_frame *f)
{
	uint8_t sig[MOAT_KEYOP_IN_MAX + 256];
	struct ipc_wr w;
	const char *why = "";
	size_t siglen = 0;
	enum key_verdict v;
	int r;

	v = keyholder_answer(&kh_keys, f, &w, sig, sizeof(sig), &siglen, &why);
	if (v == KEYREQ_MALFORMED) {
		log_warn("session=%ld dropped: %s", c->pid, why);
		return -1;
	}
	if (v == KEYREQ_FAIL)
		log_warn("session=%ld sign=refused reason=\"%s\"", c->pid, why);
	else
		log_debug("session=%ld sign=ok bytes=%zu", c->pid, siglen);
	r = ipc_send(c->fd, &w, -1);
	explicit_bzero(sig, sizeof(sig));
	ipc_wr_free(&w);
	if (r == -1) {
		/* One request at a time: a full socket is a session that does
		 * not read its answers. */
		log_warn("session=%ld dropped: cannot send the answer: %s", c->pid,
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* Channel i is readable or hung up; -1 when it was dropped. */
static int
kh_chan_event(size_t i, short revents)
{
	struct ipc_frame f;
	const char *why = "";
	int r;

	if (!(revents & POLLIN)) {
		kh_chan_drop(i);
		return -1;
	}
	r = ipc_recv(kh_chans[i].fd, kh_msg, &f, &why);
	if (r == -1 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (r == 1 && f.fd != -1) {
		close(f.fd);
		f.fd = -1;
		why = "descriptor passed with a request";
		r = -1;
		errno = EPROTO;
	}
	if (r == 1 && kh_serve(&kh_chans[i], &f) == 0)
		return 0;
	if (r == -1 && errno == EPROTO)
		log_warn("session=%ld dropped: %s", kh_chans[i].pid, why);
	else if (r == 0)
		log_debug("session=%ld channel closed", kh_chans[i].pid);
	kh_chan_drop(i);
	return -1;
}

/* Serve until moatd goes away. */
static void __attribute__((noreturn))
kh_loop(void)
{
	struct pollfd *pfd = xreallocarray(NULL, kh_maxchans + 1, sizeof(*pfd));
	sigset_t none;
	size_t i, n;

	/* SIGTERM stays blocked but while waiting in ppoll: no lost wake-up. */
	sigemptyset(&none);

	while (!kh_stop) {
		pfd[0].fd = MOAT_FD_KEYS_PARENT;
		pfd[0].events = POLLIN;
		for (i = 0; i < kh_nchans; i++) {
			pfd[i + 1].fd = kh_chans[i].fd;
			pfd[i + 1].events = POLLIN;
			pfd[i + 1].revents = 0;
		}
		n = kh_nchans;
		if (ppoll(pfd, n + 1, NULL, &none) == -1) {
			if (errno == EINTR)
				continue;
			log_fatal("poll: %s", strerror(errno));
		}
		/* Backwards: dropping channel i moves the last one into i. */
		for (i = n; i > 0; i--)
			if (pfd[i].revents != 0)
				(void)kh_chan_event(i - 1, pfd[i].revents);
		if ((pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) && !kh_parent())
			break;
	}
	log_info(kh_stop ? "signal=TERM: exiting" : "parent=moatd gone: exiting");
	key_store_free(&kh_keys);
	exit(0);
}

/*
 * OpenSSL loads its configuration and seeds its random generator on
 * first use; both may open files, so they happen here, before the
 * sandbox, and one ECDSA signature fetches the signing code paths.
 */
static void
kh_openssl_init(void)
{
	static const uint8_t digest[32];
	uint8_t sig[160];
	size_t siglen = sizeof(sig);
	EVP_PKEY_CTX *c;
	EVP_PKEY *k;

	if (OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL) != 1 ||
	    RAND_bytes(sig, sizeof(sig)) != 1)
		log_fatal("OpenSSL initialisation failed");
	if ((k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) == NULL ||
	    (c = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL)) == NULL ||
	    EVP_PKEY_sign_init(c) != 1 ||
	    EVP_PKEY_sign(c, sig, &siglen, digest, sizeof(digest)) != 1)
		log_fatal("OpenSSL: ECDSA self-test failed");
	EVP_PKEY_CTX_free(c);
	EVP_PKEY_free(k);
}

/* Start-up in the order of the file comment, then serve. */
int
main(int argc, char **argv)
{
	struct priv_spec spec;
	struct sigaction sa;
	sigset_t term;
	const char *cfgname;
	struct conf *cfg;
	char err[256];
	int debug;

	log_init("keyholder", 0);
	if (priv_parse_child_args(argc, argv, &spec, &debug, &cfgname, err,
	    sizeof(err)) == -1)
		log_fatal("%s", err);
	log_set_debug(debug);
	if (conf_load_fd(MOAT_FD_CONFIG, cfgname, &cfg, stderr) != 0)
		log_fatal("configuration on descriptor %d is not valid", MOAT_FD_CONFIG);
	kh_maxchans = (size_t)conf_num(cfg, CONF_SMTPD_MAX_SESSIONS) + KH_CHAN_MARGIN;
	kh_chans = xreallocarray(NULL, kh_maxchans, sizeof(*kh_chans));
	conf_free(cfg);
	close(MOAT_FD_CONFIG);
	if (fcntl(MOAT_FD_KEYS_PARENT, F_GETFD) == -1)
		log_fatal("descriptor %d (channel from moatd) is not open",
		    MOAT_FD_KEYS_PARENT);
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		log_fatal("signal SIGPIPE: %s", strerror(errno));
	/* sigaction is not in the sandbox: the handler goes in now. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kh_sigterm;
	sigemptyset(&sa.sa_mask);
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	if (sigaction(SIGTERM, &sa, NULL) == -1 ||
	    sigprocmask(SIG_BLOCK, &term, NULL) == -1)
		log_fatal("SIGTERM handler: %s", strerror(errno));
	key_store_init(&kh_keys);
	kh_openssl_init();

	spec.no_new_procs = 1;
	spec.no_file_writes = 1;
	if (priv_drop(&spec, err, sizeof(err)) == -1)
		log_fatal("dropping privileges: %s", err);
	if (keyholder_sandbox_apply(err, sizeof(err)) == -1)
		log_fatal("sandbox: %s", err);
	log_info("ready channels_max=%zu", kh_maxchans);
	kh_loop();
}
