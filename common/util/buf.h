/*
 * buf.h: a growable byte buffer with a hard cap.
 *
 * Every append checks the cap first and fails with -1 (errno EMSGSIZE)
 * rather than growing past it, so a peer can never make a buffer larger
 * than the limit its owner chose.  The data is always followed by a NUL
 * byte that is not counted in len, so text can be used as a C string.
 */
#ifndef MOAT_BUF_H
#define MOAT_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t	*data;
	size_t	 len;
	size_t	 alloc;
	size_t	 cap;	/* maximum len */
};

void	 buf_init(struct buf *b, size_t cap);
void	 buf_free(struct buf *b);
void	 buf_reset(struct buf *b);
/* Wipe the contents (secrets) before freeing. */
void	 buf_clear_free(struct buf *b);
int	 buf_append(struct buf *b, const void *p, size_t n);
int	 buf_append_str(struct buf *b, const char *s);
int	 buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Remove the first n bytes. */
void	 buf_consume(struct buf *b, size_t n);
size_t	 buf_room(const struct buf *b);

#endif
