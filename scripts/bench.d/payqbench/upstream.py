"""upstream: the bench's stand-in for whoever consumes the outcome events.

Every transfer message a worker finishes becomes an event in
payq.results.all (README, "Outcome events"), and upstream is expected to
consume them. Left alone, that quorum queue never empties, so RabbitMQ can
never snapshot its Raft log: each time the node's shared Raft WAL fills
(512 MB), the segment writer copies every event since into segment files,
hundreds of MB in 1-2 s, and the workers' commits wait meanwhile. Most of
the bench's half-load stalls lined up with those writes until it consumed
the events (README, "What bounds each figure", which also has the stalls
that remain). payq-ackdrain consumes them here and acks in small batches,
as a real consumer would."""

import os
import time

QUEUE = "payq.results.all"


class EventsConsumer:
    """A context manager: on entry it starts payq-ackdrain on
    payq.results.all and waits until the queue is empty (what earlier runs
    left there included); on exit it stops it. One per stack shape (a
    reshape recreates the broker), and one for --http."""

    def __init__(self, b, timeout_s=600):
        self.b = b
        self.timeout_s = timeout_s
        self.proc = None

    def __enter__(self):
        b = self.b
        msgs, _ = b.stack.queue_state(QUEUE)
        # Appended: with --brokers 1,3 each shape's consumer logs here.
        self.proc = b.procs.start(
            [os.path.join(b.bin, "payq-ackdrain"), "--queue", QUEUE, "--batch", "50",
             "--prefetch", "100", "--idle-ms", "0"],
            stdout=open(os.path.join(b.out, "events-consumer.out"), "a"),
            stderr=open(os.path.join(b.out, "events-consumer.log"), "a"))
        if msgs not in ("0", "?"):
            b.ui.log("events: %s messages left in %s by earlier runs; consuming them first"
                     % (msgs, QUEUE))
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline and self.proc.running():
            msgs, cons = b.stack.queue_state(QUEUE)
            if msgs == "0" and cons not in ("0", "?"):
                b.ui.log("events: payq-ackdrain consumes %s (as upstream would)" % QUEUE)
                return self
            time.sleep(1)
        b.ui.warn("events: %s not empty after %d s (%s messages): runs will measure a broker "
                  "that keeps every event" % (QUEUE, self.timeout_s, msgs))
        return self

    def __exit__(self, *exc):
        self.b.procs.stop([self.proc], 5)
        return False
