/*
 * moatctl_signal.h: `moatctl reload` and `moatctl stop`, which signal
 * moatd (SIGHUP, SIGTERM) rather than talk to the queue-manager.
 */
#ifndef MOAT_MOATCTL_SIGNAL_H
#define MOAT_MOATCTL_SIGNAL_H

/* cmd is "reload" or "stop"; returns the exit status (0 sent, 1 not). */
int	ctl_signal_moatd(const char *cfgpath, const char *cmd);

#endif
