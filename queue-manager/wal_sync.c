/*
 * wal_sync.c: an fdatasync of the queue's WAL without stopping the event
 * loop.
 *
 * With synchronous=FULL, SQLite's COMMIT writes the WAL frames and then
 * waits in fdatasync; the queue-manager's loop stood still for that wait
 * (about a millisecond here, tens under load) while sessions, agents and
 * moatctl waited for it.  Now the COMMIT only writes (synchronous=NORMAL)
 * and the same fdatasync is handed to the kernel as an IOCB_CMD_FDSYNC
 * request: the kernel runs it in a worker thread and signals an eventfd
 * when it is done, and the queue-manager answers the sessions of the
 * commits it covers then.  No thread of our own, no signal.
 *
 * The system calls are made directly: glibc has no wrappers for Linux's
 * native AIO, and libaio would be a dependency for four calls.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/aio_abi.h>

#include "util/xmalloc.h"
#include "wal_sync.h"

struct wal_sync {
	aio_context_t	 ctx;
	int		 efd;		/* eventfd: a sync finished */
	int		 busy;
	struct iocb	 cb;
};

static int
sys_io_setup(unsigned int nr, aio_context_t *ctx)
{
	return (int)syscall(SYS_io_setup, nr, ctx);
}

static int
sys_io_destroy(aio_context_t ctx)
{
	return (int)syscall(SYS_io_destroy, ctx);
}

static int
sys_io_submit(aio_context_t ctx, long n, struct iocb **cbs)
{
	return (int)syscall(SYS_io_submit, ctx, n, cbs);
}

static int
sys_io_getevents(aio_context_t ctx, long min, long max, struct io_event *ev,
    struct timespec *ts)
{
	return (int)syscall(SYS_io_getevents, ctx, min, max, ev, ts);
}

struct wal_sync *
wal_sync_new(char *err, size_t errlen)
{
	struct wal_sync *ws = xcalloc(1, sizeof(*ws));

	ws->efd = -1;
	if (sys_io_setup(1, &ws->ctx) == -1) {
		snprintf(err, errlen, "io_setup: %s", strerror(errno));
		ws->ctx = 0;
		goto fail;
	}
	if ((ws->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		goto fail;
	}
	return ws;
fail:
	wal_sync_free(ws);
	return NULL;
}

/* Waits for a sync still in flight: the kernel holds &ws->cb until then. */
void
wal_sync_free(struct wal_sync *ws)
{
	struct io_event ev;

	if (ws == NULL)
		return;
	if (ws->busy)
		while (sys_io_getevents(ws->ctx, 1, 1, &ev, NULL) == -1 && errno == EINTR)
			;
	if (ws->ctx != 0)
		(void)sys_io_destroy(ws->ctx);
	if (ws->efd != -1)
		close(ws->efd);
	free(ws);
}

int
wal_sync_fd(const struct wal_sync *ws)
{
	return ws->efd;
}

int
wal_sync_busy(const struct wal_sync *ws)
{
	return ws->busy;
}

int
wal_sync_start(struct wal_sync *ws, int fd)
{
	struct iocb *cbs[1] = { &ws->cb };

	if (ws->busy) {
		errno = EBUSY;
		return -1;
	}
	memset(&ws->cb, 0, sizeof(ws->cb));
	ws->cb.aio_fildes = (uint32_t)fd;
	ws->cb.aio_lio_opcode = IOCB_CMD_FDSYNC;
	ws->cb.aio_flags = IOCB_FLAG_RESFD;
	ws->cb.aio_resfd = (uint32_t)ws->efd;
	if (sys_io_submit(ws->ctx, 1, cbs) != 1) {
		if (errno == 0)
			errno = EIO;
		return -1;
	}
	ws->busy = 1;
	return 0;
}

int
wal_sync_reap(struct wal_sync *ws, int *result)
{
	struct timespec zero = { 0, 0 };
	struct io_event ev;
	uint64_t n;
	int r;

	if (!ws->busy) {
		errno = EINVAL;
		return -1;
	}
	/* Empty the eventfd first: a completion after this read signals it
	 * again, so none is missed. */
	while (read(ws->efd, &n, sizeof(n)) == -1 && errno == EINTR)
		;
	while ((r = sys_io_getevents(ws->ctx, 0, 1, &ev, &zero)) == -1 && errno == EINTR)
		;
	if (r == -1)
		return -1;
	if (r == 0)
		return 0;
	ws->busy = 0;
	*result = ev.res < 0 ? (int)-ev.res : 0;
	return 1;
}
