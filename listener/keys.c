/*
 * keys.c: moatd's side of the keyholder.
 *
 * The keyholder (keyholder/) holds the TLS private keys so that no
 * smtpd-session ever does.  It runs only when smtpd_tls_cert_files is
 * set.  moatd reads the files of smtpd_tls_key_files itself, at start
 * (as root) and at each reload, concatenates them into a memfd sealed
 * against every change, and wipes its own copy of the text.  It keeps
 * that memfd, not the text, so that a keyholder restarted after a crash
 * gets the keys again (IPC_L2K_KEYS, a duplicate of the memfd); a reload
 * replaces it.  For every session moatd makes a socketpair, hands one
 * end to the session at MOAT_FD_SESSION_KEYS and the other to the
 * keyholder (IPC_L2K_SESSION).
 *
 * The channel to the keyholder is non-blocking: a keyholder that hangs
 * must not stop moatd.  A message that does not fit is dropped and
 * logged; the session it was for then fails its TLS handshake and says
 * so to its client (454), which is also what happens while the
 * keyholder is down.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ipc_types.h"
#include "moatd.h"
#include "util/file.h"
#include "util/ipc.h"
#include "util/log.h"
#include "util/xmalloc.h"

#define KEYS_TEXT_MAX	(1024 * 1024)	/* every key file together */

static int keys_chan = -1;	/* our end of the keyholder's channel */

/* Is TLS configured, so that sessions need the keyholder? */
int
keys_enabled(const struct moatd *m)
{
	return conf_words(m->cfg, CONF_SMTPD_TLS_CERT_FILES)->n > 0;
}

/* Append one key file to all[*used..]; wipes its own copy of the text. */
static int
keys_read_one(char *all, size_t *used, const char *path, char *err,
    size_t errlen)
{
	size_t len, need;
	char *text;

	if ((text = file_read(path, KEYS_TEXT_MAX, &len, err, errlen)) == NULL)
		return -1;
	need = len + (len == 0 || text[len - 1] != '\n');
	if (need > KEYS_TEXT_MAX - *used) {
		snprintf(err, errlen, "smtpd_tls_key_files: more than %d bytes "
		    "together", KEYS_TEXT_MAX);
		explicit_bzero(text, len);
		free(text);
		return -1;
	}
	memcpy(all + *used, text, len);
	*used += len;
	if (need > len)
		all[(*used)++] = '\n';
	explicit_bzero(text, len);
	free(text);
	return 0;
}

/*
 * Every file of smtpd_tls_key_files, in a new sealed memfd; -1 and err.
 * The text is gathered in one buffer of fixed size, so no reallocation
 * leaves a copy of a key behind in freed memory; it is wiped after.
 */
static int
keys_read_files(const struct moatd *m, char *err, size_t errlen)
{
	const struct conf_words *keys = conf_words(m->cfg, CONF_SMTPD_TLS_KEY_FILES);
	const struct conf_words *certs = conf_words(m->cfg, CONF_SMTPD_TLS_CERT_FILES);
	size_t i, used = 0;
	char *all;
	int fd = -1;

	if (keys->n != certs->n) {
		snprintf(err, errlen, "smtpd_tls_key_files names %zu file(s) but "
		    "smtpd_tls_cert_files %zu: one key per certificate, in the "
		    "same order", keys->n, certs->n);
		return -1;
	}
	all = xmalloc(KEYS_TEXT_MAX);
	for (i = 0; i < keys->n; i++)
		if (keys_read_one(all, &used, keys->v[i], err, errlen) == -1)
			goto out;
	fd = sockets_sealed_memfd("moat-keys", all, used, err, errlen);
out:
	explicit_bzero(all, used);
	free(all);
	return fd;
}

/* At start, as root: read the keys if TLS is on and the keyholder exists. */
int
keys_setup(struct moatd *m, char *err, size_t errlen)
{
	char *path;
	int ok;

	if (!keys_enabled(m))
		return 0;
	path = xasprintf("%s/%s", m->libexecdir, proc_info(PROC_KEYS)->binary);
	ok = access(path, X_OK) == 0;
	if (!ok)
		snprintf(err, errlen, "%s: %s (smtpd_tls_cert_files is set: the "
		    "keyholder holds the private keys)", path, strerror(errno));
	free(path);
	if (!ok || (m->keys_fd = keys_read_files(m, err, errlen)) == -1)
		return -1;
	log_info("keys=%zu read from smtpd_tls_key_files for the keyholder",
	    conf_words(m->cfg, CONF_SMTPD_TLS_KEY_FILES)->n);
	return 0;
}

/* Send one message with fd (now ours, closed here) to the keyholder. */
static int
keys_send(struct ipc_wr *w, int fd, const char *what)
{
	int r = -1;

	if (keys_chan == -1)
		log_warn("child=keyholder down: %s not sent", what);
	else if ((r = ipc_send(keys_chan, w, fd)) == -1)
		log_warnx("child=keyholder %s not sent", what);
	ipc_wr_free(w);
	if (fd != -1)
		close(fd);
	return r;
}

/* IPC_L2K_KEYS: a duplicate of the sealed key memfd. */
static void
keys_send_keys(const struct moatd *m)
{
	struct ipc_wr w;
	int fd;

	if (m->keys_fd == -1)
		return;
	if ((fd = fcntl(m->keys_fd, F_DUPFD_CLOEXEC, 0)) == -1) {
		log_warnx("child=keyholder keys: dup");
		return;
	}
	ipc_wr_init(&w, IPC_L2K_KEYS, 0);
	(void)keys_send(&w, fd, "keys");
}

/* A keyholder is starting: a new channel, *child_end for its fd 4. */
int
keys_open(const struct moatd *m, int *child_end)
{
	int sv[2];

	(void)m;
	if (ipc_socketpair(sv) == -1) {
		log_warnx("child=keyholder socketpair");
		return -1;
	}
	if (fcntl(sv[0], F_SETFL, O_NONBLOCK) == -1) {
		log_warnx("child=keyholder channel O_NONBLOCK");
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	keys_close();
	keys_chan = sv[0];
	*child_end = sv[1];
	return 0;
}

/* The keyholder is running: give it the keys. */
void
keys_started(const struct moatd *m)
{
	keys_send_keys(m);
}

/* The keyholder is gone. */
void
keys_close(void)
{
	if (keys_chan != -1)
		close(keys_chan);
	keys_chan = -1;
}

/*
 * A session is about to start: its channel to the keyholder, or -1 in
 * both when TLS is off or the keyholder is down (the session then has
 * no MOAT_FD_SESSION_KEYS and answers STARTTLS with 454).
 */
int
keys_session_pair(const struct moatd *m, int *session_end, int *keyholder_end)
{
	int sv[2];

	*session_end = *keyholder_end = -1;
	if (m->keys_fd == -1 || keys_chan == -1 || !keys_enabled(m))
		return -1;
	if (ipc_socketpair(sv) == -1) {
		log_warnx("child=keyholder session socketpair");
		return -1;
	}
	*session_end = sv[0];
	*keyholder_end = sv[1];
	return 0;
}

/* IPC_L2K_SESSION: the keyholder's end of session pid's channel. */
void
keys_session(pid_t pid, int keyholder_end)
{
	struct ipc_wr w;

	ipc_wr_init(&w, IPC_L2K_SESSION, 0);
	if (ipc_put_u32(&w, (uint32_t)pid) == -1) {
		ipc_wr_free(&w);
		close(keyholder_end);
		return;
	}
	(void)keys_send(&w, keyholder_end, "session channel");
}

/*
 * A reload: read the key files again.  moatd no longer has every
 * privilege (caps.c), so a key file only root may read must be owned by
 * root; if a file cannot be read the keys held stay.  1 when the
 * keyholder should now run and did not (TLS was just turned on).
 */
int
keys_reload(struct moatd *m)
{
	char err[512];
	int fd, was = m->keys_fd != -1;

	if (!keys_enabled(m))
		return 0;
	if (!was && m->privileged && m->role[PROC_KEYS].uid == (uid_t)-1) {
		/* Never start it as root: its user was missing at start. */
		log_warn("reload: smtpd_tls_cert_files is set but user %s "
		    "(keyholder_user) did not exist when moatd started: TLS "
		    "needs a restart", conf_str(m->cfg, CONF_KEYHOLDER_USER));
		return 0;
	}
	if ((fd = keys_read_files(m, err, sizeof(err))) == -1) {
		log_warn("reload: %s: keeping the keys held", err);
		return 0;
	}
	if (m->keys_fd != -1)
		close(m->keys_fd);
	m->keys_fd = fd;
	log_info("reload: keys=%zu read from smtpd_tls_key_files",
	    conf_words(m->cfg, CONF_SMTPD_TLS_KEY_FILES)->n);
	if (!was)
		return 1;
	keys_send_keys(m);
	return 0;
}
