"""ui: the bench's log lines on stderr, with warnings and errors collected
for the summary at the end. One Ui per invocation (no module state)."""

import sys
import time


class Ui:
    """Log lines "[bench   12.3s] text" on stderr; a progress line that is
    redrawn in place on a terminal and printed every 10 s otherwise."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.tty = stream.isatty()
        self.t0 = time.monotonic()
        self.warnings = []
        self.errors = []
        self.failed = False
        self._next_progress = 0.0

    def elapsed(self):
        """Seconds since start, one decimal, truncated like the bash bench."""
        t = int((time.monotonic() - self.t0) * 10)
        return "%d.%d" % (t // 10, t % 10)

    def clear_line(self):
        if self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()

    def log(self, text):
        self.clear_line()
        self.stream.write("[bench %6ss] %s\n" % (self.elapsed(), text))
        self.stream.flush()

    def warn(self, text):
        self.log("WARNING: " + text)
        self.warnings.append(text)

    def err(self, text):
        """Records a failed step: the bench goes on where it can and exits 1."""
        self.log("ERROR: " + text)
        self.failed = True
        self.errors.append(text)

    def progress_reset(self):
        """A new progress line: the first non-terminal print is 10 s away."""
        self._next_progress = 0.0

    def progress(self, line):
        """On a terminal: redraw; otherwise one line every 10 s."""
        if self.tty:
            self.stream.write("\r\033[K" + line)
            self.stream.flush()
            return
        now = time.monotonic()
        if now >= self._next_progress:
            if self._next_progress:
                self.stream.write(line + "\n")
                self.stream.flush()
            self._next_progress = now + 10

    def raw(self, text):
        """Text straight to stderr (the reconciler's breaks)."""
        self.stream.write(text)
        self.stream.flush()


class Fatal(Exception):
    """A failure after which the bench cannot go on (exit 1)."""
