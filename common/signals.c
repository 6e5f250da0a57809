/* signals: flag-only handlers; the second stop signal exits immediately. */
#include "signals.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t g_stop;

static void on_stop(int sig)
{
    (void)sig;
    if (g_stop) {
        static const char msg[] = "{\"level\":\"warn\",\"event\":\"second_signal\",\"msg\":\"you "
                                  "insist, exiting now\"}\n";
        ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)w;
        _exit(130);
    }
    g_stop = 1;
}

void payq_signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

bool payq_signals_stop_requested(void)
{
    return g_stop != 0;
}

void payq_signals_request_stop(void)
{
    g_stop = 1;
}
