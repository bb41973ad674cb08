/* The plugin's metadata store handles: one per serving thread, opened
 * when first needed (so that the plugin starts, and answers Probe, while
 * the store is down) and kept. */
#include <stdio.h>

#include "csi.h"
#include "log.h"

static __thread struct meta *thread_meta;

struct meta *csi_meta(struct csi_plugin *p, struct csi_reply *r)
{
	char err[200];
	int ret;

	if (thread_meta)
		return thread_meta;
	ret = meta_open(p->meta_url, &thread_meta, err, sizeof err);
	if (ret < 0) {
		thread_meta = NULL;
		csi_fail(r, GRPC_STATUS_UNAVAILABLE,
			 "metadata store unreachable: %s", err);
		log_warn("csi: cannot open the metadata store: %s", err);
		return NULL;
	}
	return thread_meta;
}

void csi_meta_reset(struct csi_plugin *p)
{
	meta_close(thread_meta);
	thread_meta = NULL;
}
