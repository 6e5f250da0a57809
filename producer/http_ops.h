/* http_ops: the operational routes. /healthz answers 200 while the process
 * runs; /readyz answers 200 only if a fresh broker connection opens and the
 * ledger answers SELECT 1 (503 naming what failed); /metrics renders the
 * Prometheus series (text/plain, the one non-JSON body). */
#ifndef PAYQ_HTTP_OPS_H
#define PAYQ_HTTP_OPS_H

#include "http.h"

void payq_http_healthz(struct payq_http_app *app, struct payq_http_reply *rep);
void payq_http_readyz(struct payq_http_app *app, struct payq_http_reply *rep);
void payq_http_metrics_page(struct payq_http_app *app, struct payq_http_reply *rep);

#endif
