/* payq-reconciler: proves, for one business date, that every transfer
 * published to payq.ingress is in the ledger exactly as published, that
 * the ledger holds nothing else, that batches match their manifests and
 * that the books balance. This file is the command line; run.c does the
 * work. Exit codes: 0 balanced, 1 breaks or in flight, 2 could not run. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "clock.h"
#include "config.h"
#include "log.h"
#include "message.h"
#include "mgmt_http.h"
#include "run.h"
#include "signals.h"

#define DEFAULT_CONFIG "config/payq.yaml"

static void usage(FILE *f)
{
    fputs("usage: payq-reconciler --date YYYY-MM-DD [--format text|json|csv] [--out FILE]\n"
          "                       [--audit-from ISO8601|first] [--config FILE]\n"
          "                       [--metrics-textfile FILE] [--full-invariants] [--help]\n"
          "Reconciles one business date: the payq.audit stream against the ledger.\n"
          "  --date D           the business date (UTC)\n"
          "  --format F         text (default when stdout is a terminal), json (default\n"
          "                     otherwise) or csv (one line per break)\n"
          "  --out FILE         write the report to FILE (atomically) instead of stdout\n"
          "  --audit-from T     read the stream from T (2090-01-01, 2090-01-01T22:00:00Z,\n"
          "                     ...+02:00) or from its first message; default: where the\n"
          "                     date's first message is (payq.audit_index), else 00:00\n"
          "                     UTC of the date minus reconciler.lookback_hours\n"
          "  --config FILE      configuration (default config/payq.yaml if present)\n"
          "  --metrics-textfile FILE  write the result for Prometheus (atomically);\n"
          "                     default reconciler.metrics_textfile\n"
          "  --full-invariants  check every account against all its transfers of every\n"
          "                     date and rebuild the checkpoints (default: checkpoints\n"
          "                     plus what committed since; a disagreement falls back to\n"
          "                     the full check by itself)\n"
          "Environment: PAYQ_AMQP_URL, PAYQ_AMQP_MGMT_URL (one URL or several, comma-\n"
          "separated), PAYQ_PG_READ_CONNINFO,\n"
          "PAYQ_PG_RECON_CONNINFO override the config.\n"
          "Exit: 0 balanced, 1 breaks or transfers in flight, 2 could not run.\n",
          f);
}

static int bad_arg(const char *fmt, const char *val)
{
    fputs("payq-reconciler: ", stderr);
    fprintf(stderr, fmt, val);
    fputc('\n', stderr);
    return -1;
}

/* Seconds east of UTC from "Z", "+HH:MM", "+HHMM" or "+HH"; -1 if bad. */
static int parse_zone(const char *z, long *off)
{
    int hh = 0, mm = 0, n = 0;
    if (strcmp(z, "Z") == 0 || strcmp(z, "z") == 0) {
        *off = 0;
        return 0;
    }
    if ((z[0] != '+' && z[0] != '-') ||
        !(sscanf(z + 1, "%2d:%2d%n", &hh, &mm, &n) == 2 ||
          sscanf(z + 1, "%2d%2d%n", &hh, &mm, &n) == 2 || sscanf(z + 1, "%2d%n", &hh, &n) == 1) ||
        z[1 + n] != '\0' || hh > 23 || mm > 59)
        return -1;
    *off = (z[0] == '-' ? -1 : 1) * (hh * 3600L + mm * 60L);
    return 0;
}

/* A date alone means 00:00 UTC; a time needs its zone, because a
 * reconciliation that depends on the host's TZ is a trap. */
static int parse_time(const char *s, int64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int n = 0;
    if (strlen(s) < 10 || !payq_msg_valid_date(s, 10) ||
        sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &n) != 3)
        return -1;
    const char *rest = s + n;
    if (*rest == 'T' || *rest == ' ') {
        int m = 0;
        if (sscanf(rest + 1, "%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &m) != 2)
            return -1;
        rest += 1 + m;
        if (*rest == ':' && sscanf(rest + 1, "%2d%n", &tm.tm_sec, &m) == 1)
            rest += 1 + m;
        if (*rest == '.') /* fractions of a second: stream offsets have seconds only */
            for (rest++; *rest >= '0' && *rest <= '9'; rest++)
                ;
        long off;
        if (tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60 || parse_zone(rest, &off) != 0)
            return -1;
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        *out = (int64_t)timegm(&tm) - off;
        return 0;
    }
    if (*rest != '\0')
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *out = (int64_t)timegm(&tm);
    return 0;
}

static int parse_format(const char *s, enum payq_report_format *f)
{
    static const char *const names[] = {"text", "json", "csv"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(s, names[i]) == 0) {
            *f = (enum payq_report_format)i;
            return 0;
        }
    }
    return bad_arg("invalid --format \"%s\": must be text, json or csv", s);
}

struct cli {
    const char *date, *format, *from, *config;
    struct payq_recon_opts opts;
};

static int parse_args(struct cli *c, int argc, char **argv)
{
    static const struct option lo[] = {{"date", required_argument, NULL, 'd'},
                                       {"format", required_argument, NULL, 'f'},
                                       {"out", required_argument, NULL, 'o'},
                                       {"audit-from", required_argument, NULL, 'a'},
                                       {"config", required_argument, NULL, 'c'},
                                       {"metrics-textfile", required_argument, NULL, 'm'},
                                       {"full-invariants", no_argument, NULL, 'F'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "d:f:o:a:c:m:h", lo, NULL)) != -1) {
        switch (o) {
        case 'd':
            c->date = optarg;
            break;
        case 'f':
            c->format = optarg;
            break;
        case 'o':
            c->opts.out_path = optarg;
            break;
        case 'a':
            c->from = optarg;
            break;
        case 'c':
            c->config = optarg;
            break;
        case 'm':
            c->opts.metrics_path = optarg;
            break;
        case 'F':
            c->opts.full_invariants = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc)
        return bad_arg("unexpected argument \"%s\"", argv[optind]);
    if (!c->date)
        return bad_arg("%s", "--date is required");
    if (strlen(c->date) != 10 || !payq_msg_valid_date(c->date, 10))
        return bad_arg("invalid --date \"%s\": must be a real date YYYY-MM-DD", c->date);
    memcpy(c->opts.date, c->date, 11);
    c->opts.format =
        isatty(STDOUT_FILENO) && !c->opts.out_path ? PAYQ_REPORT_TEXT : PAYQ_REPORT_JSON;
    if (c->format && parse_format(c->format, &c->opts.format) != 0)
        return -1;
    if (c->from && strcmp(c->from, "first") == 0)
        c->opts.from_first = true;
    else if (c->from && parse_time(c->from, &c->opts.from_s) != 0)
        return bad_arg("invalid --audit-from \"%s\": must be first, YYYY-MM-DD or "
                       "YYYY-MM-DDTHH:MM:SS with Z or +HH:MM",
                       c->from);
    return 0;
}

static int load_config(struct cli *c, struct payq_config *cfg)
{
    char err[512];
    const char *path = c->config ? c->config : DEFAULT_CONFIG;
    if (!c->config && access(path, R_OK) != 0)
        path = NULL; /* the default file is optional; an explicit one is not */
    if (payq_config_load(cfg, path, err, sizeof err) != 0) {
        fprintf(stderr, "payq-reconciler: %s\n", err);
        return -1;
    }
    if (!c->opts.metrics_path && cfg->reconciler.metrics_textfile[0])
        c->opts.metrics_path = cfg->reconciler.metrics_textfile;
    enum payq_log_level lvl;
    if (payq_log_level_parse(cfg->log.level, &lvl) == 0)
        payq_log_set_level(lvl);
    return 0;
}

/* The default window starts lookback_hours before the date: transfers of a
 * date are published from the evening before (batches cut early) onwards. */
static int audit_window(struct cli *c, const struct payq_config *cfg)
{
    int64_t now = payq_clock_wall_ms() / 1000;
    if (c->opts.from_first)
        return 0;
    if (!c->from) {
        /* The stream index says where the date starts; the window below is
         * the fallback when it cannot be read. */
        c->opts.use_index = true;
        if (parse_time(c->opts.date, &c->opts.from_s) != 0)
            return -1;
        c->opts.from_s -= (int64_t)cfg->reconciler.lookback_hours * 3600;
    }
    /* A window that starts after the run would never reach the marker. */
    if (c->opts.from_s > now) {
        if (c->from)
            return bad_arg("--audit-from \"%s\" is in the future", c->from);
        c->opts.from_s = now; /* only used when payq.audit_index cannot be read */
    }
    return 0;
}

int main(int argc, char **argv)
{
    static struct payq_config cfg;
    struct cli c;
    memset(&c, 0, sizeof c);
    payq_log_init("reconciler", PAYQ_LOG_INFO);
    if (parse_args(&c, argc, argv) != 0 || load_config(&c, &cfg) != 0 ||
        audit_window(&c, &cfg) != 0)
        return 2;
    if (payq_mgmt_global_init() != 0) {
        fputs("payq-reconciler: cannot initialise libcurl\n", stderr);
        return 2;
    }
    payq_signals_install();
    return payq_recon_run(&cfg, &c.opts);
}
