#!/usr/bin/env python3
"""http_load: closed-loop load on POST /v1/transfers that records every
attempt, for the intake replica tests (chaos_intake_*.sh; standard library
only).

--clients threads, each with its own kept-alive connection, send one
transfer per request for --seconds, or until --stop-file exists: ids PREFIX-<client>-<n>, between
--accounts accounts PREFIX-acct-1..K (EUR), amount 1 + n % 997 minor units. A
request that does not answer 202 (another status, a reset, a timeout) is
sent again with the same id and body on a fresh connection after
--retry-ms, until it gets a 202 or --give-up-s have passed since its first
try; only then does the client move to its next id. Every attempt is one
line of --log: ID STATUS MS T (STATUS a number or "error", MS its latency, T
seconds since the start). The last line on stdout is a JSON summary:
attempts by status, ids sent, ids that got a 202, ids that never did,
latency p50/p99/max of the 202s, requests/s.

--readers threads, each with its own kept-alive connection, GET
/v1/accounts/PREFIX-acct-<reader % K + 1> meanwhile, --read-pause-ms apart,
one line per GET in --read-log: ACCOUNT STATUS MS T; the summary counts
them by status under "reads"."""
import argparse
import http.client
import json
import os
import threading
import time
import urllib.parse


class Client(threading.Thread):
    def __init__(self, a, n, t0, log, lock):
        super().__init__(daemon=True)
        self.a, self.n, self.t0, self.log, self.lock = a, n, t0, log, lock
        u = urllib.parse.urlsplit(a.url)
        self.host, self.port = u.hostname, u.port or 80
        self.conn = None
        self.lines = []
        self.ok_ms = []
        self.sent = self.ok = 0
        self.statuses = {}

    def connect(self):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.a.timeout_s)
        return self.conn

    def drop(self):
        if self.conn is not None:
            self.conn.close()
        self.conn = None

    def attempt(self, body, path="/v1/transfers"):
        """One POST of body, or GET of path if body is None: (status or
        "error", milliseconds)."""
        start = time.monotonic()
        headers = {"Authorization": "Bearer " + self.a.token}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            c = self.connect()
            c.request("POST" if body is not None else "GET", path, body=body, headers=headers)
            r = c.getresponse()
            r.read()
            status = r.status
            if r.getheader("Connection", "").lower() == "close":
                self.drop()
        except (OSError, http.client.HTTPException):
            status = "error"
            self.drop()
        return status, (time.monotonic() - start) * 1000

    def run(self):
        a, k = self.a, self.a.accounts
        stop_at = self.t0 + a.seconds
        seq = 0
        while time.monotonic() < stop_at and not (a.stop_file and os.path.exists(a.stop_file)):
            seq += 1
            tid = "%s-%d-%d" % (a.prefix, self.n, seq)
            d = (self.n + seq) % k + 1
            body = json.dumps({"id": tid, "debit_account": "%s-acct-%d" % (a.prefix, d),
                               "credit_account": "%s-acct-%d" % (a.prefix, d % k + 1),
                               "amount": str(1 + seq % 997), "currency": "EUR"})
            self.sent += 1
            first = time.monotonic()
            while True:
                status, ms = self.attempt(body)
                now = time.monotonic()
                self.statuses[str(status)] = self.statuses.get(str(status), 0) + 1
                self.lines.append("%s %s %.1f %.2f\n" % (tid, status, ms, now - self.t0))
                if status == 202:
                    self.ok += 1
                    self.ok_ms.append(ms)
                    break
                if now - first >= a.give_up_s:
                    break
                self.drop()
                time.sleep(a.retry_ms / 1000)
        with self.lock:
            self.log.writelines(self.lines)


class Reader(Client):
    def run(self):
        a = self.a
        stop_at = self.t0 + a.seconds
        acct = "%s-acct-%d" % (a.prefix, self.n % a.accounts + 1)
        while time.monotonic() < stop_at and not (a.stop_file and os.path.exists(a.stop_file)):
            status, ms = self.attempt(None, "/v1/accounts/" + acct)
            self.statuses[str(status)] = self.statuses.get(str(status), 0) + 1
            self.lines.append("%s %s %.1f %.2f\n" % (acct, status, ms, time.monotonic() - self.t0))
            time.sleep(a.read_pause_ms / 1000)
        with self.lock:
            self.log.writelines(self.lines)


def pct(sorted_ms, p):
    if not sorted_ms:
        return None
    return round(sorted_ms[min(len(sorted_ms) - 1, int(p / 100 * len(sorted_ms)))], 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True, help="base URL, e.g. $PAYQ_API_URL")
    ap.add_argument("--token", required=True)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--accounts", type=int, default=20)
    ap.add_argument("--retry-ms", type=int, default=100)
    ap.add_argument("--give-up-s", type=float, default=60)
    ap.add_argument("--timeout-s", type=float, default=30)
    ap.add_argument("--stop-file", help="stop starting new ids once this file exists")
    ap.add_argument("--log", required=True)
    ap.add_argument("--readers", type=int, default=0)
    ap.add_argument("--read-pause-ms", type=int, default=100)
    ap.add_argument("--read-log", default=os.devnull)
    a = ap.parse_args()
    lock = threading.Lock()
    t0 = time.monotonic()
    with open(a.log, "w") as log, open(a.read_log, "w") as read_log:
        clients = [Client(a, i + 1, t0, log, lock) for i in range(a.clients)]
        readers = [Reader(a, i + 1, t0, read_log, lock) for i in range(a.readers)]
        for c in clients + readers:
            c.start()
        for c in clients + readers:
            c.join()
    elapsed = time.monotonic() - t0
    statuses, ok_ms = {}, []
    for c in clients:
        for s, n in c.statuses.items():
            statuses[s] = statuses.get(s, 0) + n
        ok_ms += c.ok_ms
    ok_ms.sort()
    attempts = sum(statuses.values())
    sent, ok = sum(c.sent for c in clients), sum(c.ok for c in clients)
    print(json.dumps({
        "seconds": round(elapsed, 1), "clients": a.clients, "attempts": attempts,
        "statuses": statuses, "failed_attempts": attempts - statuses.get("202", 0),
        "ids_sent": sent, "ids_202": ok, "ids_never_202": sent - ok,
        "requests_per_s": round(attempts / elapsed, 1) if elapsed else None,
        "p50_ms": pct(ok_ms, 50), "p99_ms": pct(ok_ms, 99),
        "max_ms": round(ok_ms[-1], 1) if ok_ms else None,
        "reads": {s: sum(r.statuses.get(s, 0) for r in readers)
                  for s in sorted({s for r in readers for s in r.statuses})}}))


if __name__ == "__main__":
    main()
