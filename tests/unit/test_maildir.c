/*
 * test_maildir.c: maildir delivery (delivery-agent/maildir.c, local.c):
 * CRLF to LF across chunks, unique names, the tmp -> new protocol in a
 * scratch directory, symlink refusal, and whole local jobs fed over a
 * socketpair as the queue-manager would.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "delivery-agent/job.h"
#include "delivery-agent/local.h"
#include "delivery-agent/maildir.h"
#include "ipc_types.h"
#include "util/ipc.h"
#include "unit/t.h"

static void
test_lf(void)
{
	static const struct {
		const char	*label, *in, *out;
	} c[] = {
		{ "empty", "", "" },
		{ "CRLF lines", "a\r\nb\r\n", "a\nb\n" },
		{ "no final line end", "a\r\nb", "a\nb" },
		{ "lone CR kept", "a\rb\r\n", "a\rb\n" },
		{ "CR at the end kept", "a\r", "a\r" },
		{ "CR CR LF", "a\r\r\n", "a\r\n" },
		{ "bare LF kept", "a\nb", "a\nb" },
	};
	struct maildir_lf s;
	uint8_t out[64];
	size_t i, cut, o, bad;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		size_t len = strlen(c[i].in);

		bad = 0;
		for (cut = 0; cut <= len; cut++) {
			memset(&s, 0, sizeof(s));
			o = maildir_lf_convert(&s, (const uint8_t *)c[i].in, cut, out);
			o += maildir_lf_convert(&s, (const uint8_t *)c[i].in + cut,
			    len - cut, out + o);
			o += maildir_lf_finish(&s, out + o);
			if (o != strlen(c[i].out) || memcmp(out, c[i].out, o) != 0)
				bad++;
		}
		T_OK(bad == 0, "LF conversion: %s (every cut point)", c[i].label);
	}
}

static void
test_unique(void)
{
	char u[MAILDIR_UNIQUE_MAX], small[24];

	T_OK(maildir_unique(u, sizeof(u), 1700000000, 42, 1234, "0123456789ABCDEF",
	    7, "mx.example.org") == 0 &&
	    strcmp(u, "1700000000.M000042P1234Q0123456789ABCDEFR7.mx.example.org") == 0,
	    "unique name: %s", u);
	T_OK(maildir_unique(u, sizeof(u), 1, 2, 3, "Q", 0, "a/b:c\\d e\x01") == 0 &&
	    strcmp(u, "1.M000002P3QQR0.a\\057b\\072c\\134d\\040e\\001") == 0,
	    "unique name escapes the host: %s", u);
	T_OK(maildir_unique(u, sizeof(u), 1, 2, 3, "Q", 0, "") == 0 &&
	    strcmp(u, "1.M000002P3QQR0.localhost") == 0, "empty host: %s", u);
	T_OK(maildir_unique(small, sizeof(small), 1700000000, 42, 1234,
	    "0123456789ABCDEF", 7, "h") == -1, "unique name too long for the buffer");
	T_OK(maildir_unique(u, sizeof(u), 1, 2, 3, "../x", 0, "h") == -1,
	    "queue id with a path refused");
}

/* Count the entries of a directory other than . and .. */
static int
count_entries(const char *path, char *first, size_t firstsz)
{
	struct dirent *de;
	DIR *d;
	int n = 0;

	if ((d = opendir(path)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n++ == 0 && first != NULL)
			snprintf(first, firstsz, "%s", de->d_name);
	}
	closedir(d);
	return n;
}

static int
read_file(const char *path, char *buf, size_t bufsz)
{
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY)) == -1)
		return -1;
	n = read(fd, buf, bufsz - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return (int)n;
}

static void
test_maildir_files(void)
{
	struct maildir md;
	struct stat st;
	char err[256], name[256], path[512], buf[64];
	int fd;

	T_OK(maildir_open(&md, "alice", err, sizeof(err)) == 0, "maildir made");
	T_OK(stat("alice/tmp", &st) == 0 && S_ISDIR(st.st_mode) &&
	    (st.st_mode & 07777) == 0700 && stat("alice/new", &st) == 0 &&
	    stat("alice/cur", &st) == 0, "tmp, new, cur exist with mode 0700");
	fd = maildir_tmp_create(&md, "u1", err, sizeof(err));
	T_OK(fd != -1 && write(fd, "hi\n", 3) == 3, "tmp file written");
	T_OK(maildir_tmp_create(&md, "u1", err, sizeof(err)) == -1 && errno == EEXIST,
	    "same tmp name twice refused");
	T_OK(maildir_commit(&md, "u1", fd, err, sizeof(err)) == 0, "committed");
	T_OK(count_entries("alice/tmp", NULL, 0) == 0 &&
	    count_entries("alice/new", name, sizeof(name)) == 1 &&
	    strcmp(name, "u1") == 0, "message moved from tmp/ to new/");
	snprintf(path, sizeof(path), "alice/new/%s", name);
	T_OK(read_file(path, buf, sizeof(buf)) == 3 && strcmp(buf, "hi\n") == 0,
	    "message content intact");
	fd = maildir_tmp_create(&md, "u2", err, sizeof(err));
	maildir_discard(&md, "u2", fd);
	T_OK(count_entries("alice/tmp", NULL, 0) == 0, "discarded tmp file removed");
	maildir_close(&md);
	T_OK(maildir_open(&md, "alice", err, sizeof(err)) == 0,
	    "existing maildir opens again");
	maildir_close(&md);

	/* A symbolic link in place of a folder or a subfolder is refused. */
	T_OK(mkdir("elsewhere", 0700) == 0 && symlink("elsewhere", "mallory") == 0,
	    "symlink planted");
	T_OK(maildir_open(&md, "mallory", err, sizeof(err)) == -1,
	    "symlinked maildir refused (%s)", err);
	T_OK(mkdir("eve", 0700) == 0 && symlink("../elsewhere", "eve/new") == 0,
	    "symlinked new/ planted");
	T_OK(maildir_open(&md, "eve", err, sizeof(err)) == -1 &&
	    count_entries("elsewhere", NULL, 0) == 0,
	    "symlinked new/ refused, nothing written through it (%s)", err);
}

static void
send_msg(int fd, struct ipc_wr *w)
{
	(void)ipc_send(fd, w, -1);
	ipc_wr_free(w);
}

/* Decode a job for the local transport from the given recipients. */
static int
make_job(struct job *j, uint64_t id, const char *qid, const char *sender,
    uint64_t size, const char *const *rcpt, uint32_t n)
{
	struct ipc_wr w;
	struct ipc_frame f;
	const uint8_t *msg;
	const char *why;
	char err[JOB_ERR_MAX];
	size_t len;
	uint32_t i;
	int r = -1;

	ipc_wr_init(&w, IPC_Q2D_JOB, 0);
	ipc_put_u64(&w, id);
	ipc_put_str(&w, qid);
	ipc_put_str(&w, sender);
	ipc_put_u64(&w, size);
	ipc_put_u32(&w, MOAT_BODY_7BIT);
	ipc_put_str(&w, "");
	ipc_put_u32(&w, MOAT_RET_NONE);
	ipc_put_str(&w, "");
	ipc_put_u32(&w, n);
	for (i = 0; i < n; i++) {
		ipc_put_u32(&w, 10 + i);
		ipc_put_str(&w, rcpt[i]);
		ipc_put_u32(&w, 0);
		ipc_put_str(&w, "");
	}
	if ((msg = ipc_wr_finish(&w, &len)) != NULL &&
	    ipc_frame_decode(msg, len, &f, &why) == 0) {
		f.fd = -1;
		r = job_decode(j, &f, err, sizeof(err));
	}
	ipc_wr_free(&w);
	return r;
}

/* Queue the body as chunks cut at the given places. */
static void
queue_body(int fd, uint64_t id, const char *body, const size_t *cuts, size_t ncuts)
{
	struct ipc_wr w;
	size_t k, from = 0, len = strlen(body);

	for (k = 0; k <= ncuts; k++) {
		size_t to = k < ncuts ? cuts[k] : len;

		ipc_wr_init(&w, IPC_Q2D_CHUNK, 0);
		ipc_put_u64(&w, id);
		ipc_put_u32(&w, (uint32_t)k);
		ipc_put_u32(&w, k == ncuts);
		ipc_put_blob(&w, body + from, to - from);
		send_msg(fd, &w);
		from = to;
	}
}

/* Throw away what the agent did not fetch. */
static void
queue_drain(int fd)
{
	uint8_t *buf = malloc(IPC_MAX_MSG);

	while (recv(fd, buf, IPC_MAX_MSG, MSG_DONTWAIT) > 0)
		;
	free(buf);
}

/* The one file in <folder>/new, read into buf. */
static int
read_delivered(const char *folder, char *buf, size_t bufsz)
{
	char dir[256], name[300], path[600];

	snprintf(dir, sizeof(dir), "%s/new", folder);
	if (count_entries(dir, name, sizeof(name)) != 1)
		return -1;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return read_file(path, buf, bufsz);
}

static void
test_local_jobs(void)
{
	static const char *const one[] = { "Bob@example.org" };
	static const char *const three[] = { "carol@example.org", "dave@example.org",
	    "\"a/b\"@example.org" };
	const char *body = "Subject: hi\r\n\r\nline one\r\n.dot line\r\nend";
	const size_t cuts1[] = { 14, 15, 30 }, cuts3[] = { 5 };
	struct local_opts o = { "mx.test" };
	char buf[512];
	struct job j;
	int sv[2];

	if (ipc_socketpair(sv) == -1) {
		T_OK(0, "socketpair");
		return;
	}
	job_init(&j, sv[0]);

	/* One recipient: the body streams straight into the maildir, with a
	 * CRLF split between two chunks. */
	T_OK(make_job(&j, 5, "AAAA000011112222", "from@example.com", strlen(body),
	    one, 1) == 0, "local job with one recipient");
	queue_body(sv[1], 5, body, cuts1, 3);
	T_OK(local_deliver(&j, &o) == 0, "one recipient delivered");
	T_OK(j.rcpt[0].code == 250 && strcmp(j.rcpt[0].enh, "2.0.0") == 0 &&
	    strcmp(j.relay, "maildir") == 0, "result 250 2.0.0 relay maildir (%u %s)",
	    j.rcpt[0].code, j.rcpt[0].text);
	T_OK(read_delivered("bob", buf, sizeof(buf)) > 0 &&
	    strcmp(buf, "Return-Path: <from@example.com>\nDelivered-To: Bob@example.org\n"
	    "Subject: hi\n\nline one\n.dot line\nend") == 0,
	    "folder is the lower-cased local part; headers first; LF line ends");
	job_clear(&j);

	/* Three recipients through the spool; one name is unusable. */
	T_OK(make_job(&j, 6, "BBBB000011112222", "", strlen(body), three, 3) == 0,
	    "local job with three recipients");
	queue_body(sv[1], 6, body, cuts3, 1);
	T_OK(local_deliver(&j, &o) == 0, "three recipients handled");
	T_OK(j.rcpt[0].code == 250 && j.rcpt[1].code == 250,
	    "two recipients delivered");
	T_OK(j.rcpt[0].flags == MOAT_RESULT_FINAL && j.rcpt[1].flags == MOAT_RESULT_FINAL,
	    "maildir deliveries are final (MOAT_RESULT_FINAL)");
	T_OK(j.rcpt[2].code == 550 && strcmp(j.rcpt[2].enh, "5.1.3") == 0 &&
	    j.rcpt[2].flags == 0, "unusable maildir name refused 550 5.1.3, not final");
	T_OK(read_delivered("dave", buf, sizeof(buf)) > 0 &&
	    strcmp(buf, "Return-Path: <>\nDelivered-To: dave@example.org\n"
	    "Subject: hi\n\nline one\n.dot line\nend") == 0,
	    "null sender in Return-Path; body copied from the spool");
	T_OK(read_delivered("carol", buf, sizeof(buf)) > 0 &&
	    strstr(buf, "Delivered-To: carol@example.org\n") != NULL,
	    "each recipient has its own Delivered-To");
	job_clear(&j);

	/* A folder that cannot be a maildir (a file is in the way, which
	 * stops root too): 451 4.3.0, never 2xx. */
	{
		static const char *const ro[] = { "ro@example.org" };
		int fd = open("ro", O_WRONLY | O_CREAT | O_EXCL, 0600);

		T_OK(fd != -1, "file in place of a folder");
		if (fd != -1)
			close(fd);
		T_OK(make_job(&j, 7, "CCCC000011112222", "", strlen(body), ro, 1) == 0,
		    "local job for a broken maildir");
		queue_body(sv[1], 7, body, cuts3, 1);
		T_OK(local_deliver(&j, &o) == 0, "broken maildir handled");
		T_OK(j.rcpt[0].code == 451 && strcmp(j.rcpt[0].enh, "4.3.0") == 0,
		    "broken maildir gives 451 4.3.0 (%u %s)", j.rcpt[0].code,
		    j.rcpt[0].text);
		job_clear(&j);
		/* Its chunks were never fetched: drain them. */
		queue_drain(sv[0]);
	}

	/* A broken chunk stream is a channel error, not a result. */
	T_OK(make_job(&j, 8, "DDDD000011112222", "", strlen(body), one, 1) == 0,
	    "local job with a bad chunk");
	queue_body(sv[1], 9, body, cuts3, 1);
	T_OK(local_deliver(&j, &o) == -1 && j.err[0] != '\0',
	    "chunk for another job: error (%s)", j.err);
	T_OK(count_entries("bob/tmp", NULL, 0) == 0, "no partial file left in tmp/");
	job_clear(&j);
	close(sv[0]);
	close(sv[1]);
	free(j.buf);
}

static int
remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int
main(void)
{
	char dir[] = "/tmp/moat-test-maildir.XXXXXX";

	test_lf();
	test_unique();
	if (mkdtemp(dir) == NULL || chdir(dir) == -1) {
		T_OK(0, "scratch directory");
		return t_done();
	}
	test_maildir_files();
	test_local_jobs();
	if (chdir("/") == 0)
		(void)nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	return t_done();
}
