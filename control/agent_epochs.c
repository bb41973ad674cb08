/*
 * The replica service asks before a replica adopts a higher epoch whether
 * the metadata store has recorded it (repl_service_set_epoch_check): an
 * epoch raise is accepted only to an epoch some attach or takeover wrote,
 * never to one a stranger on the network made up. The answer comes from
 * the epochs of the last poll; one not seen yet asks for a poll (the
 * replica asks again every 10 ms, up to AGENT_EPOCH_WAIT_MS). The same
 * records say which node holds the attachment at that epoch: only it may
 * change the replica (repl_service_set_holder_check).
 */
#include "agent_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"

/* At most this often a poll asked for by an unknown epoch. */
#define EPOCH_POLL_MIN_MS 20

void agent_epochs_update(struct agent *cm, const struct cluster_volume *vols,
			 size_t n)
{
	struct agent_epoch *e = n ? malloc(n * sizeof *e) : NULL;

	if (n && !e)
		return;  /* keep the old ones: they are only ever too low */
	for (size_t i = 0; i < n; i++) {
		e[i] = (struct agent_epoch){ vols[i].id, vols[i].epoch, "" };
		snprintf(e[i].attached, sizeof e[i].attached, "%s",
			 vols[i].attached);
	}
	free(cm->epochs);
	cm->epochs = e;
	cm->nepochs = n;
}

static const struct agent_epoch *epoch_of(const struct agent *cm,
					   uint64_t volume_id)
{
	for (size_t i = 0; i < cm->nepochs; i++)
		if (cm->epochs[i].id == volume_id)
			return &cm->epochs[i];
	return NULL;
}

/* Not known from the last poll: ask for one (0), unless stopping. */
static int ask_store(struct agent *cm)
{
	uint64_t now = loop_now_ms();

	if (cm->stopping)
		return -1;
	if (now - cm->epoch_poll_ms >= EPOCH_POLL_MIN_MS) {
		cm->epoch_poll_ms = now;
		agent_poll_now(cm);
	}
	return 0;
}

int agent_epoch_check(void *arg, uint64_t volume_id, uint64_t epoch)
{
	struct agent *cm = arg;
	const struct agent_epoch *e = epoch_of(cm, volume_id);

	if (e && e->epoch >= epoch)
		return 1;
	return ask_store(cm);
}

/* Only the record's epoch has a known holder; an older one was held by
 * an engine the store has replaced (-ESTALE: it is fenced). */
int agent_holder_check(void *arg, uint64_t volume_id, uint64_t epoch,
		       const char *node)
{
	struct agent *cm = arg;
	const struct agent_epoch *e = epoch_of(cm, volume_id);

	if (e && e->epoch == epoch)
		return e->attached[0] && strcmp(e->attached, node) == 0 ? 1 :
									 -EACCES;
	if (e && e->epoch > epoch)
		return -ESTALE;
	return ask_store(cm) < 0 ? -EACCES : 0;
}

void agent_epochs_free(struct agent *cm)
{
	free(cm->epochs);
	cm->epochs = NULL;
	cm->nepochs = 0;
}
