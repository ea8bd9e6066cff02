/*
 * fuzz_frame.h: IPC frames for the fuzz harnesses, without a socket.
 */
#ifndef MOAT_FUZZ_FRAME_H
#define MOAT_FUZZ_FRAME_H

#include <stdint.h>
#include <string.h>

#include "util/ipc.h"

/* A frame over p[0..n) of the given type, as ipc_recv would hand it over. */
static inline void
fuzz_frame(struct ipc_frame *f, uint32_t type, const uint8_t *p, size_t n)
{
	memset(f, 0, sizeof(*f));
	f->hdr.type = type;
	f->hdr.len = (uint32_t)n;
	f->hdr.version = IPC_VERSION;
	f->payload = p;
	f->len = n;
	f->fd = -1;
}

/* A finished ipc_wr as a frame (the bytes stay in w). */
static inline void
fuzz_wr_frame(struct ipc_wr *w, struct ipc_frame *f)
{
	const uint8_t *m;
	const char *why;
	size_t len;

	if ((m = ipc_wr_finish(w, &len)) == NULL ||
	    ipc_frame_decode(m, len, f, &why) == -1)
		__builtin_trap();
	f->fd = -1;
}

#endif
