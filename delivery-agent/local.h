/*
 * local.h: the local transport: each recipient of a job into its maildir
 * under run_directory/maildir (the agent's chroot and working directory).
 */
#ifndef MOAT_LOCAL_H
#define MOAT_LOCAL_H

#include "job.h"

struct local_opts {
	const char	*hostname;	/* myhostname, for unique file names */
};

/*
 * Deliver job j.  Returns 0 when every recipient has a result, -1 when
 * the job or the channel to the queue-manager is bad (j->err).
 */
int	local_deliver(struct job *j, const struct local_opts *o);

#endif
