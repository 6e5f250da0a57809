/* http_group: the HTTP intake's group commit (producer/group_commit.h) over
 * real broker connections: producer.group_publishers publisher threads,
 * each with its own outbox, taking the transfers of concurrent requests
 * into shared packs after producer.group_linger_us. */
#ifndef PAYQ_HTTP_GROUP_H
#define PAYQ_HTTP_GROUP_H

#include "http.h"

/* Starts the group commit into app->gc when producer.group_publishers > 0
 * (else leaves it NULL: each request publishes its own packs). Returns 0,
 * or -1 when out of memory or a thread could not start (logged). */
int payq_http_group_start(struct payq_http_app *app) __attribute__((warn_unused_result));
/* Publishes what is queued, stops the threads, closes their connections.
 * Call after the HTTP daemon stopped. */
void payq_http_group_stop(struct payq_http_app *app);

#endif
