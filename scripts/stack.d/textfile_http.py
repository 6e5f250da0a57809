#!/usr/bin/env python3
"""textfile_http.py DIR HOST:PORT: serves the Prometheus text files DIR/*.prom
(concatenated, sorted by name) as GET /metrics, like node_exporter's textfile
collector, for the local stack only: the reconciler writes its result there
(payq_recon_*) and Prometheus scrapes it as job payq-recon. A file is read
whole on each scrape; writers replace files by rename, so a scrape never sees
half a file. No file yet is an empty, valid answer."""
import glob
import http.server
import os
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    directory = "."

    def do_GET(self):
        if self.path.split("?")[0] != "/metrics":
            self.send_error(404)
            return
        parts = []
        for path in sorted(glob.glob(os.path.join(self.directory, "*.prom"))):
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError:
                continue  # replaced or removed between glob and open
            parts.append(data if data.endswith(b"\n") or not data else data + b"\n")
        body = b"".join(parts)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass  # one line per scrape would only fill the log


def main():
    if len(sys.argv) != 3 or ":" not in sys.argv[2]:
        print(__doc__, file=sys.stderr)
        return 2
    host, port = sys.argv[2].rsplit(":", 1)
    Handler.directory = sys.argv[1]
    http.server.HTTPServer((host, int(port)), Handler).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
