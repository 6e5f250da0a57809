#!/usr/bin/env python3
"""http_flood: a connection flood against payq-producer serve, for
integration_producer_http_flood.sh (standard library only).

Opens --idle connections that never send a byte, spread round-robin over
--sources loopback addresses (127.0.0.2, 127.0.0.3, ...: all of 127/8 is
loopback on Linux, so each is a distinct client address to the server), and
one client on 127.0.0.250 that trickles a request one byte every
--trickle-ms. While they are held, probes from 127.0.0.1 time GET /healthz,
GET /readyz and a real POST /v1/transfers, --rounds times. Then it waits up
to --wait-s for the server to close the idle and trickling connections.
Prints one JSON object: how many idle connections were accepted and how
many the server closed, after how long it closed the trickler, and each
probe's status and seconds."""
import argparse
import errno
import http.client
import json
import resource
import selectors
import socket
import threading
import time


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))


def open_idle(port, n, sources):
    socks = []
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.%d" % (2 + i % sources), 0))
        s.setblocking(False)
        err = s.connect_ex(("127.0.0.1", port))
        if err not in (0, errno.EINPROGRESS):
            s.close()
            continue
        socks.append(s)
    return socks


def closed_by_server(s):
    """True when the server closed s (EOF or reset); never blocks."""
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError as e:
        return e.errno != errno.ENOTCONN  # still connecting: not closed


class Trickler(threading.Thread):
    """Sends a request's headers one byte at a time; notes when the server
    closed the connection, seconds after it was opened."""

    def __init__(self, port, every_s):
        super().__init__(daemon=True)
        self.port, self.every_s = port, every_s
        self.closed_after = None
        self.sent = 0

    def run(self):
        req = b"POST /v1/transfers HTTP/1.1\r\nHost: payq\r\n" + b"X-Pad: " + b"a" * 100000
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.250", 0))
        s.connect(("127.0.0.1", self.port))
        s.settimeout(self.every_s)
        start = time.monotonic()
        for b in req:
            try:
                s.send(bytes([b]))
                self.sent += 1
                if s.recv(1) == b"":
                    break
            except socket.timeout:
                continue
            except OSError:
                break
        self.closed_after = round(time.monotonic() - start, 3)
        s.close()


def probe(port, method, path, token, body):
    start = time.monotonic()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=("127.0.0.1", 0))
        headers = {}
        if body is not None:
            headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
        c.request(method, path, body=body, headers=headers)
        status = c.getresponse().status
        c.close()
    except OSError as e:
        status = "error: %s" % e
    return {"path": path, "status": status, "secs": round(time.monotonic() - start, 3)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--id-prefix", required=True)
    ap.add_argument("--idle", type=int, default=2000)
    ap.add_argument("--sources", type=int, default=4)
    ap.add_argument("--trickle-ms", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--wait-s", type=float, default=10)
    a = ap.parse_args()
    raise_nofile(a.idle + 256)

    idle = open_idle(a.port, a.idle, a.sources)
    trickler = Trickler(a.port, a.trickle_ms / 1000)
    trickler.start()
    time.sleep(1.0)  # let the server accept (and refuse) what it will
    accepted = sum(1 for s in idle if not closed_by_server(s))
    probes = []
    for r in range(a.rounds):
        body = json.dumps({"id": "%s-%d" % (a.id_prefix, r), "debit_account": "%s-a" % a.id_prefix,
                           "credit_account": "%s-b" % a.id_prefix, "amount": "100",
                           "currency": "EUR"})
        probes.append(probe(a.port, "GET", "/healthz", a.token, None))
        probes.append(probe(a.port, "GET", "/readyz", a.token, None))
        probes.append(probe(a.port, "POST", "/v1/transfers", a.token, body))
        time.sleep(0.3)
    deadline = time.monotonic() + a.wait_s
    open_left = [s for s in idle if not closed_by_server(s)]
    while open_left and time.monotonic() < deadline:
        time.sleep(0.2)
        open_left = [s for s in open_left if not closed_by_server(s)]
    trickler.join(max(0.0, deadline - time.monotonic()))
    print(json.dumps({
        "idle_opened": len(idle),
        "idle_accepted_after_1s": accepted,
        "idle_still_open": len(open_left),
        "trickle_closed_after_s": trickler.closed_after,
        "trickle_bytes_sent": trickler.sent,
        "probes": probes,
    }))
    for s in idle:
        s.close()


if __name__ == "__main__":
    main()
