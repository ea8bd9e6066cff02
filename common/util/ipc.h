/*
 * ipc.h: the one framing used on every channel between moat processes.
 *
 * Channels are AF_UNIX SOCK_SEQPACKET sockets, so one send is one message
 * and message boundaries are kept by the kernel.  A message is
 *
 *   u32 type | u32 payload length | u32 request id | u32 version | payload
 *
 * in host byte order (both ends are on one machine).  The payload is a
 * sequence of typed fields written with ipc_put_* and read back with the
 * cursor functions ipc_get_*, which check every length against what is
 * left and against the caller's own maximum.  A reader must end with
 * ipc_rd_end(), which fails unless the payload was consumed exactly: a
 * message with trailing bytes is as malformed as a short one.
 *
 * One file descriptor may travel with a message (SCM_RIGHTS).  Message
 * types and their payloads are listed in common/ipc_types.h.
 */
#ifndef MOAT_IPC_H
#define MOAT_IPC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/buf.h"

#define IPC_VERSION	3
#define IPC_HDR_LEN	16
#define IPC_MAX_PAYLOAD	(128 * 1024)
#define IPC_MAX_MSG	(IPC_HDR_LEN + IPC_MAX_PAYLOAD)
/* Size of one message-body chunk carried by IPC_S2Q_DATA / IPC_Q2D_CHUNK. */
#define IPC_DATA_CHUNK	(64 * 1024)

struct ipc_hdr {
	uint32_t type;
	uint32_t len;
	uint32_t reqid;
	uint32_t version;
};

/* A received message.  payload points into the receiver's buffer. */
struct ipc_frame {
	struct ipc_hdr	 hdr;
	const uint8_t	*payload;
	size_t		 len;
	int		 fd;	/* passed descriptor, or -1 */
};

/* An outgoing message under construction. */
struct ipc_wr {
	struct buf	 b;	/* header followed by payload */
	uint32_t	 type;
	uint32_t	 reqid;
};

/* A cursor over a received payload. */
struct ipc_rd {
	const uint8_t	*p;
	size_t		 len;
	size_t		 off;
	int		 err;	/* sticky: set by the first failed get */
};

/* Writing. */
void	ipc_wr_init(struct ipc_wr *w, uint32_t type, uint32_t reqid);
void	ipc_wr_free(struct ipc_wr *w);
int	ipc_put_u32(struct ipc_wr *w, uint32_t v);
int	ipc_put_u64(struct ipc_wr *w, uint64_t v);
/* A string: u32 length then the bytes, no NUL; NUL bytes inside are refused. */
int	ipc_put_str(struct ipc_wr *w, const char *s);
int	ipc_put_strn(struct ipc_wr *w, const char *s, size_t n);
/* Opaque bytes: u32 length then the bytes. */
int	ipc_put_blob(struct ipc_wr *w, const void *p, size_t n);
/* Fill in the header; returns the whole message or NULL if it is too large. */
const uint8_t *ipc_wr_finish(struct ipc_wr *w, size_t *lenp);

/*
 * A message whose payload is one blob, built in the caller's buffer with
 * no copy: the blob's n bytes are written at buf + IPC_BLOB_HDR_LEN, and
 * ipc_blob_finish() fills in the header and the blob's length in front
 * of them.  Returns the length of the whole message (for ipc_send_raw),
 * or 0 when n does not fit in one message.  For message content
 * (IPC_S2Q_DATA), where ipc_put_blob's growing buffer would cost a copy
 * and an allocation per chunk.
 */
#define IPC_BLOB_HDR_LEN	(IPC_HDR_LEN + 4)
size_t	ipc_blob_finish(uint8_t *buf, uint32_t type, uint32_t reqid, size_t n);

/* Reading. */
void	ipc_rd_init(struct ipc_rd *r, const struct ipc_frame *f);
uint32_t ipc_get_u32(struct ipc_rd *r);
uint64_t ipc_get_u64(struct ipc_rd *r);
/* Copy a string of at most max bytes (dstsz > max) into dst, NUL-terminated. */
int	ipc_get_str(struct ipc_rd *r, char *dst, size_t dstsz);
/* A string of at most max bytes, returned as a fresh allocation. */
char	*ipc_get_strdup(struct ipc_rd *r, size_t max);
/* Opaque bytes of at most max bytes; *pp points into the frame. */
int	ipc_get_blob(struct ipc_rd *r, const uint8_t **pp, size_t *np, size_t max);
/* 0 when every get succeeded and the payload ended exactly here. */
int	ipc_rd_end(const struct ipc_rd *r);

/*
 * Check a received datagram and fill *f.  Fails (-1, with a reason in
 * *why) when it is shorter than a header, when the header's length does
 * not match the bytes received, when the payload is over IPC_MAX_PAYLOAD,
 * or when the version differs.  It does not judge the type: the receiver
 * checks that against what that peer may send in its current state.
 */
int	ipc_frame_decode(const uint8_t *msg, size_t n, struct ipc_frame *f, const char **why);

/*
 * Send one message, with fd >= 0 passed along.  Blocking sockets block;
 * on a non-blocking socket -1/EAGAIN means nothing was sent.
 */
int	ipc_send(int sock, struct ipc_wr *w, int fd);
int	ipc_send_raw(int sock, const uint8_t *msg, size_t len, int fd);

/*
 * Receive one message into buf (which must hold IPC_MAX_MSG bytes) and
 * decode it into *f.  Returns 1 for a message, 0 for end of file, -1 for
 * an error (errno set; EAGAIN on a non-blocking socket with nothing to
 * read; EPROTO for a malformed message, with *why set).  A passed
 * descriptor is in f->fd and belongs to the caller; descriptors beyond
 * the first are closed.
 */
int	ipc_recv(int sock, uint8_t *buf, struct ipc_frame *f, const char **why);

/* Create a SOCK_SEQPACKET socketpair with close-on-exec set on both ends. */
int	ipc_socketpair(int sv[2]);

#endif
