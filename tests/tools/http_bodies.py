#!/usr/bin/env python3
"""http_bodies: the intake's body budget (producer.body_memory_bytes) against
a live `payq-producer serve`, for integration_producer_http_budget. Holds one
upload open with part of its body sent, then asks what a second, a chunked
and a small request get, lets the first go, and asks again. Prints one JSON
object: each step's status, Retry-After, error title and seconds."""
import argparse
import json
import socket
import time


def headers(a, length=None, chunked=False):
    h = ["POST /v1/transfers HTTP/1.1", "Host: payq", "Authorization: Bearer " + a.token,
         "Content-Type: application/json", "Connection: close"]
    h.append("Transfer-Encoding: chunked" if chunked else "Content-Length: %d" % length)
    return ("\r\n".join(h) + "\r\n\r\n").encode()


def transfer(a, n):
    return json.dumps({"id": "%s-%d" % (a.id_prefix, n), "debit_account": "%s-a" % a.id_prefix,
                       "credit_account": "%s-b" % a.id_prefix, "amount": "100",
                       "currency": "EUR"})


def padded(a, n, size):
    """A valid body of exactly size bytes: one transfer in an array, padded."""
    core = transfer(a, n)
    return ("[" + core + " " * (size - len(core) - 2) + "]").encode()


def answer(s, started):
    """The response on s: status, Retry-After, the error title, seconds."""
    s.settimeout(10)
    data = b""
    try:
        while True:
            got = s.recv(65536)
            if not got:
                break
            data += got
    except socket.timeout:
        pass
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0].startswith("HTTP/") else 0
    retry = next((l.split(":", 1)[1].strip() for l in lines
                  if l.lower().startswith("retry-after:")), None)
    try:
        title = json.loads(body.decode()).get("error")
    except ValueError:
        title = None
    return {"status": status, "retry_after": retry, "error": title,
            "secs": round(time.monotonic() - started, 3)}


def connect(a):
    return socket.create_connection(("127.0.0.1", a.port))


def whole(a, body):
    s = connect(a)
    t = time.monotonic()
    s.sendall(headers(a, len(body)) + body)
    r = answer(s, t)
    s.close()
    return r


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--id-prefix", required=True)
    p.add_argument("--held", type=int, required=True, help="Content-Length of the held upload")
    p.add_argument("--second", type=int, required=True, help="Content-Length of the second")
    p.add_argument("--chunked", type=int, required=True, help="bytes of the chunked body")
    a = p.parse_args()
    out = {}
    held = connect(a)
    body = padded(a, 0, a.held)
    held.sendall(headers(a, a.held) + body[: a.held // 2])
    time.sleep(0.5)

    # Headers only: the answer must come before any of its body is sent.
    s = connect(a)
    t = time.monotonic()
    s.sendall(headers(a, a.second))
    out["second_while_held"] = answer(s, t)
    s.close()

    s = connect(a)
    t = time.monotonic()
    s.sendall(headers(a, chunked=True))
    cb = padded(a, 1, a.chunked)
    for i in range(0, len(cb), 65536):
        piece = cb[i:i + 65536]
        try:
            s.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
        except OSError:
            break
    try:
        s.sendall(b"0\r\n\r\n")
    except OSError:
        pass
    out["chunked_while_held"] = answer(s, t)
    s.close()

    out["small_while_held"] = whole(a, ("[" + transfer(a, 2) + "]").encode())

    held.sendall(body[a.held // 2:])
    out["held"] = answer(held, time.monotonic())
    held.close()

    out["second_after"] = whole(a, padded(a, 3, a.second))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
