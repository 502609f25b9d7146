/* jobs.c - the worker pool: blocking work the event loop must not do
 * (token checks at an upgrade, intents sent over a WebSocket, session
 * re-checks). A bounded FIFO served by a few threads. */
#include <stdlib.h>

#include "rt.h"
#include "schemas/mmo_util.h"

#define QUEUE_MAX 65536

struct job {
	void (*fn)(void *arg);
	void *arg;
	struct job *next;
};

struct jobs {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *head, **tail;
	size_t n;
	bool stop;
	int nth;
	pthread_t th[];
};

static void *worker(void *arg)
{
	struct jobs *j = arg;

	mmo_thread_name("gw-job");
	pthread_mutex_lock(&j->mu);
	for (;;) {
		struct job *jb;

		while (!j->head && !j->stop)
			pthread_cond_wait(&j->cv, &j->mu);
		if (!j->head)
			break; /* stopping, and nothing left */
		jb = j->head;
		j->head = jb->next;
		if (!j->head)
			j->tail = &j->head;
		j->n--;
		pthread_mutex_unlock(&j->mu);
		jb->fn(jb->arg);
		free(jb);
		pthread_mutex_lock(&j->mu);
	}
	pthread_mutex_unlock(&j->mu);
	return NULL;
}

int jobs_start(gw *g, int nthreads, struct jobs **out)
{
	struct jobs *j = calloc(1, sizeof(*j) + (size_t)nthreads * sizeof(pthread_t));
	pthread_attr_t attr;

	(void)g;
	if (!j)
		return MMO_ENOMEM;
	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->cv, NULL);
	j->tail = &j->head;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 512 * 1024);
	for (; j->nth < nthreads; j->nth++) {
		if (pthread_create(&j->th[j->nth], &attr, worker, j))
			break;
	}
	pthread_attr_destroy(&attr);
	if (!j->nth) {
		jobs_stop(j);
		return MMO_EIO;
	}
	*out = j;
	return MMO_OK;
}

void jobs_stop(struct jobs *j)
{
	if (!j)
		return;
	pthread_mutex_lock(&j->mu);
	j->stop = true;
	pthread_cond_broadcast(&j->cv);
	pthread_mutex_unlock(&j->mu);
	for (int i = 0; i < j->nth; i++)
		pthread_join(j->th[i], NULL);
	pthread_cond_destroy(&j->cv);
	pthread_mutex_destroy(&j->mu);
	free(j);
}

int jobs_run(struct jobs *j, void (*fn)(void *arg), void *arg)
{
	struct job *jb;

	pthread_mutex_lock(&j->mu);
	if (j->stop || j->n >= QUEUE_MAX) {
		pthread_mutex_unlock(&j->mu);
		return MMO_EFULL;
	}
	pthread_mutex_unlock(&j->mu);
	jb = malloc(sizeof(*jb));
	if (!jb)
		return MMO_ENOMEM;
	jb->fn = fn;
	jb->arg = arg;
	jb->next = NULL;
	pthread_mutex_lock(&j->mu);
	*j->tail = jb;
	j->tail = &jb->next;
	j->n++;
	pthread_cond_signal(&j->cv);
	pthread_mutex_unlock(&j->mu);
	return MMO_OK;
}
