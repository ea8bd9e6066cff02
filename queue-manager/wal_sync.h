/*
 * wal_sync.h: an fdatasync of the queue's WAL that runs while the
 * queue-manager's event loop goes on (Linux native AIO, IOCB_CMD_FDSYNC).
 *
 * One sync at a time: wal_sync_start() hands it to the kernel, which runs
 * it in a worker thread of its own and then makes wal_sync_fd() readable;
 * wal_sync_reap() collects the result.  The queue-manager answers the
 * sessions of a commit only after a sync that began after that commit
 * returned (docs/queue.md, "The commit path").
 */
#ifndef MOAT_WAL_SYNC_H
#define MOAT_WAL_SYNC_H

#include <stddef.h>
#include <stdint.h>

struct wal_sync;

/* NULL with a reason in err when the kernel offers no native AIO. */
struct wal_sync *wal_sync_new(char *err, size_t errlen);
void	wal_sync_free(struct wal_sync *ws);
/* The eventfd that becomes readable when a sync has finished. */
int	wal_sync_fd(const struct wal_sync *ws);
/* Is a sync in flight? */
int	wal_sync_busy(const struct wal_sync *ws);
/* Start an fdatasync of fd, which stays open until it is reaped; -1
 * with errno (EBUSY while one is in flight). */
int	wal_sync_start(struct wal_sync *ws, int fd);
/* 1 with *result set (0, or an errno value) when the sync in flight has
 * finished; 0 while it runs; -1 with errno when none was started. */
int	wal_sync_reap(struct wal_sync *ws, int *result);

#endif
