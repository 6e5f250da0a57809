/* pg: PostgreSQL connection helpers over libpq. Conninfos may name several
 * hosts (host=a,b port=p1,p2 target_session_attrs=read-write): libpq finds
 * the primary, which is how a failover becomes a reconnect. Errors are
 * classified by SQLSTATE so callers know whether to retry the transaction,
 * reconnect, or give up. */
#ifndef PAYQ_PG_H
#define PAYQ_PG_H

#include <libpq-fe.h>
#include <stdbool.h>

enum payq_pg_fault {
    PAYQ_PG_OK = 0,
    PAYQ_PG_RETRY,     /* serialization failure or deadlock: rerun the transaction */
    PAYQ_PG_RECONNECT, /* connection lost, read-only after failover, shutting down */
    PAYQ_PG_FATAL,     /* a bug or a constraint: retrying will not help */
};

/* Connects; on failure logs (password redacted) and returns NULL. The
 * caller frees with PQfinish. application_name is set to app. Unless the
 * conninfo says otherwise: connect_timeout 5 s (per host), TCP keepalives
 * after 15 s idle (3 probes 5 s apart), tcp_user_timeout 30 s. Each address
 * of each host is tried in turn for its connect_timeout, as libpq's blocking
 * connect tries them (pg_hosts.h), and prefer-standby in libpq's two passes;
 * but an address that hung before is tried last, and the connect is polled,
 * so that the thread's wait tick runs and its stop predicate is heeded
 * (below) as in a statement's wait: a stop gives up (NULL). */
PGconn *payq_pg_connect(const char *conninfo, const char *app);

/* payq_pg_connect giving up after ms (0: no bound beyond the hosts'
 * connect_timeout) for the whole attempt, every host included: for a
 * caller that must answer in time whatever a frozen host does (an intake
 * read). An address that hung past the bound is tried last the next time. */
PGconn *payq_pg_connect_within(const char *conninfo, const char *app, int ms);

/* Checks res for the expected status; on mismatch logs `what` with the
 * SQLSTATE and message. Always leaves res to the caller (PQclear). Returns
 * PAYQ_PG_OK or the fault class. */
enum payq_pg_fault payq_pg_check(PGconn *conn, PGresult *res, ExecStatusType expect,
                                 const char *what);

/* Runs parameterless commands (BEGIN, COMMIT, SET ...; several separated by
 * semicolons), clears the results: payq_pg_exec_meanwhile without work. */
enum payq_pg_fault payq_pg_exec(PGconn *conn, const char *sql, const char *what);

/* Sends the commands and calls meanwhile(arg) once (NULL: none) before
 * waiting for their results, of which the first that failed, else the last,
 * is checked (as PQexec would return it): the caller's own work overlaps a
 * command that waits on something else (a COMMIT waiting for the
 * synchronous standby). meanwhile must not use conn. Commands that could
 * not be sent are a lost connection (PAYQ_PG_RECONNECT). */
enum payq_pg_fault payq_pg_exec_meanwhile(PGconn *conn, const char *sql, const char *what,
                                          void (*meanwhile)(void *), void *arg);

/* After a PQsend* call: the result PQexec would give, the first that
 * failed, else the last (NULL if none). A COPY result ends the loop
 * (PQgetResult would return it again and again); no caller sends COPY, and
 * payq_pg_check reports it as unexpected. The caller clears it. */
PGresult *payq_pg_take_results(PGconn *conn);

/* Bounds every wait of payq_pg_take_results in this process (and so of
 * payq_pg_exec, payq_pg_exec_meanwhile, payq_pg_exec_params) to ms for a
 * statement's results (0, the default: no bound), and makes connections
 * payq_pg_connect opens afterwards nonblocking, so that sending is bounded
 * too. A statement still unanswered then is a lost connection: its socket
 * is shut (logged as pg_unresponsive), the result is the one libpq gives a
 * lost connection, and every later call on conn fails at once. A caller
 * sets it above its session's statement_timeout, which the server enforces
 * on every statement a live server runs, COMMIT's wait for a synchronous
 * standby included: only a server frozen or cut off goes past it. */
void payq_pg_set_response_timeout(int ms);

/* Calls tick(arg) every every_ms (at least 1) while this thread waits for a
 * statement's results (payq_pg_take_results and every call over it, the
 * bounded and the alive ones; not payq_pg_copy_data_alive) or for a
 * connection (payq_pg_connect and the bounded one), from the waiting thread,
 * between libpq calls; NULL: none. For work that must go on however long the
 * database takes: the worker keeps its broker connections alive
 * (worker/main.c, keep_broker). tick must not use the connection being
 * waited on. */
void payq_pg_set_wait_tick(void (*tick)(void *), void *arg, int every_ms);

/* Makes this thread's waits for a statement's results, a COPY's data or a
 * connection ask stop(arg) at least every PAYQ_PG_STOP_POLL_MS (and whenever
 * a signal interrupts them); once it says true, a connect gives up (NULL),
 * and a statement is abandoned: its connection's socket is shut (logged as
 * pg_abandoned) and the call returns what libpq gives a lost connection. The
 * server sees the closed socket at its next
 * client_connection_check_interval, or when it next writes to it, and rolls
 * the transaction back. For a program that must stop promptly on SIGTERM
 * whatever its statement is waiting for (the reconciler: a day's scan, the
 * invariants behind a lock); never around a COMMIT whose outcome matters.
 * NULL: none. */
#define PAYQ_PG_STOP_POLL_MS 100
void payq_pg_set_wait_stop(bool (*stop)(void *), void *arg);

/* The client_connection_check_interval a session sets when its statements
 * may be abandoned (above, or by a bounded wait): the server then ends
 * them within this of the closed socket instead of running on. */
#define PAYQ_PG_CLIENT_CHECK "1s"

/* What a program adds to its sessions' statement_timeout for its response
 * timeout: the server's and the network's delay in answering a statement
 * the server cancelled. */
#define PAYQ_PG_ANSWER_GRACE_MS 10000

/* PQexecParams (text parameters, no types) bounded as above: the result,
 * or NULL if it could not be sent (payq_pg_check says why). */
PGresult *payq_pg_exec_params(PGconn *conn, const char *sql, int n, const char *const *params,
                              int result_format);

/* The same, and payq_pg_take_results, bounded by ms instead (0: no bound):
 * for a probe or an optional read on a request's path, which must not wait
 * as long as a statement may run. */
PGresult *payq_pg_exec_params_within(PGconn *conn, int ms, const char *sql, int n,
                                     const char *const *params, int result_format);
PGresult *payq_pg_take_results_within(PGconn *conn, int ms);

/* For statements that may rightly run long (a reconciliation's scan of a
 * day, its invariants over the whole ledger), where no response timeout
 * fits: waits as long as the server is alive. After PAYQ_PG_SILENCE_MS
 * without the awaited answer, a new session to the same host and port
 * (conn's own options, any role) must get an answer within
 * PAYQ_PG_PROBE_MS; a refusal or an error is an answer (the server is
 * there). A server that gives none (frozen, or cut off without a reset,
 * which keepalives do not notice: its kernel still acknowledges) is a lost
 * connection: conn's socket is shut (logged as pg_unresponsive), and the
 * call returns what libpq gives a lost connection. */
#define PAYQ_PG_SILENCE_MS 10000
#define PAYQ_PG_PROBE_MS 5000

/* Sets the two bounds above for this process (tests shorten them). */
void payq_pg_set_alive_bounds(int silence_ms, int probe_ms);

/* payq_pg_take_results waiting so (the result, or NULL as there). */
PGresult *payq_pg_take_results_alive(PGconn *conn);

/* PQexecParams (text parameters, no types, text results) waiting so: the
 * result, or NULL if it could not be sent (payq_pg_check says why). */
PGresult *payq_pg_exec_params_alive(PGconn *conn, const char *sql, int n,
                                    const char *const *params);

/* PQgetCopyData (blocking) waiting so: a row's length with *msg set, -1 at
 * the end of the data, -2 on failure (a lost connection included). */
int payq_pg_copy_data_alive(PGconn *conn, char **msg);

/* Classifies an SQLSTATE (NULL = no state: treated as a lost connection). */
enum payq_pg_fault payq_pg_classify(const char *sqlstate);

/* Whether a notice says a COMMIT may not have reached the synchronous
 * standby although it committed locally. PostgreSQL 15 ends the COMMIT's
 * wait for the standby with a WARNING in two cases: a cancel
 * (pg_cancel_backend; SQLSTATE 01000, "canceling wait for synchronous
 * replication due to user request", and the COMMIT still reports success)
 * and a termination (pg_terminate_backend, shutdown; SQLSTATE 57P01,
 * "canceling the wait for synchronous replication and terminating
 * connection"). Both carry the detail "...committed locally, but might not
 * have been replicated to the standby". severity is the non-localized one
 * (PG_DIAG_SEVERITY_NONLOCALIZED); any argument may be NULL. The texts are
 * matched only in English: callers should treat any WARNING during COMMIT
 * as an unknown outcome and use this to name it. */
bool payq_pg_notice_unreplicated(const char *severity, const char *sqlstate, const char *message,
                                 const char *detail);

#endif
