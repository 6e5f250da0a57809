"""stack: the local RabbitMQ and PostgreSQL the bench runs against
(scripts/stack): bringing it up, its environment, SQL queries through psql,
the depth of payq.transfers, and the bench's configs and business dates."""

import os
import re
import subprocess
import time


class QueryError(Exception):
    pass


class Stack:
    def __init__(self, root, ui):
        self.root = root
        self.ui = ui
        self.env = dict(os.environ)
        # scripts/stack runs with the bench's starting environment, never
        # with the PAYQ_* variables of a stack it has since purged.
        self.base_env = dict(os.environ)

    def up(self, log_path, brokers=None):
        """scripts/stack up [--brokers N] (output in log_path), then its
        environment."""
        args = ["up"] if brokers is None else ["up", "--brokers", str(brokers)]
        with open(log_path, "a") as log:
            rc = subprocess.call([os.path.join(self.root, "scripts/stack")] + args,
                                 stdout=log, stderr=subprocess.STDOUT, env=self.base_env)
        if rc != 0:
            return False
        out = subprocess.run(["bash", "-c", 'eval "$("$1/scripts/stack" env)" && env -0', "env",
                              self.root], capture_output=True, env=self.base_env)
        if out.returncode != 0:
            return False
        for item in out.stdout.split(b"\0"):
            if b"=" in item:
                k, v = item.decode().split("=", 1)
                self.env[k] = v
        os.environ.update({k: v for k, v in self.env.items() if k.startswith("PAYQ_")})
        return True

    def brokers(self):
        """RabbitMQ nodes of the stack that is up: the entries of
        PAYQ_AMQP_NODES (scripts/stack env)."""
        return len([n for n in self.env.get("PAYQ_AMQP_NODES", "").split(",") if n])

    def reshape(self, brokers, log_path):
        """The stack with `brokers` RabbitMQ nodes: nothing when it has them
        already, else scripts/stack purge (a single node's data and a
        cluster's do not convert: the ledger and queues start empty), then
        up --brokers N. True when it is up with that count."""
        if self.brokers() == brokers:
            return True
        with open(log_path, "a") as log:
            rc = subprocess.call([os.path.join(self.root, "scripts/stack"), "purge"],
                                 stdout=log, stderr=subprocess.STDOUT, env=self.base_env)
        if rc != 0:
            return False
        self.env = dict(self.base_env)
        for k in [k for k in os.environ if k.startswith("PAYQ_") and k not in self.base_env]:
            del os.environ[k]
        return self.up(log_path, brokers) and self.brokers() == brokers

    def q(self, sql, timeout=None, port=None):
        """Rows of one query as lists of text fields ('|' separated by psql),
        on the primary, or as superuser on the node listening on `port`."""
        conn = self.env["PAYQ_PG_PRIMARY"]
        if port is not None:
            conn = re.sub(r"port=\d+", "port=%d" % port, conn)
        try:
            out = subprocess.run(["psql", conn, "-X", "-qAt", "-v", "ON_ERROR_STOP=1", "-c", sql],
                                 capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise QueryError("no answer in %s s to %s" % (timeout, sql))
        if out.returncode != 0:
            raise QueryError(out.stderr.strip())
        return [line.split("|") for line in out.stdout.splitlines()]

    def q1(self, sql):
        """The single value of a one-row, one-column query."""
        return self.q(sql)[0][0]

    def queue_state(self, queue="payq.transfers"):
        """(messages, consumers) of queue, live (~1 s per call); ('?', '?')
        when the broker does not answer."""
        try:
            out = subprocess.run([self.env["PAYQ_RABBITMQCTL"], "list_queues", "-q", "-p", "payq",
                                  "name", "messages", "consumers"], capture_output=True,
                                 text=True, timeout=60).stdout
        except (OSError, subprocess.TimeoutExpired, KeyError):
            return "?", "?"
        for line in out.splitlines():
            f = line.split()
            if len(f) >= 3 and f[0] == queue:
                return f[1], f[2]
        return "?", "?"

    def settle(self):
        """Waits (up to 60 s) until no autovacuum worker runs; the seconds."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < 60:
            try:
                n = self.q1("SELECT count(*) FROM pg_stat_activity "
                            "WHERE backend_type = 'autovacuum worker'")
            except QueryError:
                break
            if n == "0":
                break
            time.sleep(1)
        return int(time.monotonic() - t0)

    def unused_dates(self, count):
        """count business dates never used: the 29th to 31st of months in
        2090-2099 (the integration tests pick days 1-28 there), not in the
        ledger and never reconciled."""
        rows = self.q("""SELECT d::date FROM generate_series('2090-01-29'::date, '2099-12-31',
                         '1 day') d
            WHERE extract(day FROM d) >= 29
              AND NOT EXISTS (SELECT 1 FROM payq.transfers t WHERE t.business_date = d::date)
              AND NOT EXISTS (SELECT 1 FROM payq.reconciliations r
                              WHERE r.business_date = d::date)
              AND NOT EXISTS (SELECT 1 FROM payq.conflicts c WHERE c.business_date = d::date)
            ORDER BY random() LIMIT %d""" % count)
        return [r[0] for r in rows]


def set_yaml_key(text, key, value):
    """text with every two-space-indented `key:` line set to value; the
    number of lines changed."""
    pat = re.compile(r"^(  %s:) .*$" % re.escape(key), re.M)
    return pat.subn(r"\g<1> %s" % value, text)


def yaml_value(text, key):
    """The value of the first `key:` line (first word after it), as int."""
    m = re.search(r"^\s*%s: (\S+)" % re.escape(key), text, re.M)
    return int(m.group(1)) if m else None


def write_configs(root, out, pack):
    """The three configs: built-in defaults with --pack; one message per
    transfer (the unpacked ceiling); the textbook one (batch_max 1, prefetch
    1, pack_max 1). PAYQ_* variables supply the connections. Returns
    (cfg, cfg_pack1, cfg_textbook, text of cfg)."""
    with open(os.path.join(root, "config/payq.yaml")) as f:
        base = f.read()
    cfg_text, n = set_yaml_key(base, "pack_max", pack)
    if n < 1:
        raise ValueError("could not set producer.pack_max")
    one, _ = set_yaml_key(cfg_text, "pack_max", 1)
    tb, _ = set_yaml_key(one, "batch_max", 1)
    tb, _ = set_yaml_key(tb, "prefetch", 1)
    if len(re.findall(r"^  (batch_max|prefetch|pack_max): 1$", tb, re.M)) != 3:
        raise ValueError("could not set batch_max/prefetch/pack_max in the textbook config")
    paths = []
    for name, text in (("payq.yaml", cfg_text), ("payq-pack1.yaml", one),
                       ("payq-textbook.yaml", tb)):
        path = os.path.join(out, name)
        with open(path, "w") as f:
            f.write(text)
        paths.append(path)
    return paths[0], paths[1], paths[2], cfg_text
