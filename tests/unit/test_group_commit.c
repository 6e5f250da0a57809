/* test_group_commit: shared packs across requests (producer/group_commit.c)
 * against a fake broker sink. Concurrent one-transfer requests share
 * packs; a pack's message_id is its first line's id and its routing key
 * "transfers" ("transfer" with pack_max 1); a request's transfers are never
 * split over packs; a nack (a pack holding a "bad" id) or a lost connection
 * (the fake fails its 3rd pack) fails exactly the requests whose transfers
 * were in that pack, and every other request succeeds. A sink's check (the
 * HTTP replay check) sees all of a pack's requests in one call; a request
 * it refuses gets 1 and none of its transfers reaches the broker, while the
 * other requests of the same pack are published. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <unistd.h>

#include "group_commit.h"

#define MAX_PACKS 4096

/* What the fake broker saw: each pack's routing key, message id, body and outcome. */
struct fake {
    pthread_mutex_t lock;
    int npacks;
    int fail_nth; /* 1-based pack number to fail as a lost connection; 0 = none */
    char rk[MAX_PACKS][16];
    char id[MAX_PACKS][64];
    char *body[MAX_PACKS];
    uint32_t items[MAX_PACKS];
    bool ok[MAX_PACKS];
    int checks;        /* calls of fake_check */
    int idles;         /* calls of fake_idle */
    size_t refused_in; /* requests in the call that refused a "dup-" request */
};

static int fake_publish(void *ctx, const char *rk, const char *id, const void *body, size_t len,
                        uint32_t items, char *err, size_t errlen)
{
    struct fake *f = ctx;
    pthread_mutex_lock(&f->lock);
    int k = f->npacks++;
    assert_true(k < MAX_PACKS);
    snprintf(f->rk[k], sizeof f->rk[k], "%s", rk);
    snprintf(f->id[k], sizeof f->id[k], "%s", id);
    f->body[k] = strndup(body, len);
    f->items[k] = items;
    bool nack = strstr(f->body[k], "\"bad-") != NULL;
    bool lost = f->fail_nth == k + 1;
    f->ok[k] = !nack && !lost;
    pthread_mutex_unlock(&f->lock);
    if (nack)
        snprintf(err, errlen, "the broker refused a message (basic.nack)");
    else if (lost)
        snprintf(err, errlen, "the broker connection was lost");
    return f->ok[k] ? 0 : -1;
}

/* Refuses the requests carrying a "dup-" id, as the replay check refuses
 * an id the ledger holds with another payload. */
static void fake_check(void *ctx, struct payq_gc_req *reqs, size_t n)
{
    struct fake *f = ctx;
    pthread_mutex_lock(&f->lock);
    f->checks++;
    for (size_t k = 0; k < n; k++) {
        for (size_t i = 0; i < reqs[k].n; i++)
            if (strncmp(reqs[k].items[i].id, "dup-", 4) == 0)
                reqs[k].refused = true;
        if (reqs[k].refused)
            f->refused_in = n;
    }
    pthread_mutex_unlock(&f->lock);
}

static void fake_idle(void *ctx)
{
    struct fake *f = ctx;
    pthread_mutex_lock(&f->lock);
    f->idles++;
    pthread_mutex_unlock(&f->lock);
}

static void fake_free(struct fake *f)
{
    for (int k = 0; k < f->npacks; k++)
        free(f->body[k]);
}

/* One client request: n transfers with ids PREFIX-i. */
struct req {
    struct payq_gc *gc;
    char ids[4][32];
    char bodies[4][96];
    struct payq_gc_item items[4];
    size_t n;
    int rc;
    char err[256];
};

static void req_init(struct req *r, struct payq_gc *gc, const char *prefix, int num, size_t n)
{
    memset(r, 0, sizeof *r);
    r->gc = gc;
    r->n = n;
    for (size_t i = 0; i < n; i++) {
        snprintf(r->ids[i], sizeof r->ids[i], "%s-%d-%zu", prefix, num, i);
        snprintf(r->bodies[i], sizeof r->bodies[i], "{\"id\":\"%s\"}", r->ids[i]);
        r->items[i] = (struct payq_gc_item){r->ids[i], r->bodies[i], strlen(r->bodies[i])};
    }
}

/* Every request thread starts submitting at the same moment. */
static pthread_barrier_t g_go;

static void *req_run(void *arg)
{
    struct req *r = arg;
    pthread_barrier_wait(&g_go);
    r->rc = payq_gc_submit(r->gc, r->items, r->n, r, r->err, sizeof r->err);
    return NULL;
}

/* The pack holding a body's line, or -1; checks it is the only one. */
static int pack_of(const struct fake *f, const char *line)
{
    int found = -1;
    for (int k = 0; k < f->npacks; k++)
        if (strstr(f->body[k], line)) {
            assert_int_equal(found, -1);
            found = k;
        }
    return found;
}

static struct payq_gc *start_checked(struct fake *f, int pack_max, int linger_us, int npub,
                                     bool check)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->lock, NULL);
    struct payq_gc_opts o = {.pack_max = pack_max, .linger_us = linger_us, .npublishers = npub};
    for (int i = 0; i < npub; i++)
        o.sinks[i] = (struct payq_gc_sink){fake_publish, check ? fake_check : NULL, f, NULL};
    struct payq_gc *gc = payq_gc_new(&o);
    assert_non_null(gc);
    return gc;
}

static struct payq_gc *start(struct fake *f, int pack_max, int linger_us, int npub)
{
    return start_checked(f, pack_max, linger_us, npub, false);
}

/* Runs nreq concurrent requests; request i has sizes[i % nsizes] items and
 * is "bad" when bad(i). Then checks every request against its pack. */
static void run_and_check(struct fake *f, struct payq_gc *gc, int nreq, const size_t *sizes,
                          int nsizes, int bad_every)
{
    struct req *rs = calloc((size_t)nreq, sizeof *rs);
    pthread_t *th = calloc((size_t)nreq, sizeof *th);
    pthread_barrier_init(&g_go, NULL, (unsigned)nreq + 1);
    for (int i = 0; i < nreq; i++) {
        bool bad = bad_every && i % bad_every == bad_every - 1;
        req_init(&rs[i], gc, bad ? "bad" : "ok", i, sizes[i % nsizes]);
        assert_int_equal(pthread_create(&th[i], NULL, req_run, &rs[i]), 0);
    }
    pthread_barrier_wait(&g_go);
    for (int i = 0; i < nreq; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&g_go);
    int failed = 0;
    for (int i = 0; i < nreq; i++) {
        /* All of a request's transfers in one pack; the request's outcome is that pack's. */
        int k = pack_of(f, rs[i].bodies[0]);
        assert_true(k >= 0);
        for (size_t t = 1; t < rs[i].n; t++)
            assert_int_equal(pack_of(f, rs[i].bodies[t]), k);
        assert_int_equal(rs[i].rc, f->ok[k] ? 0 : -1);
        if (rs[i].rc != 0) {
            failed++;
            assert_true(rs[i].err[0] != '\0');
        }
    }
    /* Every pack: routing key, message_id = its first line's id, items = lines. */
    for (int k = 0; k < f->npacks; k++) {
        uint32_t lines = 1;
        for (const char *p = f->body[k]; *p; p++)
            lines += *p == '\n';
        assert_int_equal(lines, f->items[k]);
        char first[96];
        snprintf(first, sizeof first, "{\"id\":\"%s\"}", f->id[k]);
        assert_memory_equal(f->body[k], first, strlen(first));
    }
    printf("# %d requests in %d packs, %d failed\n", nreq, f->npacks, failed);
    free(rs);
    free(th);
}

/* 64 concurrent one-transfer requests with a 200 ms linger share packs. */
static void test_requests_share_packs(void **state)
{
    (void)state;
    struct fake f;
    struct payq_gc *gc = start(&f, 100, 200000, 2);
    const size_t one[] = {1};
    run_and_check(&f, gc, 64, one, 1, 0);
    assert_true(f.npacks < 64 / 4); /* shared: far fewer packs than requests */
    for (int k = 0; k < f.npacks; k++)
        assert_string_equal(f.rk[k], "transfers");
    payq_gc_free(gc);
    fake_free(&f);
}

/* A nack fails exactly the requests in the refused packs. */
static void test_nack_fails_only_its_pack(void **state)
{
    (void)state;
    struct fake f;
    struct payq_gc *gc = start(&f, 5, 20000, 2);
    const size_t sizes[] = {1, 2, 3, 1};
    run_and_check(&f, gc, 120, sizes, 4, 17);
    int good = 0, bad = 0;
    for (int k = 0; k < f.npacks; k++)
        f.ok[k] ? good++ : bad++;
    assert_true(bad > 0 && good > 0); /* both outcomes happened */
    payq_gc_free(gc);
    fake_free(&f);
}

/* A connection lost under the 3rd pack fails its requests and no others. */
static void test_lost_connection_fails_only_its_pack(void **state)
{
    (void)state;
    struct fake f;
    struct payq_gc *gc = start(&f, 4, 20000, 1);
    f.fail_nth = 3;
    const size_t sizes[] = {1, 2};
    run_and_check(&f, gc, 40, sizes, 2, 0);
    assert_true(f.npacks >= 3);
    for (int k = 0; k < f.npacks; k++)
        assert_int_equal(f.ok[k], k != 2);
    payq_gc_free(gc);
    fake_free(&f);
}

/* pack_max 1: each transfer is a "transfer" message of its own. */
static void test_pack_max_one(void **state)
{
    (void)state;
    struct fake f;
    struct payq_gc *gc = start(&f, 1, 1000, 2);
    const size_t one[] = {1};
    run_and_check(&f, gc, 10, one, 1, 0);
    assert_int_equal(f.npacks, 10);
    for (int k = 0; k < f.npacks; k++)
        assert_string_equal(f.rk[k], "transfer");
    assert_false(payq_gc_fits(gc, 2, 10));
    payq_gc_free(gc);
    fake_free(&f);
}

/* Runs nreq concurrent requests of two transfers; those in dup_mask are
 * "dup" ones, the check refuses them. */
static void run_checked(struct payq_gc *gc, struct req *rs, int nreq, unsigned dup_mask)
{
    pthread_t th[32];
    pthread_barrier_init(&g_go, NULL, (unsigned)nreq + 1);
    for (int i = 0; i < nreq; i++) {
        req_init(&rs[i], gc, dup_mask >> i & 1 ? "dup" : "ok", i, 2);
        assert_int_equal(pthread_create(&th[i], NULL, req_run, &rs[i]), 0);
    }
    pthread_barrier_wait(&g_go);
    for (int i = 0; i < nreq; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&g_go);
}

/* One request of a shared pack conflicts: only it is refused (1, nothing
 * of it published); the pack's other requests are published and confirmed,
 * and the check ran once per pack, not once per request. */
static void test_check_refuses_only_its_request(void **state)
{
    (void)state;
    struct fake f;
    struct payq_gc *gc = start_checked(&f, 100, 200000, 1, true);
    struct req rs[16];
    run_checked(gc, rs, 16, 1u << 5);
    payq_gc_free(gc);
    assert_int_equal(rs[5].rc, 1);
    assert_int_equal(pack_of(&f, rs[5].bodies[0]), -1);
    assert_int_equal(pack_of(&f, rs[5].bodies[1]), -1);
    assert_true(f.refused_in > 1); /* it shared its check with other requests */
    int published = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 5)
            continue;
        assert_int_equal(rs[i].rc, 0);
        int k = pack_of(&f, rs[i].bodies[0]);
        assert_true(k >= 0 && f.ok[k]);
        assert_int_equal(pack_of(&f, rs[i].bodies[1]), k);
        published += 2;
    }
    uint32_t items = 0;
    for (int k = 0; k < f.npacks; k++) {
        items += f.items[k];
        assert_memory_equal(f.body[k], "{\"id\":\"ok-", 10); /* message_id: an ok line */
        assert_memory_equal(f.id[k], "ok-", 3);
    }
    assert_int_equal(items, published);
    assert_true(f.checks < 16 / 4); /* one check per shared pack */
    assert_int_equal(f.checks, f.npacks);
    printf("# 16 requests, %d checks, %d packs\n", f.checks, f.npacks);
    fake_free(&f);
}

/* A pack whose every request is refused publishes nothing. */
static void test_check_refuses_whole_pack(void **state)
{
    (void)state;
    struct fake f;
    struct payq_gc *gc = start_checked(&f, 100, 200000, 1, true);
    struct req rs[3];
    run_checked(gc, rs, 3, 7u);
    payq_gc_free(gc);
    for (int i = 0; i < 3; i++)
        assert_int_equal(rs[i].rc, 1);
    assert_int_equal(f.npacks, 0);
    assert_true(f.checks >= 1);
    fake_free(&f);
}

/* An idle publisher calls its sink's idle on time (its broker connection's
 * heartbeat); a busy one publishes, and all stop when freed. */
static void test_idle_publishers_call_idle(void **state)
{
    (void)state;
    struct fake f;
    memset(&f, 0, sizeof f);
    pthread_mutex_init(&f.lock, NULL);
    struct payq_gc_opts o = {.pack_max = 100, .linger_us = 1000, .npublishers = 2, .idle_ms = 50};
    for (int i = 0; i < 2; i++)
        o.sinks[i] = (struct payq_gc_sink){fake_publish, NULL, &f, fake_idle};
    struct payq_gc *gc = payq_gc_new(&o);
    assert_non_null(gc);
    usleep(330 * 1000);
    struct req r;
    req_init(&r, gc, "ok", 1, 1);
    assert_int_equal(payq_gc_submit(gc, r.items, r.n, &r, r.err, sizeof r.err), 0);
    payq_gc_free(gc);
    assert_int_equal(f.npacks, 1);
    /* two publishers, 330 ms at 50 ms: about 12, fewer on a loaded machine */
    assert_true(f.idles >= 4);
    assert_true(f.idles <= 16);
    fake_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests_share_packs),
        cmocka_unit_test(test_nack_fails_only_its_pack),
        cmocka_unit_test(test_lost_connection_fails_only_its_pack),
        cmocka_unit_test(test_pack_max_one),
        cmocka_unit_test(test_check_refuses_only_its_request),
        cmocka_unit_test(test_check_refuses_whole_pack),
        cmocka_unit_test(test_idle_publishers_call_idle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
