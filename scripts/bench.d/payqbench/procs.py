"""procs: every process the bench starts, so that each one is stopped on
exit (normal, error or signal). Workers and the reconciler run under
/usr/bin/time, as in the bash bench: rusage from wait4() here would count
this Python process's own memory (a child's peak RSS includes the image it
was forked from), /usr/bin/time's small image adds next to nothing. Signals
go to the measured program, time's child."""

import os
import signal
import socket
import subprocess
import time


class Proc:
    """One child process; stdin, stdout and stderr may be open files, which
    it closes once the child has them. `wait()` reaps it once and keeps its
    exit status."""

    def __init__(self, argv, stdin=None, stdout=None, stderr=None, env=None, time_file=None,
                 time_fmt=None):
        self.timed = time_file is not None
        if self.timed:
            argv = ["/usr/bin/time", "-f", time_fmt, "-o", time_file] + list(argv)
        self.argv = argv
        self.popen = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=stderr,
                                      env=env, close_fds=True)
        # The child has its own copies: the files given are closed here.
        for f in (stdin, stdout, stderr):
            if hasattr(f, "close"):
                f.close()
        self.pid = self.popen.pid
        self.status = None

    def running(self):
        if self.status is not None:
            return False
        pid, st = os.waitpid(self.pid, os.WNOHANG)
        if pid == 0:
            return True
        self._reaped(st)
        return False

    def wait(self, timeout=None):
        """Exit status (negative signal number when killed), or None when
        it still runs after timeout seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.status is None:
            if deadline is None:
                _, st = os.waitpid(self.pid, 0)
                self._reaped(st)
                break
            if not self.running():
                break
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)
        return self.status

    def _reaped(self, st):
        self.status = os.waitstatus_to_exitcode(st)
        self.popen.returncode = self.status

    def signal(self, sig):
        """sig to the program (under /usr/bin/time: to time's child; time
        itself exits when its child does)."""
        if self.status is None:
            pid = child_of(self.pid) if self.timed else self.pid
            try:
                if pid:
                    os.kill(pid, sig)
            except OSError:
                pass


def child_of(pid):
    """The first child of pid, or None."""
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            kids = f.read().split()
    except OSError:
        return None
    return int(kids[0]) if kids else None


def time_figures(path):
    """The numbers of the last line /usr/bin/time wrote to path (it writes
    "Command exited with non-zero status N" first when it is), or None."""
    try:
        with open(path) as f:
            lines = [ln for ln in f.read().splitlines() if ln and not ln.startswith("Command")]
        return [float(x) for x in lines[-1].split()]
    except (OSError, ValueError, IndexError):
        return None


class Procs:
    """The registry: start() records, forget() drops a process that was
    waited for, stop_all() terminates what is left (TERM, 5 s, KILL)."""

    def __init__(self):
        self.live = []

    def start(self, argv, stdin=None, stdout=None, stderr=None, env=None, time_file=None,
              time_fmt="%e %U %S %M %x"):
        """Starts argv (under /usr/bin/time -f time_fmt -o time_file when
        time_file is given) and records it."""
        p = Proc(argv, stdin=stdin, stdout=stdout, stderr=stderr, env=env, time_file=time_file,
                 time_fmt=time_fmt)
        self.live.append(p)
        return p

    def forget(self, p):
        if p in self.live:
            self.live.remove(p)

    def stop(self, procs, grace_s):
        """SIGTERM each, wait up to grace_s in all, SIGKILL the rest; returns
        those that had to be killed."""
        for p in procs:
            p.signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        killed = []
        for p in procs:
            left = max(0.0, deadline - time.monotonic())
            if p.wait(left) is None:
                p.signal(signal.SIGKILL)
                p.wait()
                killed.append(p)
            self.forget(p)
        return killed

    def stop_all(self):
        self.stop(list(self.live), 5)


def port_free(port):
    """Nobody listens on 127.0.0.1:port."""
    with socket.socket() as s:
        s.settimeout(1)
        try:
            s.connect(("127.0.0.1", port))
        except OSError:
            return True
    return False


class Ports:
    """Loopback ports for the workers' metrics, 17850-17989, round robin."""

    FIRST, LAST = 17850, 17989

    def __init__(self):
        self.next = self.FIRST

    def take(self):
        port = self.next
        for _ in range(self.LAST - self.FIRST + 1):
            port = self.next
            self.next = self.FIRST if self.next >= self.LAST else self.next + 1
            if port_free(port):
                return port
        return port
