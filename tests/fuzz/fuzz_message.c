/* fuzz_message: libFuzzer target for the message codec. The first byte
 * picks the kind (0 transfer, 1 account, 2 batch, modulo 3); the rest goes
 * to the decoder as-is, neither copied nor NUL-terminated, so ASan sees any
 * read past it. Whatever decodes must encode, decode again to an equal
 * value and encode to the same bytes; anything else aborts. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "message.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what, const struct payq_buf *enc)
{
    if (ok)
        return;
    fprintf(stderr, "fuzz_message: %s; encoding: %s\n", what, enc->data ? enc->data : "");
    abort();
}

static bool same_transfer(const struct payq_transfer *a, const struct payq_transfer *b)
{
    return strcmp(a->id, b->id) == 0 && strcmp(a->debit_account, b->debit_account) == 0 &&
           strcmp(a->credit_account, b->credit_account) == 0 && a->amount == b->amount &&
           strcmp(a->currency, b->currency) == 0 && strcmp(a->batch_id, b->batch_id) == 0 &&
           strcmp(a->business_date, b->business_date) == 0 &&
           strcmp(a->reference, b->reference) == 0 &&
           (a->metadata && b->metadata ? strcmp(a->metadata, b->metadata) == 0
                                       : a->metadata == b->metadata);
}

static bool same_manifest(const struct payq_manifest *a, const struct payq_manifest *b)
{
    if (strcmp(a->batch_id, b->batch_id) != 0 || strcmp(a->business_date, b->business_date) != 0 ||
        a->count != b->count || a->ntotals != b->ntotals)
        return false;
    for (size_t i = 0; i < a->ntotals; i++)
        if (strcmp(a->totals[i].currency, b->totals[i].currency) != 0 ||
            a->totals[i].sum != b->totals[i].sum)
            return false;
    return true;
}

static void round_trip_transfer(const uint8_t *body, size_t len)
{
    struct payq_transfer t1, t2;
    struct payq_msg_error err;
    struct payq_buf e1 = PAYQ_BUF_INIT, e2 = PAYQ_BUF_INIT;
    uint8_t h1[32], h2[32];

    if (payq_msg_decode_transfer(body, len, &t1, &err))
        return;
    payq_msg_encode_transfer(&t1, &e1);
    check(payq_msg_decode_transfer(e1.data, e1.len, &t2, &err) == 0, err.reason, &e1);
    payq_msg_encode_transfer(&t2, &e2);
    check(same_transfer(&t1, &t2), "transfer changed in a round trip", &e1);
    check(e1.len == e2.len && memcmp(e1.data, e2.data, e1.len) == 0, "encoding unstable", &e1);
    payq_transfer_hash(&t1, h1);
    payq_transfer_hash(&t2, h2);
    check(memcmp(h1, h2, 32) == 0, "hash unstable", &e1);
    payq_transfer_clear(&t1);
    payq_transfer_clear(&t2);
    payq_buf_free(&e1);
    payq_buf_free(&e2);
}

static void round_trip_account(const uint8_t *body, size_t len)
{
    struct payq_account_msg a1, a2;
    struct payq_msg_error err;
    struct payq_buf e1 = PAYQ_BUF_INIT, e2 = PAYQ_BUF_INIT;

    if (payq_msg_decode_account(body, len, &a1, &err))
        return;
    payq_msg_encode_account(&a1, &e1);
    check(payq_msg_decode_account(e1.data, e1.len, &a2, &err) == 0, err.reason, &e1);
    payq_msg_encode_account(&a2, &e2);
    check(strcmp(a1.id, a2.id) == 0 && strcmp(a1.currency, a2.currency) == 0 &&
              a1.flags == a2.flags,
          "account changed in a round trip", &e1);
    check(e1.len == e2.len && memcmp(e1.data, e2.data, e1.len) == 0, "encoding unstable", &e1);
    payq_buf_free(&e1);
    payq_buf_free(&e2);
}

static void round_trip_manifest(const uint8_t *body, size_t len)
{
    /* static: two manifests are 3 KiB of stack each, and this never recurses */
    static struct payq_manifest m1, m2;
    struct payq_msg_error err;
    struct payq_buf e1 = PAYQ_BUF_INIT, e2 = PAYQ_BUF_INIT;

    if (payq_msg_decode_manifest(body, len, &m1, &err))
        return;
    payq_msg_encode_manifest(&m1, &e1);
    check(payq_msg_decode_manifest(e1.data, e1.len, &m2, &err) == 0, err.reason, &e1);
    payq_msg_encode_manifest(&m2, &e2);
    check(same_manifest(&m1, &m2), "manifest changed in a round trip", &e1);
    check(e1.len == e2.len && memcmp(e1.data, e2.data, e1.len) == 0, "encoding unstable", &e1);
    payq_buf_free(&e1);
    payq_buf_free(&e2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct payq_buf none = PAYQ_BUF_INIT;
    char id[PAYQ_ID_MAX + 1];

    if (size == 0)
        return 0;
    const uint8_t *body = data + 1;
    size_t len = size - 1;
    switch (data[0] % 3) {
    case 0:
        round_trip_transfer(body, len);
        break;
    case 1:
        round_trip_account(body, len);
        break;
    default:
        round_trip_manifest(body, len);
        break;
    }
    if (payq_msg_peek_id(body, len, id))
        check(payq_msg_valid_id(id, strlen(id)), "peek_id returned an invalid id", &none);
    return 0;
}
