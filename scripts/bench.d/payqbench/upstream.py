"""upstream: the bench's stand-in for whoever consumes the outcome events.

Every transfer message a worker finishes becomes an event in
payq.results.all (README, "Outcome events"), and upstream is expected to
consume them. Left alone, that quorum queue never empties, so RabbitMQ can
never snapshot its Raft log: each time the node's shared Raft WAL fills
(512 MB), the segment writer copies every event since into segment files,
hundreds of MB at once, and for the 1-3 s that takes the broker holds both
cores and every worker's commits wait. The bench measured exactly that in
its half-load phases until it consumed the events (README, "What bounds
each figure"). payq-ackdrain consumes them here and acks in small batches,
as a real consumer would."""

import os
import time

QUEUE = "payq.results.all"


class EventsConsumer:
    """start() launches payq-ackdrain on payq.results.all and waits until
    the queue is empty (what earlier runs left there included); stop()
    ends it. One per stack shape (a reshape recreates the broker), and one
    for --http."""

    def __init__(self, b, log_dir):
        self.b = b
        self.log_dir = log_dir
        self.proc = None

    def start(self, timeout_s=600):
        """True once payq.results.all is empty with the consumer on it."""
        b = self.b
        msgs, _ = b.stack.queue_state(QUEUE)
        self.proc = b.procs.start(
            [os.path.join(b.bin, "payq-ackdrain"), "--queue", QUEUE, "--batch", "50",
             "--prefetch", "100", "--idle-ms", "0"],
            stdout=open(os.path.join(self.log_dir, "events-consumer.out"), "w"),
            stderr=open(os.path.join(self.log_dir, "events-consumer.log"), "w"))
        if msgs not in ("0", "?"):
            b.ui.log("events: %s messages left in %s by earlier runs; consuming them first"
                     % (msgs, QUEUE))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.proc.running():
            msgs, cons = b.stack.queue_state(QUEUE)
            if msgs == "0" and cons not in ("0", "?"):
                b.ui.log("events: payq-ackdrain consumes %s (as upstream would)" % QUEUE)
                return True
            time.sleep(1)
        b.ui.warn("events: %s not empty after %d s (%s messages): runs will measure a broker "
                  "that keeps every event" % (QUEUE, timeout_s, msgs))
        return False

    def stop(self):
        if self.proc is not None:
            self.b.procs.stop([self.proc], 5)
            self.proc = None
