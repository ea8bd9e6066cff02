/*
 * test_ipc.c: IPC framing and the field cursor: round trips, every way a
 * frame can be malformed, string and blob caps, and descriptor passing
 * over a real SOCK_SEQPACKET socketpair.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "util/ipc.h"
#include "tests/unit/t.h"

static uint8_t rbuf[IPC_MAX_MSG];

/* Finish w and decode it into f (the bytes stay in w). */
static int
roundtrip(struct ipc_wr *w, struct ipc_frame *f, const char **why)
{
	const uint8_t *msg;
	size_t len;

	if ((msg = ipc_wr_finish(w, &len)) == NULL)
		return -1;
	return ipc_frame_decode(msg, len, f, why);
}

static void
test_roundtrip(void)
{
	static const uint8_t blob[5] = { 0, 1, 0, 0xff, 0x80 };
	struct ipc_wr w;
	struct ipc_frame f;
	struct ipc_rd r;
	const char *why = NULL;
	const uint8_t *bp;
	size_t bn;
	char s[32], *dup;

	ipc_wr_init(&w, 16, 77);
	T_OK(ipc_put_u32(&w, 0xdeadbeef) == 0, "put u32");
	T_OK(ipc_put_u64(&w, 0x0123456789abcdefULL) == 0, "put u64");
	T_OK(ipc_put_str(&w, "hello") == 0, "put str");
	T_OK(ipc_put_str(&w, "") == 0, "put empty str");
	T_OK(ipc_put_strn(&w, "abcdef", 3) == 0, "put strn");
	T_OK(ipc_put_blob(&w, blob, sizeof(blob)) == 0, "put blob with NUL bytes");
	T_OK(ipc_put_blob(&w, NULL, 0) == 0, "put empty blob");
	T_OK(ipc_put_str(&w, "duplicate me") == 0, "put str for strdup");
	T_OK(roundtrip(&w, &f, &why) == 0, "round trip decodes");
	T_OK(f.hdr.type == 16 && f.hdr.reqid == 77 && f.hdr.version == IPC_VERSION, "header fields");
	ipc_rd_init(&r, &f);
	T_OK(ipc_get_u32(&r) == 0xdeadbeef, "get u32");
	T_OK(ipc_get_u64(&r) == 0x0123456789abcdefULL, "get u64");
	T_OK(ipc_get_str(&r, s, sizeof(s)) == 0 && strcmp(s, "hello") == 0, "get str");
	T_OK(ipc_get_str(&r, s, sizeof(s)) == 0 && s[0] == '\0', "get empty str");
	T_OK(ipc_get_str(&r, s, sizeof(s)) == 0 && strcmp(s, "abc") == 0, "get strn");
	T_OK(ipc_get_blob(&r, &bp, &bn, 16) == 0 && bn == 5 && memcmp(bp, blob, 5) == 0, "get blob");
	T_OK(ipc_get_blob(&r, &bp, &bn, 16) == 0 && bn == 0, "get empty blob");
	dup = ipc_get_strdup(&r, 64);
	T_OK(dup != NULL && strcmp(dup, "duplicate me") == 0, "get strdup");
	free(dup);
	T_OK(ipc_rd_end(&r) == 0, "payload consumed exactly");
	T_OK(ipc_get_u32(&r) == 0 && r.err, "reading past the end fails");
	T_OK(ipc_rd_end(&r) == -1, "end fails after a failed get");
	ipc_wr_free(&w);

	ipc_wr_init(&w, 19, 0);
	T_OK(roundtrip(&w, &f, &why) == 0 && f.len == 0, "empty payload");
	ipc_rd_init(&r, &f);
	T_OK(ipc_rd_end(&r) == 0, "empty payload ends at once");
	ipc_wr_free(&w);
}

/* Frames that ipc_frame_decode must refuse. */
static void
test_bad_frames(void)
{
	struct ipc_wr w;
	struct ipc_frame f;
	struct ipc_hdr h;
	const char *why;
	const uint8_t *msg;
	uint8_t copy[64];
	size_t len;
	int rc;

	ipc_wr_init(&w, 16, 1);
	ipc_put_u32(&w, 5);
	msg = ipc_wr_finish(&w, &len);
	T_OK(msg != NULL && len == IPC_HDR_LEN + 4, "finish length");
	memcpy(copy, msg, len);

	why = NULL;
	rc = ipc_frame_decode(copy, IPC_HDR_LEN - 1, &f, &why);
	T_OK(rc == -1 && why != NULL, "truncated header refused (%s)", why ? why : "");
	T_OK(ipc_frame_decode(copy, 0, &f, &why) == -1, "zero bytes refused");
	why = NULL;
	rc = ipc_frame_decode(copy, len - 1, &f, &why);
	T_OK(rc == -1 && why != NULL, "short payload refused (%s)", why ? why : "");
	T_OK(ipc_frame_decode(copy, IPC_HDR_LEN, &f, &why) == -1, "missing payload refused");

	memcpy(&h, copy, sizeof(h));
	h.len = 3;
	memcpy(copy, &h, sizeof(h));
	T_OK(ipc_frame_decode(copy, len, &f, &why) == -1, "header length smaller than bytes refused");
	h.len = 4;
	h.version = IPC_VERSION + 1;
	memcpy(copy, &h, sizeof(h));
	why = NULL;
	rc = ipc_frame_decode(copy, len, &f, &why);
	T_OK(rc == -1 && why != NULL && strstr(why, "version") != NULL,
	    "wrong version refused (%s)", why ? why : "");
	h.version = 0;
	memcpy(copy, &h, sizeof(h));
	T_OK(ipc_frame_decode(copy, len, &f, &why) == -1, "version 0 refused");
	h.version = IPC_VERSION;
	h.len = IPC_MAX_PAYLOAD + 1;
	memcpy(copy, &h, sizeof(h));
	why = NULL;
	rc = ipc_frame_decode(copy, len, &f, &why);
	T_OK(rc == -1 && why != NULL, "oversized length refused (%s)", why ? why : "");
	h.len = UINT32_MAX;
	memcpy(copy, &h, sizeof(h));
	T_OK(ipc_frame_decode(copy, len, &f, &why) == -1, "length 2^32-1 refused");
	ipc_wr_free(&w);

	/* An oversized payload that really is that long. */
	{
		size_t big = IPC_HDR_LEN + IPC_MAX_PAYLOAD + 1;
		uint8_t *m = calloc(1, big);

		h.type = 17;
		h.len = IPC_MAX_PAYLOAD + 1;
		h.reqid = 0;
		h.version = IPC_VERSION;
		memcpy(m, &h, sizeof(h));
		T_OK(ipc_frame_decode(m, big, &f, &why) == -1, "real oversized payload refused");
		h.len = IPC_MAX_PAYLOAD;
		memcpy(m, &h, sizeof(h));
		T_OK(ipc_frame_decode(m, big - 1, &f, &why) == 0 && f.len == IPC_MAX_PAYLOAD,
		    "payload of exactly IPC_MAX_PAYLOAD accepted");
		free(m);
	}
}

/* The writer enforces the payload cap. */
static void
test_writer_caps(void)
{
	struct ipc_wr w;
	uint8_t *big = calloc(1, IPC_MAX_PAYLOAD + 1);
	size_t len;

	ipc_wr_init(&w, 17, 0);
	T_OK(ipc_put_blob(&w, big, IPC_MAX_PAYLOAD + 1) == -1, "blob over the cap refused");
	T_OK(ipc_put_blob(&w, big, IPC_MAX_PAYLOAD - 4) == 0, "blob filling the payload accepted");
	T_OK(ipc_wr_finish(&w, &len) != NULL && len == IPC_MAX_MSG, "full message finishes");
	T_OK(ipc_put_u32(&w, 1) == -1 && errno == EMSGSIZE, "one more field refused");
	T_OK(ipc_put_strn(&w, "a\0b", 3) == -1, "string with NUL refused by the writer");
	ipc_wr_free(&w);
	free(big);
}

/* Payload-level problems caught by the cursor. */
static void
test_cursor(void)
{
	struct ipc_wr w;
	struct ipc_frame f;
	struct ipc_rd r;
	const char *why;
	const uint8_t *bp;
	size_t bn;
	char s[8], *dup;

	/* Trailing bytes. */
	ipc_wr_init(&w, 16, 0);
	ipc_put_u32(&w, 1);
	ipc_put_u32(&w, 2);
	roundtrip(&w, &f, &why);
	ipc_rd_init(&r, &f);
	T_OK(ipc_get_u32(&r) == 1 && r.err == 0, "first field read");
	T_OK(ipc_rd_end(&r) == -1, "trailing bytes caught by ipc_rd_end");
	ipc_wr_free(&w);

	/* Short field: u64 from 4 bytes. */
	ipc_wr_init(&w, 16, 0);
	ipc_put_u32(&w, 1);
	roundtrip(&w, &f, &why);
	ipc_rd_init(&r, &f);
	T_OK(ipc_get_u64(&r) == 0 && r.err, "u64 from 4 bytes fails");
	T_OK(ipc_get_u32(&r) == 0 && r.err, "error is sticky");
	T_OK(ipc_rd_end(&r) == -1, "end fails");
	ipc_wr_free(&w);

	/* A string whose length field lies. */
	ipc_wr_init(&w, 16, 0);
	ipc_put_u32(&w, 100);
	ipc_put_u32(&w, 0x41414141);
	roundtrip(&w, &f, &why);
	ipc_rd_init(&r, &f);
	T_OK(ipc_get_str(&r, s, sizeof(s)) == -1 && s[0] == '\0', "length beyond payload refused");
	ipc_wr_free(&w);

	ipc_wr_init(&w, 16, 0);
	ipc_put_u32(&w, UINT32_MAX);
	roundtrip(&w, &f, &why);
	ipc_rd_init(&r, &f);
	T_OK(ipc_get_blob(&r, &bp, &bn, SIZE_MAX) == -1, "length 2^32-1 refused even with no cap");
	ipc_wr_free(&w);

	/* NUL inside a string, smuggled as a blob. */
	ipc_wr_init(&w, 16, 0);
	ipc_put_blob(&w, "ab\0cd", 5);
	ipc_put_blob(&w, "ab\0cd", 5);
	roundtrip(&w, &f, &why);
	ipc_rd_init(&r, &f);
	T_OK(ipc_get_str(&r, s, sizeof(s)) == -1 && r.err, "string with NUL refused by get_str");
	ipc_rd_init(&r, &f);
	ipc_get_blob(&r, &bp, &bn, 5);
	dup = ipc_get_strdup(&r, 64);
	T_OK(dup == NULL && r.err, "string with NUL refused by get_strdup");
	ipc_wr_free(&w);

	/* Caps: dstsz - 1 bytes fit, one more does not. */
	ipc_wr_init(&w, 16, 0);
	ipc_put_str(&w, "1234567");
	ipc_put_str(&w, "12345678");
	roundtrip(&w, &f, &why);
	ipc_rd_init(&r, &f);
	T_OK(ipc_get_str(&r, s, sizeof(s)) == 0 && strcmp(s, "1234567") == 0, "7 bytes into 8 accepted");
	T_OK(ipc_get_str(&r, s, sizeof(s)) == -1 && s[0] == '\0', "8 bytes into 8 refused");
	T_OK(ipc_rd_end(&r) == -1, "refused string poisons the cursor");
	ipc_rd_init(&r, &f);
	T_OK(ipc_get_str(&r, s, 0) == -1, "zero-size destination refused");
	ipc_rd_init(&r, &f);
	dup = ipc_get_strdup(&r, 7);
	T_OK(dup != NULL && strcmp(dup, "1234567") == 0, "strdup at its cap accepted");
	free(dup);
	T_OK(ipc_get_strdup(&r, 7) == NULL, "strdup over its cap refused");
	ipc_rd_init(&r, &f);
	T_OK(ipc_get_blob(&r, &bp, &bn, 6) == -1, "blob over its cap refused");
	ipc_wr_free(&w);
}

/* Is fd open? */
static int
fd_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

/* Send raw bytes with several descriptors attached. */
static int
send_fds(int sock, const uint8_t *msg, size_t len, const int *fds, int nfd)
{
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(8 * sizeof(int))];
	} cm;
	struct msghdr mh;
	struct iovec iov;
	struct cmsghdr *c;

	memset(&mh, 0, sizeof(mh));
	memset(&cm, 0, sizeof(cm));
	iov.iov_base = (void *)msg;
	iov.iov_len = len;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cm.buf;
	mh.msg_controllen = CMSG_SPACE((size_t)nfd * sizeof(int));
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN((size_t)nfd * sizeof(int));
	memcpy(CMSG_DATA(c), fds, (size_t)nfd * sizeof(int));
	return sendmsg(sock, &mh, 0) == (ssize_t)len ? 0 : -1;
}

/* After the receiver closed its copies, a pipe with no writer reads EOF. */
static int
pipe_at_eof(int rfd)
{
	char c;

	return read(rfd, &c, 1) == 0;
}

static void
test_sockets(void)
{
	struct ipc_wr w;
	struct ipc_frame f;
	const char *why = NULL;
	const uint8_t *msg;
	size_t len;
	int sv[2], p1[2], p2[2], fds[6], i, r;
	char c = 0;

	T_OK(ipc_socketpair(sv) == 0, "socketpair");
	T_OK((fcntl(sv[0], F_GETFD) & FD_CLOEXEC) && (fcntl(sv[1], F_GETFD) & FD_CLOEXEC),
	    "socketpair is close-on-exec");

	/* A plain message. */
	ipc_wr_init(&w, 18, 5);
	ipc_put_u64(&w, 1234);
	T_OK(ipc_send(sv[0], &w, -1) == 0, "send without fd");
	ipc_wr_free(&w);
	r = ipc_recv(sv[1], rbuf, &f, &why);
	T_OK(r == 1 && f.hdr.type == 18 && f.hdr.reqid == 5 && f.fd == -1 && f.len == 8,
	    "recv without fd");

	/* One descriptor travels and works. */
	T_OK(pipe(p1) == 0 && pipe(p2) == 0, "pipes");
	fcntl(p1[0], F_SETFL, O_NONBLOCK);
	fcntl(p2[0], F_SETFL, O_NONBLOCK);
	ipc_wr_init(&w, 1, 0);
	ipc_put_u32(&w, 42);
	T_OK(ipc_send(sv[0], &w, p1[1]) == 0, "send with fd");
	ipc_wr_free(&w);
	r = ipc_recv(sv[1], rbuf, &f, &why);
	T_OK(r == 1 && f.fd >= 0 && f.fd != p1[1], "fd arrives as a new descriptor");
	T_OK(r == 1 && (fcntl(f.fd, F_GETFD) & FD_CLOEXEC), "received fd is close-on-exec");
	T_OK(write(f.fd, "x", 1) == 1 && read(p1[0], &c, 1) == 1 && c == 'x', "received fd is the pipe");
	close(f.fd);

	/* A second descriptor is closed by the receiver. */
	ipc_wr_init(&w, 1, 0);
	msg = ipc_wr_finish(&w, &len);
	fds[0] = p1[1];
	fds[1] = p2[1];
	T_OK(send_fds(sv[0], msg, len, fds, 2) == 0, "send two fds");
	close(p1[1]);
	close(p2[1]);
	r = ipc_recv(sv[1], rbuf, &f, &why);
	T_OK(r == 1 && f.fd >= 0, "first of two fds kept");
	T_OK(pipe_at_eof(p2[0]), "second fd closed by ipc_recv");
	T_OK(!pipe_at_eof(p1[0]) && errno == EAGAIN, "first fd still open");
	close(f.fd);
	T_OK(pipe_at_eof(p1[0]), "first fd closed by its owner");
	close(p1[0]);
	close(p2[0]);

	/* Too many descriptors: control data truncated, message refused,
	 * every descriptor closed. */
	for (i = 0; i < 6; i += 2) {
		int p[2];

		if (pipe(p) == -1)
			break;
		fds[i] = p[1];
		fds[i + 1] = p[0];
	}
	T_OK(send_fds(sv[0], msg, len, fds, 6) == 0, "send six fds");
	for (i = 0; i < 6; i += 2)
		close(fds[i]);
	why = NULL;
	r = ipc_recv(sv[1], rbuf, &f, &why);
	T_OK(r == -1 && errno == EPROTO && why != NULL && strstr(why, "descriptors") != NULL,
	    "truncated control data refused (%s)", why ? why : "");
	for (i = 0; i < 6; i += 2) {
		fcntl(fds[i + 1], F_SETFL, O_NONBLOCK);
		T_OK(pipe_at_eof(fds[i + 1]), "fd %d of a refused message closed", i);
		close(fds[i + 1]);
	}
	ipc_wr_free(&w);

	/* A malformed frame over the socket, with an fd: EPROTO, fd closed. */
	{
		uint8_t bad[IPC_HDR_LEN + 4];
		struct ipc_hdr h = { 16, 8, 0, IPC_VERSION };	/* says 8, carries 4 */

		memset(bad, 0, sizeof(bad));
		memcpy(bad, &h, sizeof(h));
		T_OK(pipe(p1) == 0, "pipe for bad frame");
		T_OK(ipc_send_raw(sv[0], bad, sizeof(bad), p1[1]) == 0, "send bad frame");
		close(p1[1]);
		why = NULL;
		r = ipc_recv(sv[1], rbuf, &f, &why);
		T_OK(r == -1 && errno == EPROTO && why != NULL, "bad frame refused (%s)", why ? why : "");
		T_OK(pipe_at_eof(p1[0]), "fd of a bad frame closed");
		close(p1[0]);
	}

	/* A datagram larger than IPC_MAX_MSG is cut by the kernel: refused. */
	{
		size_t big = IPC_MAX_MSG + 16;
		uint8_t *m = calloc(1, big);
		struct ipc_hdr h = { 17, (uint32_t)(big - IPC_HDR_LEN), 0, IPC_VERSION };
		int sz = (int)big * 2;

		memcpy(m, &h, sizeof(h));
		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		T_OK(ipc_send_raw(sv[0], m, big, -1) == 0, "send oversized datagram");
		why = NULL;
		r = ipc_recv(sv[1], rbuf, &f, &why);
		T_OK(r == -1 && errno == EPROTO && why != NULL, "oversized datagram refused (%s)", why ? why : "");
		free(m);
	}

	/* End of file. */
	close(sv[0]);
	T_OK(ipc_recv(sv[1], rbuf, &f, &why) == 0, "peer closed: recv returns 0");
	close(sv[1]);
	T_OK(!fd_open(sv[1]), "socket closed");
}

/*
 * A blob message built in place decodes exactly like one built with
 * ipc_put_blob, at every size up to the largest that fits; one byte more
 * is refused.
 */
static void
test_blob_in_place(void)
{
	static const size_t sizes[] = { 0, 1, 5, IPC_DATA_CHUNK,
	    IPC_MAX_PAYLOAD - 4 };
	static uint8_t buf[IPC_BLOB_HDR_LEN + IPC_MAX_PAYLOAD];
	struct ipc_frame f;
	struct ipc_wr w;
	struct ipc_rd r;
	const uint8_t *msg, *bp;
	const char *why = NULL;
	size_t i, j, len, wlen, bn;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		for (j = 0; j < sizes[i]; j++)
			buf[IPC_BLOB_HDR_LEN + j] = (uint8_t)(j * 7 + i);
		len = ipc_blob_finish(buf, 17, 99, sizes[i]);
		T_OK(len == IPC_BLOB_HDR_LEN + sizes[i], "in place %zu: length", sizes[i]);
		ipc_wr_init(&w, 17, 99);
		T_OK(ipc_put_blob(&w, buf + IPC_BLOB_HDR_LEN, sizes[i]) == 0 &&
		    (msg = ipc_wr_finish(&w, &wlen)) != NULL && wlen == len &&
		    memcmp(msg, buf, len) == 0,
		    "in place %zu: same bytes as ipc_put_blob", sizes[i]);
		ipc_wr_free(&w);
		T_OK(ipc_frame_decode(buf, len, &f, &why) == 0 && f.hdr.type == 17 &&
		    f.hdr.reqid == 99, "in place %zu: decodes", sizes[i]);
		ipc_rd_init(&r, &f);
		T_OK(ipc_get_blob(&r, &bp, &bn, IPC_MAX_PAYLOAD) == 0 &&
		    bn == sizes[i] && ipc_rd_end(&r) == 0 &&
		    (bn == 0 || memcmp(bp, buf + IPC_BLOB_HDR_LEN, bn) == 0),
		    "in place %zu: the blob comes back", sizes[i]);
	}
	T_OK(ipc_blob_finish(buf, 17, 99, IPC_MAX_PAYLOAD - 3) == 0,
	    "in place: one byte too many refused");
	T_OK(ipc_blob_finish(buf, 17, 99, (size_t)-1) == 0,
	    "in place: a huge length refused");
}

int
main(void)
{
	test_roundtrip();
	test_blob_in_place();
	test_bad_frames();
	test_writer_caps();
	test_cursor();
	test_sockets();
	return t_done();
}
