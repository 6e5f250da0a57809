/* batch: owning storage for one batch of deliveries, and their decoding. */
#include "batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "pack.h"

static struct payq_wmsg *add_one(struct payq_wbatch *b, const struct payq_wdelivery *d,
                                 const char *routing_key, size_t rk_len, const void *body,
                                 size_t len)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 256;
        b->msgs = payq_xreallocarray(b->msgs, b->cap, sizeof *b->msgs);
    }
    struct payq_wmsg *m = &b->msgs[b->n++];
    memset(m, 0, sizeof *m);
    m->delivery_tag = d->tag;
    m->redelivered = d->redelivered;
    m->delivery_count = d->delivery_count;
    m->timestamp_s = d->timestamp_s;
    m->published_ms = d->published_ms ? d->published_ms : d->timestamp_s * 1000;
    if (rk_len >= sizeof m->routing_key)
        rk_len = sizeof m->routing_key - 1;
    if (rk_len) /* librabbitmq hands out NULL for empty byte strings */
        memcpy(m->routing_key, routing_key, rk_len);
    m->routing_key[rk_len] = '\0';
    size_t id_len = d->message_id ? d->message_id_len : 0;
    if (id_len > WMSG_MESSAGE_ID_MAX)
        id_len = WMSG_MESSAGE_ID_MAX;
    for (size_t i = 0; i < id_len; i++) {
        unsigned char c = ((const unsigned char *)d->message_id)[i];
        m->message_id[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    m->message_id[id_len] = '\0';
    m->body = payq_xmalloc(len);
    if (len)
        memcpy(m->body, body, len);
    m->body_len = len;
    m->kind = WMSG_INVALID;
    return m;
}

static bool is_pack(const char *rk, size_t len)
{
    return rk && len == strlen(PAYQ_PACK_ROUTING_KEY) &&
           memcmp(rk, PAYQ_PACK_ROUTING_KEY, len) == 0;
}

size_t payq_wbatch_add(struct payq_wbatch *b, const struct payq_wdelivery *d,
                       const char *routing_key, size_t rk_len, const void *body, size_t len)
{
    struct payq_msg_error err;
    if (!is_pack(routing_key, rk_len) || payq_pack_check(body, len, &err) == 0) {
        add_one(b, d, routing_key, rk_len, body, len);
        return 1;
    }
    static const char rk_transfer[] = "transfer";
    struct payq_pack_iter it = payq_pack_iter(body, len);
    const char *line;
    size_t n, added = 0;
    while (payq_pack_next(&it, &line, &n)) {
        add_one(b, d, rk_transfer, sizeof rk_transfer - 1, line, n);
        added++;
    }
    return added;
}

/* A transfer without business_date is booked on the UTC date of its AMQP
 * timestamp; the reconciler applies the same rule to the audit stream. */
static void effective_date(struct payq_wmsg *m)
{
    if (m->u.transfer.business_date[0]) {
        memcpy(m->business_date, m->u.transfer.business_date, sizeof m->business_date);
        return;
    }
    time_t t = (time_t)m->timestamp_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(m->business_date, sizeof m->business_date, "%Y-%m-%d", &tm);
}

static void decode_one(struct payq_wmsg *m)
{
    enum payq_msg_kind kind;
    memset(&m->err, 0, sizeof m->err);
    if (payq_msg_kind_from_routing_key(m->routing_key, strlen(m->routing_key), &kind) != 0 ||
        kind == PAYQ_MSG_BATCH) {
        m->kind = WMSG_INVALID;
        strcpy(m->err.field, "");
        snprintf(m->err.reason, sizeof m->err.reason, "unexpected routing key \"%.32s\"",
                 m->routing_key);
    } else if (kind == PAYQ_MSG_PACK) {
        /* Only a badly framed pack is still whole here: say why. */
        (void)payq_pack_check(m->body, m->body_len, &m->err);
        m->kind = WMSG_INVALID;
    } else if (kind == PAYQ_MSG_TRANSFER) {
        if (payq_msg_decode_transfer(m->body, m->body_len, &m->u.transfer, &m->err) == 0) {
            m->kind = WMSG_TRANSFER;
            payq_transfer_hash(&m->u.transfer, m->hash);
            effective_date(m);
            return;
        }
        m->kind = WMSG_INVALID;
    } else {
        if (payq_msg_decode_account(m->body, m->body_len, &m->u.account, &m->err) == 0) {
            m->kind = WMSG_ACCOUNT;
            return;
        }
        m->kind = WMSG_INVALID;
    }
    payq_sha256(m->body, m->body_len, m->hash);
}

const char *payq_wmsg_dead_id(const struct payq_wmsg *m, char *buf)
{
    if (payq_msg_peek_id(m->body, m->body_len, buf))
        return buf;
    return m->message_id[0] ? m->message_id : NULL;
}

void payq_wbatch_decode(struct payq_wbatch *b)
{
    for (size_t i = 0; i < b->n; i++)
        decode_one(&b->msgs[i]);
}

void payq_wmsg_clear_event(struct payq_wmsg *m)
{
    free(m->event);
    m->event = NULL;
    m->event_len = 0;
    m->event_ms = 0;
}

void payq_wbatch_clear(struct payq_wbatch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        struct payq_wmsg *m = &b->msgs[i];
        if (m->kind == WMSG_TRANSFER)
            payq_transfer_clear(&m->u.transfer);
        payq_wmsg_clear_event(m);
        free(m->body);
    }
    b->n = 0;
    b->backlog = false;
}

void payq_wbatch_free(struct payq_wbatch *b)
{
    payq_wbatch_clear(b);
    free(b->msgs);
    b->msgs = NULL;
    b->cap = 0;
}
