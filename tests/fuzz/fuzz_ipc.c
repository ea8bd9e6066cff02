/* fuzz-sources: common/util/ipc.c common/mail/addr.c common/util/buf.c common/util/log.c common/util/xmalloc.c */
/*
 * fuzz_ipc.c: an IPC frame from arbitrary bytes, decoded and walked as
 * IPC_S2Q_BEGIN (common/ipc_types.h), the message a subverted session
 * controls entirely, the way the queue-manager reads it.  The input is
 * tried twice: as a whole datagram (the frame checks), and as the payload
 * behind a valid header (so the field walk is reached without a seed).
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ipc_types.h"
#include "mail/addr.h"
#include "util/ipc.h"

#define FUZZ_RCPT_MAX	100000	/* the upper bound of smtpd_recipient_limit */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Read IPC_S2Q_BEGIN; 0 when it is well formed. */
static int
fuzz_ipc_begin(const struct ipc_frame *f)
{
	char helo[MOAT_HELO_MAX + 1], sender[ADDR_MAILBOX_MAX + 1];
	char rcpt[ADDR_MAILBOX_MAX + 1];
	struct mailaddr a;
	struct ipc_rd r;
	uint32_t body, n, i;
	uint64_t declared;

	ipc_rd_init(&r, f);
	ipc_get_str(&r, helo, sizeof(helo));
	ipc_get_str(&r, sender, sizeof(sender));
	body = ipc_get_u32(&r);
	declared = ipc_get_u64(&r);
	n = ipc_get_u32(&r);
	if (r.err || n < 1 || n > FUZZ_RCPT_MAX ||
	    (body != MOAT_BODY_7BIT && body != MOAT_BODY_8BITMIME))
		return -1;
	(void)declared;
	if (sender[0] != '\0' &&
	    addr_parse_mailbox(sender, strlen(sender), &a) != ADDR_OK)
		return -1;
	for (i = 0; i < n; i++) {
		if (ipc_get_str(&r, rcpt, sizeof(rcpt)) == -1)
			return -1;
		if (addr_parse_mailbox(rcpt, strlen(rcpt), &a) != ADDR_OK)
			return -1;
	}
	if (ipc_rd_end(&r) == -1)
		return -1;
	/* Well formed: every byte was accounted for. */
	if (r.off != f->len || r.err)
		abort();
	return 0;
}

/* The input as a whole datagram. */
static void
fuzz_ipc_frame(const uint8_t *data, size_t size)
{
	struct ipc_frame f;
	const char *why = NULL;

	if (ipc_frame_decode(data, size, &f, &why) == -1) {
		if (why == NULL)
			abort();
		return;
	}
	if (f.len != size - IPC_HDR_LEN || f.len > IPC_MAX_PAYLOAD)
		abort();
	(void)fuzz_ipc_begin(&f);
}

/* The input as the payload of a well-formed IPC_S2Q_BEGIN frame. */
static void
fuzz_ipc_payload(const uint8_t *data, size_t size)
{
	struct ipc_hdr h = { IPC_S2Q_BEGIN, (uint32_t)size, 0, IPC_VERSION };
	struct ipc_frame f;
	const char *why = NULL;
	uint8_t *msg;

	if (size > IPC_MAX_PAYLOAD || (msg = malloc(IPC_HDR_LEN + size)) == NULL)
		return;
	memcpy(msg, &h, IPC_HDR_LEN);
	memcpy(msg + IPC_HDR_LEN, data, size);
	if (ipc_frame_decode(msg, IPC_HDR_LEN + size, &f, &why) == -1)
		abort();
	(void)fuzz_ipc_begin(&f);
	free(msg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_ipc_frame(data, size);
	fuzz_ipc_payload(data, size);
	return 0;
}
