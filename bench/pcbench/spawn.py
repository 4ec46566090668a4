"""One measured run: a process started through the pcb_spawn launcher
under an allocator's LD_PRELOAD, with its exit status, wall time, CPU time
and peak RSS."""
import os
import signal
import subprocess
import tempfile
import threading

# Path of the pcb_spawn launcher; Session.find_bins() sets it.
LAUNCHER = None


def base_env():
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    for k in list(env):
        # allocator tuning knobs from the caller would skew the comparison
        if k.startswith(("MALLOC_", "GLIBC_TUNABLES", "MIMALLOC_", "JE_",
                         "TCMALLOC_", "PCMALLOC_")) or k == "MALLOC_CONF":
            env.pop(k)
    return env


class RunResult:
    __slots__ = ("ok", "status", "wall", "cpu", "rss_kib", "final_rss_kib",
                 "checksum", "detail")

    def __init__(self):
        self.ok = False
        self.status = "not run"
        self.wall = self.cpu = float("nan")
        self.rss_kib = 0
        self.final_rss_kib = None   # printed by the workload, if at all
        self.checksum = ""
        self.detail = ""


def describe_status(code, timed_out):
    if timed_out:
        return "timeout"
    if code < 0:
        try:
            return "signal %d (%s)" % (-code, signal.Signals(-code).name)
        except ValueError:
            return "signal %d" % -code
    return "exit %d" % code


def parse_spawn_result(path):
    try:
        with open(path) as f:
            kv = dict(x.split("=", 1) for x in f.read().split())
        return (int(kv["status"]), float(kv["wall"]),
                float(kv["utime"]) + float(kv["stime"]), int(kv["maxrss"]))
    except (OSError, KeyError, ValueError):
        return None


class Spawned:
    """A process started through pcb_spawn (which measures it: see
    spawn.c for why the Python side cannot use os.wait4 for peak RSS),
    in its own session so a timeout can kill the whole group."""

    def __init__(self, argv, preload, extra_env=None, stdin_path=None,
                 stdout=None, stderr=None, timeout=60.0):
        fd, self.result = tempfile.mkstemp(prefix="pcb-run-")
        os.close(fd)
        env = base_env()
        env.update(extra_env or {})
        fin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
        try:
            self.p = subprocess.Popen(
                [LAUNCHER, self.result, preload or "-"] + list(argv),
                env=env, stdin=fin, stdout=stdout, stderr=stderr,
                start_new_session=True)
        finally:
            if stdin_path:
                fin.close()
        self.timed_out = False
        self.timer = threading.Timer(timeout, self.kill)
        self.timer.start()

    def kill(self):
        self.timed_out = True
        try:
            os.killpg(self.p.pid, signal.SIGKILL)
        except OSError:
            pass

    def poll(self):
        return self.p.poll()

    def wait(self):
        """Returns (exitcode, timed_out, wall, cpu, maxrss_kib)."""
        try:
            self.p.wait()
        finally:
            self.timer.cancel()
        res = parse_spawn_result(self.result)
        try:
            os.unlink(self.result)
        except OSError:
            pass
        if res is None:  # launcher itself killed (timeout) or failed
            code = self.p.returncode
            return (code if code < 0 else (code or 125), self.timed_out,
                    float("nan"), float("nan"), 0)
        code, wall, cpu, rss = res
        return code, self.timed_out, wall, cpu, rss


def spawn_measured(argv, preload, extra_env=None, stdin_path=None,
                   timeout=60.0):
    """Run argv under the allocator preload; return (exitcode, timed_out,
    wall, cpu, maxrss_kib, stdout, stderr)."""
    out = tempfile.TemporaryFile()
    err = tempfile.TemporaryFile()
    try:
        sp = Spawned(argv, preload, extra_env, stdin_path, out, err, timeout)
        code, to, wall, cpu, rss = sp.wait()
        out.seek(0)
        err.seek(0)
        so = out.read().decode("utf-8", "replace")
        se = err.read().decode("utf-8", "replace")
    finally:
        out.close()
        err.close()
    return code, to, wall, cpu, rss, so, se

