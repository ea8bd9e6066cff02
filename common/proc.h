/*
 * proc.h: the processes of moat, as data.
 *
 * One table (proc.c) says for each role which binary runs it, which
 * setting names its user, where it is chrooted and which descriptors it
 * is handed.  moatd spawns from this table; docs/architecture.md
 * describes the same table for people.
 *
 * Every child is exec'd with its descriptors at fixed numbers and all
 * others closed:
 *   0  /dev/null     1  /dev/null     2  moatd's standard error (log)
 *   3  MOAT_FD_CONFIG: a sealed memfd holding the configuration text that
 *      moatd checked, so every process runs with the same configuration
 *      and none needs to open a file for it.
 *   4, 5, 6, 7: per role, below.
 *
 * and with the arguments
 *   <binary> -u UID -g GID [-t CHROOT] [-d] [-n CONFIG-NAME]
 * -u/-g are the ids to switch to (both -1 when moatd runs unprivileged),
 * -t the directory to chroot into, -d turns on debug logging, -n names
 * the configuration file for messages.  A child drops privileges with
 * priv_drop() and installs its seccomp filter before it reads a byte
 * from any peer.
 */
#ifndef MOAT_PROC_H
#define MOAT_PROC_H

#define MOAT_FD_CONFIG		3

#define MOAT_FD_SESSION_CLIENT	4	/* the accepted client socket */
#define MOAT_FD_SESSION_QUEUE	5	/* channel to the queue-manager */
#define MOAT_FD_SESSION_KEYS	6	/* channel to the keyholder; only when
					   smtpd_tls_cert_files is set */
#define MOAT_FD_SESSION_FILTER	7	/* sealed memfd: the session's seccomp
					   program, built once by moatd
					   (util/sandbox.h) */

#define MOAT_FD_QMGR_PARENT	4	/* channel from the listener */
#define MOAT_FD_QMGR_CONTROL	5	/* listening control socket (moatctl) */

#define MOAT_FD_AGENT_QUEUE	4	/* channel to the queue-manager */

#define MOAT_FD_KEYS_PARENT	4	/* keyholder: channel from the listener */

#define MOAT_FD_FIRST_FREE	8

enum proc_role {
	PROC_LISTENER,
	PROC_SESSION,
	PROC_QMGR,
	PROC_RELAY,	/* delivery-agent, transport relay */
	PROC_LOCAL,	/* delivery-agent, transport local (maildir) */
	PROC_KEYS,	/* keyholder: TLS private keys, signs for sessions */
	PROC_NROLES
};

enum proc_chroot {
	CHROOT_NONE,
	CHROOT_EMPTY,	/* <run_directory>/empty: root-owned, mode 0555, empty */
	CHROOT_QUEUE,	/* <run_directory>/queue: the database */
	CHROOT_MAILDIR,	/* <run_directory>/maildir: local mailboxes */
};

struct proc_info {
	enum proc_role	 role;
	const char	*name;		/* for logs and ps */
	const char	*binary;	/* file name under the libexec directory */
	const char	*user_setting;	/* config setting naming the user */
	enum proc_chroot chroot;
	const char	*peers;		/* for docs and logs */
};

const struct proc_info *proc_info(enum proc_role role);

/*
 * The session's build without TLS code, in the same directory as
 * smtpd-session: moatd starts it instead while smtpd_tls_cert_files is
 * empty (smtpd-session/Makefile.am).
 */
#define PROC_SESSION_PLAIN_BINARY	"smtpd-session-plain"

#endif
