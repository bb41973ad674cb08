/*
 * libFuzzer harness for what triplex-csi decodes: the staging records it
 * reads back from its state directory (even first byte), and every
 * Identity and Controller request, decoded by protobuf-c and run through
 * its handler against an SQLite store without nodes (odd first byte; the
 * rest of the byte picks the RPC). Node handlers mount and run tools, so
 * only their records are fuzzed here. Checks: no crash or sanitizer
 * report; a record that decodes is sane and survives re-encoding; a
 * handler answers OK with a message or an error with a reason.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "csi.h"
#include "log.h"
#include "node_state.h"
#include "parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct csi_plugin plugin;
static char dir[64], url[128], db[128];

static void cleanup(void)
{
	csi_meta_reset(&plugin);
	unlink(db);
	rmdir(dir);
}

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/tpx-fuzz-csi-XXXXXX");
	if (!mkdtemp(dir))
		abort();
	snprintf(db, sizeof db, "%s/meta.db", dir);
	snprintf(url, sizeof url, "sqlite:%s", db);
	plugin.mode = CSI_MODE_CONTROLLER;
	plugin.meta_url = url;
	plugin.node_id = "n1";
	plugin.zone = "";
	plugin.state_dir = dir;
	log_threshold = LOG_ERROR;
	atexit(cleanup);
}

static void check_state(const uint8_t *data, size_t size)
{
	struct node_state s, again;
	char *json;

	if (node_state_from_json((const char *)data, size, &s) < 0)
		return;
	if (parse_volume_name(s.volume) || s.staging_path[0] != '/' ||
	    s.block == !!s.fs_type[0])
		abort();
	json = node_state_to_json(&s);
	if (!json || node_state_from_json(json, strlen(json), &again) < 0 ||
	    memcmp(&s, &again, sizeof s))
		abort();
	free(json);
}

static void check_rpc(unsigned pick, const uint8_t *data, size_t size)
{
	const struct csi_rpc *rpc;
	struct csi_reply r = { .code = GRPC_STATUS_OK };
	ProtobufCMessage *req;
	size_t n = 0;

	while (csi_rpc_at(n) && (csi_rpc_at(n)->mode & CSI_MODE_CONTROLLER))
		n++;   /* Identity and Controller come first in the table */
	rpc = csi_rpc_at(pick % n);
	req = protobuf_c_message_unpack(rpc->request, NULL, size, data);
	if (!req)
		return;
	rpc->fn(&plugin, req, &r);
	protobuf_c_message_free_unpacked(req, NULL);
	if ((r.code == GRPC_STATUS_OK) != (r.resp != NULL) ||
	    (r.code != GRPC_STATUS_OK && !r.msg[0]))
		abort();
	free(r.resp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!dir[0])
		setup();
	if (size < 1)
		return 0;
	if (data[0] % 2 == 0)
		check_state(data + 1, size - 1);
	else
		check_rpc(data[0] / 2, data + 1, size - 1);
	return 0;
}
