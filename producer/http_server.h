/* http_server: `payq-producer serve`, the HTTP intake. libmicrohttpd with a
 * pool of producer.http_threads threads; requests are routed by the table
 * of producer/http_routes.h. Cheap refusals happen as soon as the headers
 * are in, before any body is read: unknown path 404, wrong method 405,
 * missing or wrong bearer token 401, content type 415, a Content-Length
 * over producer.max_request_bytes 413 (a body without a length is counted
 * while it arrives and refused with 413 at its end). SIGTERM/SIGINT first
 * drain: /readyz answers 503 while requests are still served for
 * producer.http_drain_ms (a load balancer takes the server out of rotation);
 * then it stops accepting connections, lets the requests in flight finish
 * (up to PAYQ_HTTP_DRAIN_S seconds), and exits 0. */
#ifndef PAYQ_HTTP_SERVER_H
#define PAYQ_HTTP_SERVER_H

#include "config.h"

#define PAYQ_HTTP_DRAIN_S 30

/* Serves on listen (HOST:PORT) until a stop signal. Returns the process
 * exit code: 0 after a graceful stop, 1 if the server could not start
 * (logged). */
int payq_http_serve(const struct payq_config *cfg, const char *listen);

#endif
