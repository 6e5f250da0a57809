/* payq-producer: the intake service. Command-line parsing and start-up;
 * each subcommand lives in its own file:
 *   publish FILE        batch files of transfers    producer/publish_file.c
 *   open-accounts FILE  batch files of accounts     producer/publish_file.c
 *   serve               the HTTP API                producer/http_server.c
 *   routes              (hidden) the HTTP route table, for the OpenAPI test
 * Exit codes: 0 success, 1 invalid input or a server that could not start,
 * 2 usage or configuration errors, 3 publishing failed. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "http_routes.h"
#include "http_server.h"
#include "log.h"
#include "message.h"
#include "publish_file.h"
#include "signals.h"

#define EXIT_USAGE 2
#define DEFAULT_CONFIG "config/payq.yaml" /* used when present, as by the other programs */

static const char g_usage[] =
    "usage:\n"
    "  payq-producer publish FILE [--batch-id ID] [--business-date YYYY-MM-DD]\n"
    "                             [--allow-empty] [--quiet|--json] [--config FILE]\n"
    "  payq-producer open-accounts FILE [--allow-empty] [--quiet|--json] [--config FILE]\n"
    "  payq-producer serve [--listen HOST:PORT] [--config FILE]\n"
    "\n"
    "--config defaults to " DEFAULT_CONFIG " when it exists; PAYQ_* variables override it.\n"
    "FILE is JSON Lines, one message per line; - reads standard input. Every line is\n"
    "validated before anything is published; blank lines are errors. One file is one\n"
    "batch of one business day; an id repeated with identical content is published once.\n"
    "An empty FILE is refused (exit 1) unless --allow-empty. A FILE that cannot be read\n"
    "twice (-, a FIFO, <(...)) is first copied to TMPDIR (producer.spool_max_mib).\n"
    "Exit status: 0 all confirmed, 1 invalid input, 2 usage, 3 publishing failed.\n";

struct args {
    const char *cmd;
    const char *file;
    const char *config;
    const char *batch_id;
    const char *business_date;
    const char *listen;
    enum payq_output output;
    bool allow_empty;
};

static int usage_error(const char *fmt, const char *arg)
{
    fputs("payq-producer: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\n", stderr);
    fputs(g_usage, stderr);
    return -1;
}

/* Takes the value of option argv[*i] ("--opt VALUE" or "--opt=VALUE"). */
static int option_value(int argc, char **argv, int *i, const char *name, const char **out)
{
    size_t n = strlen(name);
    if (argv[*i][n] == '=') {
        *out = argv[*i] + n + 1;
        return 0;
    }
    if (*i + 1 >= argc)
        return usage_error("option %s needs a value", name);
    *out = argv[++*i];
    return 0;
}

static bool is_option(const char *arg, const char *name)
{
    size_t n = strlen(name);
    return strncmp(arg, name, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

/* Checks which options fit the subcommand and that values are valid. */
static int check_args(const struct args *a)
{
    bool file_cmd = strcmp(a->cmd, "publish") == 0 || strcmp(a->cmd, "open-accounts") == 0;
    if (!file_cmd && strcmp(a->cmd, "serve") != 0 && strcmp(a->cmd, "routes") != 0)
        return usage_error("unknown command \"%s\"", a->cmd);
    if (file_cmd && !a->file)
        return usage_error("%s needs a FILE (- for standard input)", a->cmd);
    if (!file_cmd && a->file)
        return usage_error("unexpected argument \"%s\"", a->file);
    if (strcmp(a->cmd, "publish") != 0 && (a->batch_id || a->business_date))
        return usage_error("%s takes no --batch-id or --business-date", a->cmd);
    if (!file_cmd && a->allow_empty)
        return usage_error("%s takes no --allow-empty", a->cmd);
    if (!file_cmd && a->output != PAYQ_OUTPUT_HUMAN)
        return usage_error("%s takes no --quiet or --json", a->cmd);
    if (strcmp(a->cmd, "serve") != 0 && a->listen)
        return usage_error("%s takes no --listen", a->cmd);
    if (a->batch_id && !payq_msg_valid_id(a->batch_id, strlen(a->batch_id)))
        return usage_error("invalid --batch-id \"%s\": must be 1-64 of A-Z a-z 0-9 . _ : -",
                           a->batch_id);
    if (a->business_date && !payq_msg_valid_date(a->business_date, strlen(a->business_date)))
        return usage_error("invalid --business-date \"%s\": must be a real YYYY-MM-DD date",
                           a->business_date);
    return 0;
}

static int parse_option(int argc, char **argv, int *i, struct args *a)
{
    const char *arg = argv[*i];
    if (is_option(arg, "--config"))
        return option_value(argc, argv, i, "--config", &a->config);
    if (is_option(arg, "--batch-id"))
        return option_value(argc, argv, i, "--batch-id", &a->batch_id);
    if (is_option(arg, "--business-date"))
        return option_value(argc, argv, i, "--business-date", &a->business_date);
    if (is_option(arg, "--listen"))
        return option_value(argc, argv, i, "--listen", &a->listen);
    if (strcmp(arg, "--allow-empty") == 0) {
        a->allow_empty = true;
        return 0;
    }
    enum payq_output out = PAYQ_OUTPUT_HUMAN;
    if (strcmp(arg, "--quiet") == 0 || strcmp(arg, "-q") == 0)
        out = PAYQ_OUTPUT_QUIET;
    else if (strcmp(arg, "--json") == 0)
        out = PAYQ_OUTPUT_JSON;
    else
        return usage_error("unknown option \"%s\"", arg);
    if (a->output != PAYQ_OUTPUT_HUMAN && a->output != out)
        return usage_error("%s", "--quiet and --json exclude each other");
    a->output = out;
    return 0;
}

static int parse_args(int argc, char **argv, struct args *a)
{
    memset(a, 0, sizeof *a);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (arg[0] == '-' && arg[1] != '\0') {
            if (parse_option(argc, argv, &i, a) != 0)
                return -1;
        } else if (!a->cmd) {
            a->cmd = arg;
        } else if (!a->file) {
            a->file = arg;
        } else {
            return usage_error("unexpected argument \"%s\"", arg);
        }
    }
    if (!a->cmd)
        return usage_error("%s", "no command given");
    return check_args(a);
}

static int load_config(const struct args *a, struct payq_config *cfg)
{
    char err[512];
    const char *path = a->config;
    if (!path && access(DEFAULT_CONFIG, R_OK) == 0)
        path = DEFAULT_CONFIG;
    if (payq_config_load(cfg, path, err, sizeof err) != 0) {
        fprintf(stderr, "payq-producer: %s\n", err);
        return -1;
    }
    enum payq_log_level level = PAYQ_LOG_INFO;
    if (payq_log_level_parse(cfg->log.level, &level) != 0)
        level = PAYQ_LOG_INFO;
    payq_log_init("producer", level);
    return 0;
}

int main(int argc, char **argv)
{
    static struct payq_config cfg; /* large: keep it off the stack */
    struct args a;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(g_usage, stdout);
            return 0;
        }
    }
    if (parse_args(argc, argv, &a) != 0)
        return EXIT_USAGE;
    if (strcmp(a.cmd, "routes") == 0) {
        payq_routes_print(stdout);
        return 0;
    }
    if (load_config(&a, &cfg) != 0)
        return EXIT_USAGE;
    payq_signals_install();
    if (strcmp(a.cmd, "serve") == 0)
        return payq_http_serve(&cfg, a.listen ? a.listen : cfg.producer.listen);
    struct payq_publish_file_opts o = {
        .kind = strcmp(a.cmd, "publish") == 0 ? PAYQ_BATCH_TRANSFERS : PAYQ_BATCH_ACCOUNTS,
        .path = a.file,
        .batch_id = a.batch_id,
        .business_date = a.business_date,
        .output = a.output,
        .allow_empty = a.allow_empty,
    };
    return payq_publish_file(&cfg, &o);
}
