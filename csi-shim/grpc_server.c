/*
 * The gRPC side of triplex-csi, on gRPC's core C API: one completion
 * queue, CSI_THREADS threads taking its events. Every method is taken as
 * an unregistered call
 * (grpc_server_request_call) and dispatched by its path. A call goes
 * through three states, each ended by one batch on the queue:
 *
 *   CALL_NEW   a request_call is pending; on completion a new one is
 *              posted and the request message is read (call_recv)
 *   CALL_RECV  the message is in; the handler runs and its answer is sent
 *              with the status (call_answer)
 *   CALL_DONE  sent and closed; the call is freed (call_free)
 *
 * Handlers run on the thread that took the event, so a slow NodeStage
 * (mkfs) does not hold up a Probe. Two calls on one volume at once: the
 * second is ABORTED (volume_busy.c). Racing calls from two plugins are the
 * control library's compare-and-swap's to settle.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "csi.h"
#include "log.h"

enum call_state { CALL_NEW, CALL_RECV, CALL_DONE };

struct call {
	enum call_state state;
	grpc_call *call;
	grpc_call_details details;
	grpc_metadata_array md;
	grpc_byte_buffer *req;
	grpc_byte_buffer *resp;
	grpc_slice status_msg;
	bool have_status_msg;
	int cancelled;
};

struct server {
	struct csi_plugin *p;
	grpc_server *srv;
	grpc_completion_queue *cq;
	atomic_bool stopping;   /* shutdown_and_notify called */
	atomic_bool stopped;    /* its tag came back */
};

static volatile sig_atomic_t stop_signal;
static int shutdown_tag;

static void on_signal(int sig)
{
	stop_signal = sig;
}

static void call_free(struct call *c)
{
	if (c->call)
		grpc_call_unref(c->call);
	grpc_call_details_destroy(&c->details);
	grpc_metadata_array_destroy(&c->md);
	if (c->req)
		grpc_byte_buffer_destroy(c->req);
	if (c->resp)
		grpc_byte_buffer_destroy(c->resp);
	if (c->have_status_msg)
		grpc_slice_unref(c->status_msg);
	free(c);
}

/* Post a request_call for the next incoming call. 0 or -1. */
static int call_new(struct server *s)
{
	struct call *c = calloc(1, sizeof *c);

	if (!c)
		return -1;
	grpc_call_details_init(&c->details);
	grpc_metadata_array_init(&c->md);
	c->state = CALL_NEW;
	if (grpc_server_request_call(s->srv, &c->call, &c->details, &c->md,
				     s->cq, s->cq, c) != GRPC_CALL_OK) {
		call_free(c);
		return -1;
	}
	return 0;
}

static void call_recv(struct call *c)
{
	grpc_op op = { 0 };

	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &c->req;
	c->state = CALL_RECV;
	if (grpc_call_start_batch(c->call, &op, 1, c, NULL) != GRPC_CALL_OK) {
		log_warn("csi: cannot read a request");
		call_free(c);
	}
}

/* The request's bytes, decoded as rpc's message; NULL (r failed) if they
 * do not decode. Free with protobuf_c_message_free_unpacked. */
static ProtobufCMessage *request_decode(struct call *c,
					const struct csi_rpc *rpc,
					struct csi_reply *r)
{
	grpc_byte_buffer_reader rd;
	ProtobufCMessage *msg = NULL;
	grpc_slice all;

	if (!c->req) {
		csi_fail(r, GRPC_STATUS_INVALID_ARGUMENT, "no request message");
		return NULL;
	}
	if (!grpc_byte_buffer_reader_init(&rd, c->req)) {
		csi_fail(r, GRPC_STATUS_INVALID_ARGUMENT, "unreadable request");
		return NULL;
	}
	all = grpc_byte_buffer_reader_readall(&rd);
	grpc_byte_buffer_reader_destroy(&rd);
	msg = protobuf_c_message_unpack(rpc->request, NULL,
					GRPC_SLICE_LENGTH(all),
					GRPC_SLICE_START_PTR(all));
	grpc_slice_unref(all);
	if (!msg)
		csi_fail(r, GRPC_STATUS_INVALID_ARGUMENT,
			 "request does not decode as %s", rpc->request->name);
	return msg;
}

/* The volume a request is about: its volume_id (CreateVolume's: its
 * name), or "". */
static const char *request_volume(const ProtobufCMessage *req)
{
	const ProtobufCMessageDescriptor *d = req->descriptor;
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field_by_name(d, "volume_id");
	const char *id;

	if (!f && d == &csi__v1__create_volume_request__descriptor)
		f = protobuf_c_message_descriptor_get_field_by_name(d, "name");
	if (!f || f->type != PROTOBUF_C_TYPE_STRING ||
	    f->label == PROTOBUF_C_LABEL_REPEATED)
		return "";
	id = *(char *const *)((const char *)req + f->offset);
	return id ? id : "";
}

static void dispatch(struct server *s, struct call *c, struct csi_reply *r)
{
	const char *path = (const char *)GRPC_SLICE_START_PTR(c->details.method);
	size_t len = GRPC_SLICE_LENGTH(c->details.method);
	const struct csi_rpc *rpc = csi_rpc_find(path, len);
	ProtobufCMessage *req;
	const char *vol;

	if (!rpc || !(rpc->mode & s->p->mode)) {
		csi_fail(r, GRPC_STATUS_UNIMPLEMENTED, "%.*s is not served%s",
			 (int)(len > 200 ? 200 : len), path,
			 rpc ? " in this --mode" : "");
		return;
	}
	if (!(req = request_decode(c, rpc, r)))
		return;
	vol = request_volume(req);
	if (csi_volume_claim(vol) < 0) {
		csi_fail(r, GRPC_STATUS_ABORTED, "an operation on volume %.64s "
			 "is in progress", vol);
	} else {
		rpc->fn(s->p, req, r);
		csi_volume_release(vol);
	}
	protobuf_c_message_free_unpacked(req, NULL);
	if (r->code != GRPC_STATUS_OK)
		log_info("csi: %s: %s (status %d)", rpc->path, r->msg, r->code);
	else
		log_debug("csi: %s: ok", rpc->path);
}

/* Run the handler and send its answer, the status and close. */
static void call_answer(struct server *s, struct call *c)
{
	struct csi_reply r = { .code = GRPC_STATUS_OK };
	grpc_op ops[4] = { { 0 } };
	int n = 0;

	dispatch(s, c, &r);
	ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
	if (r.code == GRPC_STATUS_OK) {
		grpc_slice body = grpc_slice_from_copied_buffer(
			(const char *)r.resp, r.resp_len);

		c->resp = grpc_raw_byte_buffer_create(&body, 1);
		grpc_slice_unref(body);
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n++].data.send_message.send_message = c->resp;
	}
	free(r.resp);
	c->status_msg = grpc_slice_from_copied_string(r.msg);
	c->have_status_msg = true;
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = r.code;
	ops[n++].data.send_status_from_server.status_details =
		r.code == GRPC_STATUS_OK ? NULL : &c->status_msg;
	ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[n++].data.recv_close_on_server.cancelled = &c->cancelled;
	c->state = CALL_DONE;
	if (grpc_call_start_batch(c->call, ops, (size_t)n, c, NULL) !=
	    GRPC_CALL_OK) {
		log_warn("csi: cannot answer a call");
		call_free(c);
	}
}

static void on_event(struct server *s, grpc_event ev)
{
	struct call *c = ev.tag;

	if (!ev.success) {
		call_free(c);   /* cancelled, or the server is shutting down */
		return;
	}
	switch (c->state) {
	case CALL_NEW:
		if (!atomic_load(&s->stopping) && call_new(s) < 0)
			log_error("csi: cannot take further calls");
		call_recv(c);
		break;
	case CALL_RECV:
		call_answer(s, c);
		break;
	case CALL_DONE:
		call_free(c);
		break;
	}
}

/* "unix:///csi/csi.sock" or "unix:/csi/csi.sock": the path in it, or
 * NULL. */
static const char *endpoint_path(const char *ep)
{
	const char *path = NULL;

	if (!strncmp(ep, "unix://", 7))
		path = ep + 7;
	else if (!strncmp(ep, "unix:", 5))
		path = ep + 5;
	if (!path || path[0] != '/' ||
	    strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return NULL;
	return path;
}

/* Bind the Unix socket, replacing a stale socket file (a plugin that
 * died); anything else at the path is left alone. 0 or -1. */
static int server_bind(struct server *s)
{
	const char *path = endpoint_path(s->p->endpoint);
	grpc_server_credentials *creds;
	char addr[sizeof(((struct sockaddr_un *)0)->sun_path) + 8];
	struct stat st;
	int port;

	if (!path) {
		log_error("csi: endpoint '%s' is not unix:///absolute/path",
			  s->p->endpoint);
		return -1;
	}
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	snprintf(addr, sizeof addr, "unix:%s", path);
	creds = grpc_insecure_server_credentials_create();
	port = grpc_server_add_http2_port(s->srv, addr, creds);
	grpc_server_credentials_release(creds);
	if (port == 0) {
		log_error("csi: cannot listen on %s", addr);
		return -1;
	}
	log_info("csi: listening on %s", addr);
	return 0;
}

/* The first thread to see the signal shuts the server down. */
static void stop_on_signal(struct server *s)
{
	bool no = false;

	if (!stop_signal || !atomic_compare_exchange_strong(&s->stopping, &no,
							      true))
		return;
	log_info("csi: signal %d, stopping", (int)stop_signal);
	grpc_server_shutdown_and_notify(s->srv, s->cq, &shutdown_tag);
	grpc_server_cancel_all_calls(s->srv);
}

/* One serving thread: until the shutdown's tag came back (to any). */
static void *server_loop(void *arg)
{
	struct server *s = arg;

	while (!atomic_load(&s->stopped)) {
		gpr_timespec t = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
					      gpr_time_from_millis(200,
								   GPR_TIMESPAN));
		grpc_event ev = grpc_completion_queue_next(s->cq, t, NULL);

		stop_on_signal(s);
		if (ev.type == GRPC_QUEUE_TIMEOUT)
			continue;
		if (ev.type != GRPC_OP_COMPLETE)
			break;
		if (ev.tag == &shutdown_tag)
			atomic_store(&s->stopped, true);
		else
			on_event(s, ev);
	}
	csi_meta_reset(s->p);
	return NULL;
}

/* Serve on CSI_THREADS threads (this one and others) until stopped. */
static int server_run(struct server *s)
{
	pthread_t th[CSI_THREADS - 1];
	int n = 0;

	for (; n < CSI_THREADS - 1; n++)
		if (pthread_create(&th[n], NULL, server_loop, s) != 0)
			break;
	if (n < CSI_THREADS - 1)
		log_warn("csi: serving on %d threads, not %d", n + 1, CSI_THREADS);
	server_loop(s);
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	return 0;
}

/* Shut the server down (if the loop did not) and wait for it, then
 * drain and free the queue. */
static void server_stop(struct server *s)
{
	grpc_event ev;

	if (!atomic_exchange(&s->stopping, true))
		grpc_server_shutdown_and_notify(s->srv, s->cq, &shutdown_tag);
	grpc_server_cancel_all_calls(s->srv);
	while (!atomic_load(&s->stopped)) {
		ev = grpc_completion_queue_next(
			s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		if (ev.type != GRPC_OP_COMPLETE)
			break;
		if (ev.tag == &shutdown_tag)
			atomic_store(&s->stopped, true);
		else
			on_event(s, ev);
	}
	csi_meta_reset(s->p);
	grpc_server_destroy(s->srv);
	grpc_completion_queue_shutdown(s->cq);
	do {
		ev = grpc_completion_queue_next(
			s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		if (ev.type == GRPC_OP_COMPLETE && ev.tag != &shutdown_tag)
			call_free(ev.tag);
	} while (ev.type != GRPC_QUEUE_SHUTDOWN);
}

static void signals_install(void)
{
	struct sigaction sa = { 0 };

	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int csi_serve(struct csi_plugin *p)
{
	struct server s = { .p = p };
	int ret = -1;

	signals_install();
	grpc_init();
	s.cq = grpc_completion_queue_create_for_next(NULL);
	s.srv = grpc_server_create(NULL, NULL);
	grpc_server_register_completion_queue(s.srv, s.cq, NULL);
	if (server_bind(&s) == 0) {
		grpc_server_start(s.srv);
		if (call_new(&s) == 0) {
			ret = server_run(&s);
		} else {
			log_error("csi: cannot take calls");
		}
	}
	server_stop(&s);
	grpc_completion_queue_destroy(s.cq);
	grpc_shutdown();
	return ret;
}
