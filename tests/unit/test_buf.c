/*
 * test_buf.c: the capped buffer: the cap holds for every append path,
 * the data stays NUL-terminated, consume moves what is left.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "util/buf.h"
#include "tests/unit/t.h"

static void
test_cap(void)
{
	struct buf b;
	size_t i;

	buf_init(&b, 10);
	T_OK(b.len == 0 && buf_room(&b) == 10, "fresh buffer: empty, room = cap");
	T_OK(buf_append(&b, "0123456789", 10) == 0 && b.len == 10, "append up to the cap");
	T_OK(buf_room(&b) == 0, "no room left");
	errno = 0;
	T_OK(buf_append(&b, "x", 1) == -1 && errno == EMSGSIZE, "one byte over the cap: EMSGSIZE");
	T_OK(b.len == 10 && memcmp(b.data, "0123456789", 10) == 0, "failed append changes nothing");
	T_OK(b.data[10] == '\0', "NUL after the data");
	T_OK(buf_append(&b, "", 0) == 0, "empty append at the cap");
	T_OK(buf_append(&b, "x", (size_t)-1) == -1, "huge length refused without overflow");
	buf_free(&b);
	T_OK(b.data == NULL && b.len == 0, "free resets");

	buf_init(&b, 0);
	T_OK(buf_append(&b, "x", 1) == -1, "cap 0 refuses a byte");
	T_OK(buf_append(&b, "", 0) == 0 && b.data != NULL && b.data[0] == '\0', "cap 0 takes nothing");
	buf_free(&b);

	buf_init(&b, 5000);
	for (i = 0; i < 5000; i++)
		if (buf_append(&b, &"ab"[i % 2], 1) == -1)
			break;
	T_OK(i == 5000 && b.len == 5000, "5000 one-byte appends across reallocations");
	T_OK(b.data[0] == 'a' && b.data[1] == 'b' && b.data[4999] == 'b' && b.data[5000] == '\0',
	    "contents kept across growth");
	T_OK(buf_append(&b, "x", 1) == -1, "cap still holds after growth");
	buf_clear_free(&b);
	T_OK(b.data == NULL && b.len == 0, "clear_free resets");
}

static void
test_printf(void)
{
	struct buf b;

	buf_init(&b, 8);
	T_OK(buf_printf(&b, "%s-%d", "ab", 12) == 0 && b.len == 5 && strcmp((char *)b.data, "ab-12") == 0,
	    "printf appends");
	T_OK(buf_printf(&b, "%d", 123) == 0 && b.len == 8 && strcmp((char *)b.data, "ab-12123") == 0,
	    "printf exactly to the cap");
	T_OK(buf_printf(&b, "%s", "x") == -1 && b.len == 8, "printf one past the cap refused");
	T_OK(buf_printf(&b, "%s", "") == 0 && b.len == 8, "empty printf at the cap");
	buf_reset(&b);
	T_OK(b.len == 0 && b.data[0] == '\0', "reset empties");
	T_OK(buf_printf(&b, "%s", "123456789") == -1 && b.len == 0 && b.data[0] == '\0',
	    "printf longer than the cap leaves the buffer alone");
	T_OK(buf_append_str(&b, "12345678") == 0 && b.len == 8, "append_str to the cap");
	T_OK(buf_append_str(&b, "9") == -1, "append_str past the cap");
	buf_free(&b);
}

static void
test_consume(void)
{
	struct buf b;

	buf_init(&b, 64);
	buf_append_str(&b, "HELO x\r\nMAIL");
	buf_consume(&b, 8);
	T_OK(b.len == 4 && strcmp((char *)b.data, "MAIL") == 0, "consume moves the rest to the front");
	T_OK(buf_room(&b) == 60, "room grows back");
	buf_consume(&b, 0);
	T_OK(b.len == 4 && strcmp((char *)b.data, "MAIL") == 0, "consume 0 changes nothing");
	buf_consume(&b, 4);
	T_OK(b.len == 0 && b.data[0] == '\0', "consume all empties");
	buf_append_str(&b, "abc");
	buf_consume(&b, 100);
	T_OK(b.len == 0 && b.data[0] == '\0', "consume more than len empties");
	buf_free(&b);

	buf_init(&b, 16);
	buf_reset(&b);
	buf_consume(&b, 1);
	T_OK(b.len == 0 && b.data == NULL, "reset and consume on a never-used buffer");
	buf_free(&b);
}

int
main(void)
{
	test_cap();
	test_printf();
	test_consume();
	return t_done();
}
