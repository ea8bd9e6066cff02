/*
 * ipc_types.c: names of IPC message types, for logs.
 */
#include "config.h"

#include <stddef.h>

#include "ipc_types.h"

#define N(x) { x, #x }
static const struct {
	unsigned int	 type;
	const char	*name;
} ipc_names[] = {
	N(IPC_L2Q_SESSION), N(IPC_L2Q_AGENT), N(IPC_L2Q_RELOAD),
	N(IPC_S2Q_BEGIN), N(IPC_S2Q_DATA), N(IPC_S2Q_COMMIT), N(IPC_S2Q_ABORT),
	N(IPC_Q2S_BEGIN_OK), N(IPC_Q2S_COMMIT_OK), N(IPC_Q2S_FAIL),
	N(IPC_Q2D_JOB), N(IPC_Q2D_CHUNK),
	N(IPC_D2Q_FETCH), N(IPC_D2Q_RESULT), N(IPC_D2Q_DONE), N(IPC_D2Q_UNCACHED),
	N(IPC_D2Q_STOP),
	N(IPC_C2Q_LIST), N(IPC_C2Q_SHOW), N(IPC_C2Q_REQUEST),
	N(IPC_Q2C_ROW), N(IPC_Q2C_END), N(IPC_Q2C_ERROR), N(IPC_Q2C_DATA),
	N(IPC_L2K_SESSION), N(IPC_L2K_KEYS),
	N(IPC_S2K_SIGN), N(IPC_K2S_SIGNATURE), N(IPC_K2S_FAIL),
};
#undef N

const char *
ipc_type_name(unsigned int type)
{
	size_t i;

	for (i = 0; i < sizeof(ipc_names) / sizeof(ipc_names[0]); i++)
		if (ipc_names[i].type == type)
			return ipc_names[i].name;
	return "unknown";
}
