/* A gathered send queue for stream sockets: see sendq.h. */
#include "sendq.h"

#include <string.h>

void sendq_msg_set(struct sendq_msg *m, const void *p0, size_t l0,
		   const void *p1, size_t l1, const void *p2, size_t l2)
{
	m->next = NULL;
	m->base[0] = p0;
	m->len[0] = l0;
	m->base[1] = p1;
	m->len[1] = l1;
	m->base[2] = p2;
	m->len[2] = l2;
}

void sendq_push(struct sendq *q, struct sendq_msg *m)
{
	m->next = NULL;
	if (q->tail)
		q->tail->next = m;
	else
		q->head = m;
	q->tail = m;
}

static size_t msg_len(const struct sendq_msg *m)
{
	return m->len[0] + m->len[1] + m->len[2];
}

bool sendq_prepare(struct sendq *q)
{
	size_t skip = q->head_sent;
	unsigned n = 0;

	for (struct sendq_msg *m = q->head; m && n + SENDQ_PIECES <= SENDQ_MAX_IOV;
	     m = m->next) {
		for (unsigned i = 0; i < SENDQ_PIECES; i++) {
			if (skip >= m->len[i]) {
				skip -= m->len[i];
				continue;
			}
			q->iov[n].iov_base = (char *)m->base[i] + skip;
			q->iov[n].iov_len = m->len[i] - skip;
			skip = 0;
			n++;
		}
	}
	memset(&q->msg, 0, sizeof q->msg);
	q->msg.msg_iov = q->iov;
	q->msg.msg_iovlen = n;
	return n > 0;
}

void sendq_advance(struct sendq *q, size_t n)
{
	q->head_sent += n;
}

static struct sendq_msg *dequeue(struct sendq *q)
{
	struct sendq_msg *m = q->head;

	q->head = m->next;
	if (!q->head)
		q->tail = NULL;
	m->next = NULL;
	return m;
}

struct sendq_msg *sendq_pop_sent(struct sendq *q)
{
	if (!q->head || q->head_sent < msg_len(q->head))
		return NULL;
	q->head_sent -= msg_len(q->head);
	return dequeue(q);
}

struct sendq_msg *sendq_pop(struct sendq *q)
{
	q->head_sent = 0;
	return q->head ? dequeue(q) : NULL;
}
