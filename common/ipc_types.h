/*
 * ipc_types.h: every message that crosses a moat channel.
 *
 * Names carry the direction: L2Q = listener to queue-manager, S2Q =
 * smtpd-session to queue-manager, Q2D = queue-manager to delivery-agent,
 * C2Q = moatctl to queue-manager, and so on.  The comment on each type is
 * its payload, field by field, in order (see util/ipc.h for the field
 * encodings).  A receiver accepts only the types its peer may send in the
 * state it is in; anything else disconnects that peer and is logged.
 * Bump IPC_VERSION in util/ipc.h whenever a payload changes.
 *
 * String fields carry no NUL.  Limits the receiver enforces:
 * MOAT_QID_MAX for queue ids, ADDR_MAILBOX_MAX (mail/addr.h) for
 * addresses, MOAT_TEXT_MAX for reply and diagnostic texts.
 */
#ifndef MOAT_IPC_TYPES_H
#define MOAT_IPC_TYPES_H

#define MOAT_QID_MAX	32	/* queue id: 16 upper-case hex digits today */
#define MOAT_TEXT_MAX	1024	/* one reply or diagnostic text */
#define MOAT_HELO_MAX	255
#define MOAT_NEXTHOP_MAX 300
#define MOAT_CTL_ARGS_MAX 1024	/* key/value pairs in one IPC_C2Q_REQUEST */
#define MOAT_CTL_WORD_MAX 32	/* a command or key of IPC_C2Q_REQUEST */

/* Body types, from the MAIL FROM BODY= parameter. */
#define MOAT_BODY_7BIT		0
#define MOAT_BODY_8BITMIME	1

/* DSN (RFC 3461): NOTIFY= of a recipient, a bit set; 0: not given. */
#define MOAT_NOTIFY_NEVER	0x01
#define MOAT_NOTIFY_SUCCESS	0x02
#define MOAT_NOTIFY_FAILURE	0x04
#define MOAT_NOTIFY_DELAY	0x08
/* DSN RET= of a message. */
#define MOAT_RET_NONE		0	/* not given */
#define MOAT_RET_FULL		1
#define MOAT_RET_HDRS		2
#define MOAT_ENVID_MAX		100	/* ENVID xtext-decoded (RFC 3461 4.4) */
#define MOAT_ORCPT_MAX		500	/* ORCPT "type;address", decoded */

/* IPC_D2Q_RESULT flags. */
#define MOAT_RESULT_DSN_PASSED	0x01	/* the next hop took NOTIFY/ORCPT
					   (it announced DSN): it reports
					   success itself, we must not */
#define MOAT_RESULT_FINAL	0x02	/* delivered into a mailbox (local
					   maildir, LMTP): "delivered", not
					   "relayed" */

/* Operations of IPC_S2K_SIGN. */
#define MOAT_KEYOP_RSA_PRIVATE	1	/* RSA private-key operation on a
					   block of the key's size, padding
					   as given (raw or PKCS#1 v1.5) */
#define MOAT_KEYOP_ECDSA_SIGN	2	/* ECDSA signature of a digest,
					   answered DER-encoded */
#define MOAT_KEYID_LEN		32	/* SHA-256 of the DER public key */
#define MOAT_KEYOP_IN_MAX	1024	/* largest input (8192-bit RSA) */

/* Transports a delivery agent serves. */
#define MOAT_TRANSPORT_RELAY	1	/* SMTP client to the next hop */
#define MOAT_TRANSPORT_LOCAL	2	/* maildir under run_directory */

enum ipc_type {
	IPC_NONE = 0,

	/*
	 * listener -> queue-manager, on the queue-manager's MOAT_FD_QMGR_PARENT.
	 */
	/* fd: the queue-manager's end of a new session channel.
	 * u32 session pid, str client address (numeric), u32 client port,
	 * str local address (numeric), u32 local port.  The addresses come
	 * from accept(), so the queue-manager can check relay permission
	 * without believing the session. */
	IPC_L2Q_SESSION = 1,
	/* fd: the queue-manager's end of a delivery-agent channel.
	 * u32 agent pid, u32 transport (MOAT_TRANSPORT_*). */
	IPC_L2Q_AGENT = 2,

	/*
	 * listener -> queue-manager: configuration reload (SIGHUP).
	 */
	/* fd: a sealed memfd holding the new configuration text, already
	 * checked by moatd (the same bytes new children get at fd 3).
	 * Empty payload.  No answer: the queue-manager parses it with
	 * conf_load_fd() and applies what may change at run time
	 * (common/conf_reload.h); if it does not parse, it keeps the old
	 * configuration and logs why. */
	IPC_L2Q_RELOAD = 3,

	/*
	 * smtpd-session -> queue-manager.  A session may only walk
	 * BEGIN -> DATA* -> COMMIT (or ABORT), one message at a time.
	 */
	/* str helo name, str sender ("" for the null sender <>),
	 * u32 body type (MOAT_BODY_*), u64 SIZE declared (0: none),
	 * u32 DSN RET (MOAT_RET_*), str DSN ENVID (decoded, "" none),
	 * u32 recipient count n (1 .. smtpd_recipient_limit),
	 * n x (str recipient mailbox (local@domain), u32 NOTIFY bits
	 * (MOAT_NOTIFY_*, 0 none), str ORCPT ("rfc822;addr" decoded, ""
	 * none)).
	 * Answer: IPC_Q2S_BEGIN_OK or IPC_Q2S_FAIL. */
	IPC_S2Q_BEGIN = 16,
	/* blob: 1 .. IPC_DATA_CHUNK bytes of the message as it will be
	 * stored: CRLF line ends, dot-stuffing undone, the session's own
	 * Received: header first.  No answer. */
	IPC_S2Q_DATA = 17,
	/* u64 total bytes sent in IPC_S2Q_DATA for this message.
	 * Answer, only once the message is durable on disk:
	 * IPC_Q2S_COMMIT_OK, or IPC_Q2S_FAIL. */
	IPC_S2Q_COMMIT = 18,
	/* empty: forget the message in progress (client gave up, size
	 * exceeded, bad data).  No answer. */
	IPC_S2Q_ABORT = 19,

	/*
	 * queue-manager -> smtpd-session.
	 */
	/* str queue id: the id the message will have, for the Received:
	 * header and the final reply. */
	IPC_Q2S_BEGIN_OK = 32,
	/* str queue id: the message and its envelope are on disk. */
	IPC_Q2S_COMMIT_OK = 33,
	/* u32 SMTP reply code (4xx or 5xx), str enhanced status code
	 * ("4.3.0"), str text.  The message in progress, if any, is gone. */
	IPC_Q2S_FAIL = 34,

	/*
	 * queue-manager -> delivery-agent.
	 */
	/* u64 job id, str queue id, str sender ("" for <>), u64 body size,
	 * u32 body type, str next hop (relay: the canonical next hop of
	 * common/mail/nexthop.h, "smtp:[192.0.2.1]:25", "smtp:example.com:25"
	 * (MX lookup), "lmtp:[192.0.2.2]:24", "lmtp:unix:/path"; "" for
	 * local), u32 DSN RET, str DSN ENVID, u32 recipient count n
	 * (1 .. 1000), n x (u32 recipient index, str recipient mailbox,
	 * u32 NOTIFY bits, str ORCPT). */
	IPC_Q2D_JOB = 48,
	/* u64 job id, u32 chunk sequence number, u32 last (1 on the final
	 * chunk), blob data (at most IPC_DATA_CHUNK bytes; empty only for
	 * an empty final chunk).  Answer to IPC_D2Q_FETCH. */
	IPC_Q2D_CHUNK = 49,

	/*
	 * delivery-agent -> queue-manager.
	 */
	/* u64 job id, u32 chunk sequence number wanted (0, 1, 2, ...). */
	IPC_D2Q_FETCH = 64,
	/* u64 job id, u32 recipient index (as in the job), u32 reply code
	 * (2xx delivered, 4xx try again, 5xx permanent; 0 when no server
	 * answered, which counts as 4xx), str enhanced status code (may be
	 * ""), str reply or diagnostic text (one line), str relay
	 * ("host[address]:port", or "maildir"), u32 flags
	 * (MOAT_RESULT_*), str TLS ("TLSv1.3 TLS_AES_256_GCM_SHA384
	 * verified=yes", "" for plain text or local). */
	IPC_D2Q_RESULT = 65,
	/* u64 job id, str cached next hop: every recipient of the job has
	 * had a result and the agent is free for the next job.  A cached
	 * next hop (as in IPC_Q2D_JOB, "" for none) means the agent keeps
	 * an idle connection open to it and will reuse it for a job with
	 * the same next hop; it counts against that next hop's connection
	 * limit until the agent says IPC_D2Q_UNCACHED or takes a job for
	 * another next hop (which closes it first). */
	IPC_D2Q_DONE = 66,

	/*
	 * delivery-agent -> queue-manager: graceful stop (SIGTERM).
	 */
	/* empty: send no further job.  Sent by an idle agent that was asked
	 * to stop; a job that crossed it is still done and answered.  The
	 * queue-manager closes the channel once the agent has no job, and
	 * the agent exits 0 when it sees the channel close. */
	IPC_D2Q_STOP = 67,
	/* empty: the idle connection announced in the last IPC_D2Q_DONE
	 * is closed (idle time over, or the server went away). */
	IPC_D2Q_UNCACHED = 68,

	/*
	 * moatctl -> queue-manager, on the control socket.
	 */
	/* empty.  Answer: IPC_Q2C_ROW per queued message, then IPC_Q2C_END. */
	IPC_C2Q_LIST = 80,
	/* str queue id.  Answer: IPC_Q2C_ROW for the message, one
	 * IPC_Q2C_ROW per recipient, IPC_Q2C_END; or IPC_Q2C_ERROR. */
	IPC_C2Q_SHOW = 81,
	/* str command, u32 argument count n (0 .. MOAT_CTL_ARGS_MAX),
	 * n x (str key, str value).  The commands, their keys and the rows
	 * of their answers are listed in docs/moatctl.md ("Protocol"):
	 *   list, hold, release, delete, retry, bounce: filter keys state,
	 *     from, to, domain, older_than, reason; "id" (repeated) names
	 *     messages; "all" = "1" with a filter; "dry_run" = "1";
	 *   pause, resume: "domain"; stats, shape, audit: none;
	 *   headers, body: "id".
	 * Answer: IPC_Q2C_ROW per row (IPC_Q2C_DATA for headers and body),
	 * then IPC_Q2C_END; or IPC_Q2C_ERROR. */
	IPC_C2Q_REQUEST = 82,

	/*
	 * queue-manager -> moatctl.
	 */
	/* u32 field count n (1 .. 64), n x (str key, str value). */
	IPC_Q2C_ROW = 96,
	/* u32 number of rows sent. */
	IPC_Q2C_END = 97,
	/* str text: why the request failed (not permitted, no such id). */
	IPC_Q2C_ERROR = 98,
	/* blob: 1 .. IPC_DATA_CHUNK bytes of a stored message, in order
	 * (answer to the headers and body commands of IPC_C2Q_REQUEST). */
	IPC_Q2C_DATA = 99,

	/*
	 * listener -> keyholder, on the keyholder's MOAT_FD_KEYS_PARENT.
	 */
	/* fd: the keyholder's end of a new session's channel (the session
	 * has the other end at MOAT_FD_SESSION_KEYS).  u32 session pid. */
	IPC_L2K_SESSION = 112,
	/* fd: a sealed memfd holding the PEM private keys of
	 * smtpd_tls_key_files, concatenated in order, read by moatd at
	 * start and at each reload.  Empty payload.  The keyholder adds
	 * them to the keys it serves (keys of the previous set stay usable
	 * for sessions that started before the reload). */
	IPC_L2K_KEYS = 113,

	/*
	 * smtpd-session -> keyholder: one request at a time, during the
	 * TLS handshake only.
	 */
	/* blob key id (MOAT_KEYID_LEN bytes: SHA-256 of the DER
	 * SubjectPublicKeyInfo of the certificate in use), u32 operation
	 * (MOAT_KEYOP_*), u32 RSA padding (OpenSSL's RSA_NO_PADDING or
	 * RSA_PKCS1_PADDING; 0 for ECDSA), blob input (1 ..
	 * MOAT_KEYOP_IN_MAX bytes).  Answer: IPC_K2S_SIGNATURE or
	 * IPC_K2S_FAIL. */
	IPC_S2K_SIGN = 128,

	/*
	 * keyholder -> smtpd-session.
	 */
	/* blob: the result (RSA: exactly the key's size; ECDSA: DER). */
	IPC_K2S_SIGNATURE = 129,
	/* str text: why not (unknown key, bad input). */
	IPC_K2S_FAIL = 130,
};

/* The type's name for logs ("IPC_S2Q_BEGIN"), or "unknown". */
const char *ipc_type_name(unsigned int type);

#endif
