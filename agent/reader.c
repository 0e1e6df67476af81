#include <config.h>
#include "agent/reader.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct rq {
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
    struct entry **items;
    size_t cap, head, n;
    int done, stop, rc;
    struct dm_err err;
    const struct conn_ops *ops;
    struct conn *conn;
    const struct scope *sc;
};

static int rq_push(const struct entry *e, void *payload)
{
    struct rq *q = payload;
    struct entry *c = entry_clone(e);

    if (c == NULL) {
        dm_err_set(&q->err, DM_ENOMEM, "out of memory copying a source entry");
        return DM_ENOMEM;
    }
    pthread_mutex_lock(&q->mu);
    while (q->n == q->cap && !q->stop) {
        pthread_cond_wait(&q->not_full, &q->mu);
    }
    if (q->stop) {
        pthread_mutex_unlock(&q->mu);
        entry_free(c);
        return READER_STOP;
    }
    q->items[(q->head + q->n) % q->cap] = c;
    q->n++;
    if (q->n == 1) {
        pthread_cond_signal(&q->not_empty); /* the consumer waits only on an empty queue */
    }
    pthread_mutex_unlock(&q->mu);
    return 0;
}

static void *rq_main(void *arg)
{
    struct rq *q = arg;
    struct dm_err e = {0};
    int rc = q->ops->read(q->conn, q->sc, rq_push, q, &e);

    pthread_mutex_lock(&q->mu);
    q->done = 1;
    q->rc = rc;
    if (rc != DM_OK && rc != READER_STOP && q->err.rc == DM_OK) {
        q->err = e;
    }
    pthread_cond_broadcast(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

/* Next entry from the reader, or NULL at the end. Caller frees it. */
static struct entry *rq_pop(struct rq *q)
{
    struct entry *e = NULL;

    pthread_mutex_lock(&q->mu);
    while (q->n == 0 && !q->done) {
        pthread_cond_wait(&q->not_empty, &q->mu);
    }
    if (q->n > 0) {
        e = q->items[q->head];
        q->head = (q->head + 1) % q->cap;
        q->n--;
        if (q->n == q->cap - 1) {
            pthread_cond_signal(&q->not_full); /* the reader waits only on a full queue */
        }
    }
    pthread_mutex_unlock(&q->mu);
    return e;
}

int reader_run(const struct conn_ops *ops, struct conn *conn, const struct scope *sc, size_t cap,
               conn_entry_fn fn, void *payload, struct dm_err *err)
{
    struct rq q;
    pthread_t th;
    struct entry *e;
    int rc = DM_OK;

    memset(&q, 0, sizeof(q));
    q.cap = cap > 0 ? cap : 1;
    q.items = calloc(q.cap, sizeof(*q.items));
    if (q.items == NULL) {
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&q.mu, NULL);
    pthread_cond_init(&q.not_empty, NULL);
    pthread_cond_init(&q.not_full, NULL);
    q.ops = ops;
    q.conn = conn;
    q.sc = sc;
    if (pthread_create(&th, NULL, rq_main, &q) != 0) {
        rc = dm_err_set(err, DM_EINTERNAL, "cannot start the reader thread");
        goto done;
    }
    while ((e = rq_pop(&q)) != NULL) {
        int r = fn(e, payload);
        entry_free(e);
        if (r != 0) {
            rc = r;
            break;
        }
    }
    pthread_mutex_lock(&q.mu);
    q.stop = 1;
    pthread_cond_broadcast(&q.not_full);
    pthread_mutex_unlock(&q.mu);
    pthread_join(th, NULL);
    if (rc == DM_OK && q.rc != DM_OK && q.rc != READER_STOP) {
        *err = q.err;
        rc = q.rc;
    }
done:
    while (q.n > 0) {
        entry_free(q.items[q.head]);
        q.head = (q.head + 1) % q.cap;
        q.n--;
    }
    free(q.items);
    pthread_mutex_destroy(&q.mu);
    pthread_cond_destroy(&q.not_empty);
    pthread_cond_destroy(&q.not_full);
    return rc;
}
