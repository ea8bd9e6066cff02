/*
 * ipc.c: framing, typed payload fields and descriptor passing.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "util/ipc.h"
#include "util/xmalloc.h"

void
ipc_wr_init(struct ipc_wr *w, uint32_t type, uint32_t reqid)
{
	static const uint8_t zero[IPC_HDR_LEN];

	buf_init(&w->b, IPC_MAX_MSG);
	w->type = type;
	w->reqid = reqid;
	(void)buf_append(&w->b, zero, sizeof(zero));
}

void
ipc_wr_free(struct ipc_wr *w)
{
	buf_free(&w->b);
}

int
ipc_put_u32(struct ipc_wr *w, uint32_t v)
{
	return buf_append(&w->b, &v, sizeof(v));
}

int
ipc_put_u64(struct ipc_wr *w, uint64_t v)
{
	return buf_append(&w->b, &v, sizeof(v));
}

int
ipc_put_blob(struct ipc_wr *w, const void *p, size_t n)
{
	if (n > IPC_MAX_PAYLOAD) {
		errno = EMSGSIZE;
		return -1;
	}
	if (ipc_put_u32(w, (uint32_t)n) == -1)
		return -1;
	return buf_append(&w->b, p, n);
}

int
ipc_put_strn(struct ipc_wr *w, const char *s, size_t n)
{
	if (memchr(s, '\0', n) != NULL) {
		errno = EINVAL;
		return -1;
	}
	return ipc_put_blob(w, s, n);
}

int
ipc_put_str(struct ipc_wr *w, const char *s)
{
	return ipc_put_strn(w, s, strlen(s));
}

/* The fixed header in front of a payload of len bytes. */
static void
ipc_hdr_put(uint8_t *buf, uint32_t type, uint32_t reqid, size_t len)
{
	struct ipc_hdr h;

	h.type = type;
	h.len = (uint32_t)len;
	h.reqid = reqid;
	h.version = IPC_VERSION;
	memcpy(buf, &h, sizeof(h));
}

const uint8_t *
ipc_wr_finish(struct ipc_wr *w, size_t *lenp)
{
	if (w->b.len < IPC_HDR_LEN || w->b.len - IPC_HDR_LEN > IPC_MAX_PAYLOAD)
		return NULL;
	ipc_hdr_put(w->b.data, w->type, w->reqid, w->b.len - IPC_HDR_LEN);
	*lenp = w->b.len;
	return w->b.data;
}

size_t
ipc_blob_finish(uint8_t *buf, uint32_t type, uint32_t reqid, size_t n)
{
	uint32_t n32;

	if (n > IPC_MAX_PAYLOAD - 4)
		return 0;
	ipc_hdr_put(buf, type, reqid, n + 4);
	n32 = (uint32_t)n;
	memcpy(buf + IPC_HDR_LEN, &n32, sizeof(n32));
	return IPC_BLOB_HDR_LEN + n;
}

void
ipc_rd_init(struct ipc_rd *r, const struct ipc_frame *f)
{
	r->p = f->payload;
	r->len = f->len;
	r->off = 0;
	r->err = 0;
}

static const uint8_t *
ipc_take(struct ipc_rd *r, size_t n)
{
	const uint8_t *p;

	if (r->err || n > r->len - r->off) {
		r->err = 1;
		return NULL;
	}
	p = r->p + r->off;
	r->off += n;
	return p;
}

uint32_t
ipc_get_u32(struct ipc_rd *r)
{
	const uint8_t *p = ipc_take(r, sizeof(uint32_t));
	uint32_t v = 0;

	if (p != NULL)
		memcpy(&v, p, sizeof(v));
	return v;
}

uint64_t
ipc_get_u64(struct ipc_rd *r)
{
	const uint8_t *p = ipc_take(r, sizeof(uint64_t));
	uint64_t v = 0;

	if (p != NULL)
		memcpy(&v, p, sizeof(v));
	return v;
}

int
ipc_get_blob(struct ipc_rd *r, const uint8_t **pp, size_t *np, size_t max)
{
	uint32_t n = ipc_get_u32(r);
	const uint8_t *p;

	if (r->err)
		return -1;
	if (n > max) {
		r->err = 1;
		return -1;
	}
	if ((p = ipc_take(r, n)) == NULL)
		return -1;
	*pp = p;
	*np = n;
	return 0;
}

int
ipc_get_str(struct ipc_rd *r, char *dst, size_t dstsz)
{
	const uint8_t *p;
	size_t n;

	if (dstsz == 0 || ipc_get_blob(r, &p, &n, dstsz - 1) == -1)
		goto fail;
	if (memchr(p, '\0', n) != NULL) {
		r->err = 1;
		goto fail;
	}
	memcpy(dst, p, n);
	dst[n] = '\0';
	return 0;
fail:
	if (dstsz != 0)
		dst[0] = '\0';
	return -1;
}

char *
ipc_get_strdup(struct ipc_rd *r, size_t max)
{
	const uint8_t *p;
	size_t n;

	if (ipc_get_blob(r, &p, &n, max) == -1)
		return NULL;
	if (memchr(p, '\0', n) != NULL) {
		r->err = 1;
		return NULL;
	}
	return xstrndup((const char *)p, n);
}

int
ipc_rd_end(const struct ipc_rd *r)
{
	return (r->err || r->off != r->len) ? -1 : 0;
}

int
ipc_frame_decode(const uint8_t *msg, size_t n, struct ipc_frame *f, const char **why)
{
	if (n < IPC_HDR_LEN) {
		*why = "message shorter than its header";
		return -1;
	}
	memcpy(&f->hdr, msg, sizeof(f->hdr));
	if (f->hdr.version != IPC_VERSION) {
		*why = "wrong protocol version";
		return -1;
	}
	if (f->hdr.len > IPC_MAX_PAYLOAD) {
		*why = "payload over the size limit";
		return -1;
	}
	if (f->hdr.len != n - IPC_HDR_LEN) {
		*why = "payload length does not match the message";
		return -1;
	}
	f->payload = msg + IPC_HDR_LEN;
	f->len = f->hdr.len;
	return 0;
}

int
ipc_send_raw(int sock, const uint8_t *msg, size_t len, int fd)
{
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct msghdr mh;
	struct iovec iov;
	ssize_t n;

	memset(&mh, 0, sizeof(mh));
	iov.iov_base = (void *)msg;
	iov.iov_len = len;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (fd >= 0) {
		struct cmsghdr *c;

		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.buf;
		mh.msg_controllen = sizeof(cm.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	do {
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	} while (n == -1 && errno == EINTR);
	if (n == -1)
		return -1;
	if ((size_t)n != len) {
		errno = EMSGSIZE;
		return -1;
	}
	return 0;
}

int
ipc_send(int sock, struct ipc_wr *w, int fd)
{
	const uint8_t *msg;
	size_t len;

	if ((msg = ipc_wr_finish(w, &len)) == NULL) {
		errno = EMSGSIZE;
		return -1;
	}
	return ipc_send_raw(sock, msg, len, fd);
}

/* Take the first passed descriptor; close any others a peer slipped in. */
static int
ipc_take_fds(struct msghdr *mh)
{
	struct cmsghdr *c;
	int fd = -1;

	for (c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c)) {
		size_t i, nfd;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < nfd; i++) {
			int one;

			memcpy(&one, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (fd == -1)
				fd = one;
			else
				close(one);
		}
	}
	return fd;
}

int
ipc_recv(int sock, uint8_t *buf, struct ipc_frame *f, const char **why)
{
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} cm;
	struct msghdr mh;
	struct iovec iov;
	ssize_t n;
	int fd;

	memset(&mh, 0, sizeof(mh));
	iov.iov_base = buf;
	iov.iov_len = IPC_MAX_MSG;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cm.buf;
	mh.msg_controllen = sizeof(cm.buf);
	do {
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	} while (n == -1 && errno == EINTR);
	if (n == -1)
		return -1;
	fd = ipc_take_fds(&mh);
	if (n == 0 && fd == -1)
		return 0;
	if (mh.msg_flags & MSG_TRUNC) {
		*why = "message truncated: larger than the maximum";
		goto bad;
	}
	if (mh.msg_flags & MSG_CTRUNC) {
		*why = "control data truncated: too many descriptors";
		goto bad;
	}
	if (ipc_frame_decode(buf, (size_t)n, f, why) == -1)
		goto bad;
	f->fd = fd;
	return 1;
bad:
	if (fd != -1)
		close(fd);
	errno = EPROTO;
	return -1;
}

int
ipc_socketpair(int sv[2])
{
	return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv);
}
