/* The plugin's one metadata store handle, opened when first needed so
 * that the plugin starts (and answers Probe) while the store is down. */
#include <stdio.h>

#include "csi.h"
#include "log.h"

struct meta *csi_meta(struct csi_plugin *p, struct csi_reply *r)
{
	char err[200];
	int ret;

	if (p->meta)
		return p->meta;
	ret = meta_open(p->meta_url, &p->meta, err, sizeof err);
	if (ret < 0) {
		p->meta = NULL;
		csi_fail(r, GRPC_STATUS_UNAVAILABLE,
			 "metadata store unreachable: %s", err);
		log_warn("csi: cannot open the metadata store: %s", err);
		return NULL;
	}
	return p->meta;
}

void csi_meta_reset(struct csi_plugin *p)
{
	meta_close(p->meta);
	p->meta = NULL;
}
