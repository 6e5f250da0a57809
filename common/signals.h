/* signals: graceful shutdown. SIGTERM/SIGINT set a flag the main loops poll
 * (they wait with finite timeouts); a second one exits at once. SIGPIPE is
 * ignored so a dead peer is an error return, not a death. */
#ifndef PAYQ_SIGNALS_H
#define PAYQ_SIGNALS_H

#include <stdbool.h>

void payq_signals_install(void);
/* True once SIGTERM or SIGINT has arrived. */
bool payq_signals_stop_requested(void);
/* For tests and for programs that stop themselves (e.g. a drained run). */
void payq_signals_request_stop(void);

#endif
