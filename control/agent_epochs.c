/*
 * The replica service asks before a replica adopts a higher epoch whether
 * the metadata store has recorded it (repl_service_set_epoch_check): an
 * epoch raise is accepted only to an epoch some attach or takeover wrote,
 * never to one a stranger on the network made up. The answer comes from
 * the epochs of the last poll; one not seen yet asks for a poll (the
 * replica asks again every 10 ms, up to AGENT_EPOCH_WAIT_MS).
 */
#include "agent_int.h"

#include <stdlib.h>

#include "loop.h"

/* At most this often a poll asked for by an unknown epoch. */
#define EPOCH_POLL_MIN_MS 20

void agent_epochs_update(struct agent *cm, const struct cluster_volume *vols,
			 size_t n)
{
	struct agent_epoch *e = n ? malloc(n * sizeof *e) : NULL;

	if (n && !e)
		return;  /* keep the old ones: they are only ever too low */
	for (size_t i = 0; i < n; i++)
		e[i] = (struct agent_epoch){ vols[i].id, vols[i].epoch };
	free(cm->epochs);
	cm->epochs = e;
	cm->nepochs = n;
}

int agent_epoch_check(void *arg, uint64_t volume_id, uint64_t epoch)
{
	struct agent *cm = arg;
	uint64_t now = loop_now_ms();

	for (size_t i = 0; i < cm->nepochs; i++)
		if (cm->epochs[i].id == volume_id && cm->epochs[i].epoch >= epoch)
			return 1;
	if (cm->stopping)
		return -1;
	if (now - cm->epoch_poll_ms >= EPOCH_POLL_MIN_MS) {
		cm->epoch_poll_ms = now;
		agent_poll_now(cm);
	}
	return 0;
}

void agent_epochs_free(struct agent *cm)
{
	free(cm->epochs);
	cm->epochs = NULL;
	cm->nepochs = 0;
}
