/* Answers of the handlers: a packed message, or a status and a reason. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csi.h"

void csi_fail(struct csi_reply *r, grpc_status_code code, const char *fmt, ...)
{
	va_list ap;

	r->code = code;
	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof r->msg, fmt, ap);
	va_end(ap);
}

void csi_ok(struct csi_reply *r, const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);

	free(r->resp);
	r->resp = malloc(len ? len : 1);
	if (!r->resp) {
		csi_fail(r, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	r->resp_len = protobuf_c_message_pack(msg, r->resp);
	r->code = GRPC_STATUS_OK;
	r->msg[0] = '\0';
}

/* The control library's errors, as CSI status codes. */
static grpc_status_code errno_status(int err)
{
	switch (err) {
	case -ENOENT:
		return GRPC_STATUS_NOT_FOUND;
	case -EINVAL:
		return GRPC_STATUS_INVALID_ARGUMENT;
	case -ESTALE:
		return GRPC_STATUS_ABORTED;      /* lost a race: retry */
	case -EBUSY:
		return GRPC_STATUS_FAILED_PRECONDITION;
	case -ENOSPC:
		return GRPC_STATUS_RESOURCE_EXHAUSTED;
	case -ERANGE:
		return GRPC_STATUS_OUT_OF_RANGE;
	case -EIO:
	case -ETIMEDOUT:
	case -ECONNREFUSED:
		return GRPC_STATUS_UNAVAILABLE;
	default:
		return GRPC_STATUS_INTERNAL;
	}
}

void csi_fail_errno(struct csi_reply *r, int err, const char *what)
{
	csi_fail(r, errno_status(err), "%s: %s", what, strerror(-err));
}
