/* The drill's faults (drill.h): kill -9 and restart a node, an iptables
 * partition of its replication port, and store latency or ENOSPC through
 * its POST /admin/fault (triplexd --fault-injection, which dev up gives). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl.h"
#include "drill.h"

static const char *const names[FAULT_N] = {
	[FAULT_KILL] = "kill",
	[FAULT_KILL_ENGINE] = "kill-engine",
	[FAULT_PARTITION] = "partition",
	[FAULT_LATENCY] = "latency",
	[FAULT_DISKFULL] = "diskfull",
};

const char *drill_fault_name(enum drill_fault f)
{
	return names[f];
}

int drill_fault_parse(const char *name)
{
	for (int f = 0; f < FAULT_N; f++)
		if (!strcmp(names[f], name))
			return f;
	return -1;
}

/* --- HTTP, for /admin/fault and /metrics ------------------------------ */

static int http_connect(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { 5, 0 };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The admin token of the cluster (dev up's DIR/admin.token), or "". */
static void admin_token(const struct dev_node *n, char *out, size_t len)
{
	FILE *f = n->admin_token[0] ? fopen(n->admin_token, "re") : NULL;

	out[0] = '\0';
	if (!f)
		return;
	if (!fgets(out, (int)len, f))
		out[0] = '\0';
	fclose(f);
	out[strcspn(out, "\r\n")] = '\0';
}

int drill_http(const struct dev_node *n, const char *method, const char *path,
	       char *out, size_t len)
{
	char req[1024], token[256];
	size_t got = 0;
	ssize_t r;
	int fd = http_connect(n->http_port), status = 0;
	const char *body;

	out[0] = '\0';
	if (fd < 0)
		return 0;
	admin_token(n, token, sizeof token);
	snprintf(req, sizeof req, "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n"
		 "%s%s%sContent-Length: 0\r\n\r\n", method, path,
		 token[0] ? "Authorization: Bearer " : "", token,
		 token[0] ? "\r\n" : "");
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
		close(fd);
		return 0;
	}
	while (got + 1 < len && (r = read(fd, out + got, len - 1 - got)) > 0)
		got += (size_t)r;
	close(fd);
	out[got] = '\0';
	if (sscanf(out, "HTTP/%*s %d", &status) != 1)
		return 0;
	body = strstr(out, "\r\n\r\n");
	if (body)
		memmove(out, body + 4, strlen(body + 4) + 1);
	return status;
}

/* A counter from node n's /metrics; -1 if it cannot be read. */
static double metric(const struct dev_node *n, const char *name)
{
	static char buf[1 << 20];
	size_t nl = strlen(name);

	if (drill_http(n, "GET", "/metrics", buf, sizeof buf) != 200)
		return -1;
	for (char *p = buf; (p = strstr(p, name)); p += nl)
		if ((p == buf || p[-1] == '\n') && p[nl] == ' ')
			return strtod(p + nl + 1, NULL);
	return -1;
}

/* --- processes ---------------------------------------------------------- */

static int kill_node(struct drill *d, const struct dev_node *n, char *ev, size_t len)
{
	pid_t pid = dev_running_pid(n->dir);
	double end = ctl_mono_s() + 10;

	(void)d;
	if (!pid || kill(pid, SIGKILL) < 0) {
		snprintf(ev, len, "%s is not running", n->id);
		return -1;
	}
	while (dev_running_pid(n->dir) && ctl_mono_s() < end)
		ctl_sleep_100ms();
	snprintf(ev, len, "kill -9 %s (pid %d)", n->id, (int)pid);
	return 0;
}

/* --- the partition: iptables rules on loopback ------------------------ */

static int part_ports[DEV_NODES];
static int nparts;
static char part_tag[32];

/* Insert (-I) or delete (-D) the two rules that drop port's traffic. */
static int part_rules(const char *op, int port)
{
	char p[16];
	int r = 0;

	snprintf(p, sizeof p, "%d", port);
	for (int dir = 0; dir < 2; dir++) {
		char *argv[] = { "iptables", "-w", (char *)op, "INPUT", "-i", "lo",
				 "-p", "tcp", dir ? "--sport" : "--dport", p,
				 "-m", "comment", "--comment", part_tag,
				 "-j", "DROP", NULL };

		if (ctl_run(argv, NULL) != 0)
			r = -1;
	}
	return r;
}

void drill_partition_cleanup(void)
{
	while (nparts > 0)
		part_rules("-D", part_ports[--nparts]);
}

static int partition(const struct dev_node *n, char *ev, size_t len)
{
	if (!part_tag[0])
		snprintf(part_tag, sizeof part_tag, "tpx-drill-%d", (int)getpid());
	if (nparts >= DEV_NODES || part_rules("-I", n->repl_port) < 0) {
		part_rules("-D", n->repl_port);
		snprintf(ev, len, "iptables failed (is it installed, are we root?)");
		return -1;
	}
	part_ports[nparts++] = n->repl_port;
	snprintf(ev, len, "iptables drops %s's replication port %d", n->id,
		 n->repl_port);
	return 0;
}

/* --- injected store faults ---------------------------------------------- */

static const char *fault_counter(bool enospc)
{
	return enospc ? "triplex_fault_failed_ops_total" :
			"triplex_fault_delayed_ops_total";
}

/* The node's fault counter when the fault went in: it must grow. */
static double counter_at_inject;

static int store_fault(struct drill *d, const struct dev_node *n, bool enospc,
		       char *ev, size_t len)
{
	char path[128], body[256];
	int st;

	counter_at_inject = metric(n, fault_counter(enospc));
	snprintf(path, sizeof path, "/admin/fault?%s&seconds=%d",
		 enospc ? "error=enospc" : "delay_ms=100", (int)d->hold_s + 30);
	st = drill_http(n, "POST", path, body, sizeof body);
	if (st != 200) {
		snprintf(ev, len, "%s refused the fault (%d: %s); was it started "
			 "with --fault-injection?", n->id, st, body);
		return -1;
	}
	snprintf(ev, len, "%s: %.*s", n->id, (int)strcspn(body, "\n"), body);
	return 0;
}

static int store_heal(const struct dev_node *n, bool enospc, char *ev, size_t len)
{
	double ops = metric(n, fault_counter(enospc)) -
		     (counter_at_inject > 0 ? counter_at_inject : 0);
	char body[256];

	if (drill_http(n, "POST", "/admin/fault?seconds=0", body, sizeof body) != 200) {
		snprintf(ev, len, "%s did not clear the fault", n->id);
		return -1;
	}
	snprintf(ev, len, "%.0f store calls %s on %s", ops < 0 ? 0 : ops,
		 enospc ? "failed with ENOSPC" : "delayed by 100 ms", n->id);
	return ops > 0 ? 0 : -1;  /* none: the fault never landed */
}

int drill_fault_inject(struct drill *d, enum drill_fault f,
		       const struct dev_node *target, char *ev, size_t len)
{
	switch (f) {
	case FAULT_KILL:
	case FAULT_KILL_ENGINE:
		return kill_node(d, target, ev, len);
	case FAULT_PARTITION:
		return partition(target, ev, len);
	case FAULT_LATENCY:
		return store_fault(d, target, false, ev, len);
	case FAULT_DISKFULL:
		return store_fault(d, target, true, ev, len);
	case FAULT_N:
		break;
	}
	return -1;
}

int drill_fault_heal(struct drill *d, enum drill_fault f,
		     const struct dev_node *target, char *ev, size_t len)
{
	switch (f) {
	case FAULT_KILL:
	case FAULT_KILL_ENGINE:
		if (dev_restart_node(d->dir, target->id, true)) {
			snprintf(ev, len, "%s did not start again", target->id);
			return -1;
		}
		snprintf(ev, len, "%s restarted (pid %d)", target->id,
			 (int)dev_running_pid(target->dir));
		return 0;
	case FAULT_PARTITION:
		drill_partition_cleanup();
		snprintf(ev, len, "rules removed");
		return 0;
	case FAULT_LATENCY:
		return store_heal(target, false, ev, len);
	case FAULT_DISKFULL:
		return store_heal(target, true, ev, len);
	case FAULT_N:
		break;
	}
	return -1;
}
