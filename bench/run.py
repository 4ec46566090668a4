#!/usr/bin/env python3
"""pcmalloc benchmark runner (standard library only).

Runs every workload under each allocator (pcmalloc through LD_PRELOAD, glibc
with no preload, and jemalloc / tcmalloc / mimalloc when installed),
interleaved (A B C D A B C D ...), N repetitions, and reports the median
wall time, CPU time (user+sys) and peak RSS of each, with ratios to pcmalloc
and geometric means. Output: Markdown on stdout, CSV files and a gnuplot PNG
chart in bench/results/ (or --out). Every workload prints a checksum that
must be the same under every allocator; a mismatch is reported as an error
and makes the exit status non-zero.

Normally started through bench/run.sh, which builds the project first.
See bench/README.md.
"""
import argparse
import csv
import datetime
import hashlib
import math
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORKLOAD_DIR = os.path.join(HERE, "workloads")

# ---------------------------------------------------------------- allocators

# name, shared-object file name, Debian package
OTHER_ALLOCATORS = [
    ("jemalloc", "libjemalloc.so.2", "libjemalloc2"),
    ("tcmalloc", "libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"),
    ("mimalloc", "libmimalloc.so.2", "libmimalloc2.0"),
]
ALL_ALLOCATORS = ["pcmalloc", "glibc"] + [a[0] for a in OTHER_ALLOCATORS]
LIB_DIRS = ["/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu",
            "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib",
            "/usr/local/lib"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def error(msg):
    log("ERROR: " + msg)


# ----------------------------------------------------------------- workloads

# Arguments use "{t}" for the thread count. Sizes: quick mode aims at
# ~0.1-0.5 s per run with glibc on an idle 2-core machine, full at ~0.5-3 s.
C_WORKLOADS = [
    dict(name="larson", bin="pcb_larson", mt=True,
         quick=["{t}", 8, 400000, 20000, 8, 1024],
         full=["{t}", 10, 1500000, 40000, 8, 1024],
         what="server simulation: random sizes and lifetimes, arrays of "
              "blocks handed from each thread to a new one every round",
         after="larson (Larson & Krishnan)"),
    dict(name="xmalloc", bin="pcb_xmalloc", mt=True,
         quick=["{t}", 15000, 256, 16, 2048],
         full=["{t}", 60000, 256, 16, 2048],
         what="producer/consumer pairs: one thread allocates, another "
              "frees (1 thread: produces and consumes itself)",
         after="xmalloc-test (Lever & Boreham)"),
    dict(name="cache-scratch", bin="pcb_cache_scratch", mt=True,
         quick=["{t}", 100000, 8, 500],
         full=["{t}", 400000, 8, 500],
         what="passive false sharing: objects freed by one thread reused "
              "by others, then written hard",
         after="Hoard cache-scratch"),
    dict(name="cache-thrash", bin="pcb_cache_thrash", mt=True,
         quick=["{t}", 100000, 8, 500],
         full=["{t}", 400000, 8, 500],
         what="active false sharing: concurrent threads allocate small "
              "objects and write them hard",
         after="Hoard cache-thrash"),
    dict(name="churn", bin="pcb_churn", mt=True,
         quick=["{t}", 3000000, 1000, 8, 32768],
         full=["{t}", 12000000, 1000, 8, 32768],
         what="random-size (1/size, 8 B-32 KiB) alloc/free churn over a "
              "per-thread working set",
         after="glibc bench-malloc-thread, alloc-test"),
    dict(name="smallobj", bin="pcb_smallobj", mt=False,
         quick=["{t}", 40000, 50000],
         full=["{t}", 200000, 50000],
         what="single-thread program: immutable bignum arithmetic plus a "
              "treap symbol table of strings and cells (mixed lifetimes)",
         after="cfrac, espresso"),
    dict(name="realloc-grow", bin="pcb_realloc_grow", mt=True,
         quick=["{t}", 400000, 1000, 262144],
         full=["{t}", 1200000, 1000, 1048576],
         what="many buffers grown by appends with realloc (exact and 1.5x), "
              "contents verified",
         after="string builders / vectors"),
    dict(name="large", bin="pcb_large", mt=True,
         quick=["{t}", 80, 16, 65536, 33554432],
         full=["{t}", 400, 16, 65536, 33554432],
         what="large-block churn, 64 KiB-32 MiB log-uniform, every page "
              "touched",
         after="mmap-path stress"),
    dict(name="thread-churn", bin="pcb_thread_churn", mt=True,
         quick=["{t}", 3000, 200, 4096],
         full=["{t}", 12000, 200, 4096],
         what="waves of short-lived threads that allocate, free, and leave "
              "blocks for the next wave to free",
         after="thread-per-request servers"),
]

PROGRAM_WORKLOADS = [
    dict(name="python", kind="python", mt=False, quick=3, full=20,
         what="CPython with PYTHONMALLOC=malloc running bench/workloads/"
              "pyalloc.py (dicts, strings, json, trees, bigints)",
         after="real program"),
    dict(name="redis", kind="redis", mt=False, quick=20000, full=80000,
         what="redis-server on 127.0.0.1 driven by redis-benchmark "
              "(-P 16, random keys), then a deterministic load checked "
              "through the protocol",
         after="real program"),
    dict(name="sqlite", kind="sqlite", mt=False, quick=40000, full=250000,
         what="sqlite3 :memory: building, indexing, grouping, joining, "
              "updating and vacuuming a large table",
         after="real program"),
]


def all_workloads():
    out = []
    for w in C_WORKLOADS:
        d = dict(w)
        d["kind"] = "c"
        out.append(d)
    out.extend(dict(w) for w in PROGRAM_WORKLOADS)
    return out


# ------------------------------------------------------------------- helpers

def have_root():
    return hasattr(os, "geteuid") and os.geteuid() == 0


_apt_updated = False


def apt_install(pkgs, why, allow):
    """Install Debian packages if we may; returns True on success."""
    global _apt_updated
    if not allow:
        log("note: %s missing (%s); not installing (--no-install)"
            % (" ".join(pkgs), why))
        return False
    if not have_root() or not shutil.which("apt-get"):
        log("note: %s missing (%s) and apt-get is not usable here"
            % (" ".join(pkgs), why))
        return False
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for attempt in range(2):
        log("installing %s with apt-get (%s)..." % (" ".join(pkgs), why))
        r = subprocess.run(["apt-get", "install", "-y", "-q"] + pkgs,
                           env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
        if r.returncode == 0:
            return True
        if _apt_updated:
            break
        _apt_updated = True
        subprocess.run(["apt-get", "update", "-q"], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log("note: could not install %s: %s" % (" ".join(pkgs),
                                             r.stderr.strip()[-300:]))
    return False


def find_lib(soname):
    for d in LIB_DIRS:
        p = os.path.join(d, soname)
        if os.path.exists(p):
            return p
    try:
        out = subprocess.run(["ldconfig", "-p"], capture_output=True,
                             text=True).stdout
        for line in out.splitlines():
            if line.strip().startswith(soname + " "):
                return line.rsplit("=>", 1)[1].strip()
    except OSError:
        pass
    return None


def pkg_version(pkg):
    try:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg],
                           capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else ""
    except OSError:
        return ""


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
    __slots__ = ("ok", "status", "wall", "cpu", "rss_kib", "checksum",
                 "detail")

    def __init__(self):
        self.ok = False
        self.status = "not run"
        self.wall = self.cpu = float("nan")
        self.rss_kib = 0
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


SPAWN = None  # path of the pcb_spawn launcher, set once the bins are found


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
                [SPAWN, self.result, preload or "-"] + list(argv), env=env,
                stdin=fin, stdout=stdout, stderr=stderr,
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


CHECK_RE = re.compile(r"checksum:\s*(\S+)")


def extract_checksum(stdout):
    m = CHECK_RE.findall(stdout)
    if m:
        return m[-1]
    return "sha1:" + hashlib.sha1(stdout.encode()).hexdigest()[:16]


# ------------------------------------------------------------- mini RESP

class Resp:
    """Just enough of the Redis protocol for pipelined commands."""

    def __init__(self, port, timeout=30.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    @staticmethod
    def encode(*args):
        parts = [b"*%d\r\n" % len(args)]
        for a in args:
            if not isinstance(a, bytes):
                a = str(a).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(parts)

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            raise RuntimeError("redis error: " + rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise RuntimeError("bad RESP reply %r" % line[:40])

    def pipeline(self, cmds, chunk=2000):
        replies = []
        for i in range(0, len(cmds), chunk):
            part = cmds[i:i + chunk]
            self.sock.sendall(b"".join(self.encode(*c) for c in part))
            replies.extend(self.reply() for _ in part)
        return replies

    def call(self, *args):
        return self.pipeline([args])[0]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def redis_deterministic_load(r, n):
    """A fixed, allocator-independent sequence of writes with a checkable
    result: strings of varied sizes, lists, hashes, sets, deletes, appends."""
    r.call("FLUSHALL")
    cmds = []
    for i in range(n):
        size = 8 + (i * 2654435761) % 1500
        cmds.append(("SET", "k:%d" % i, ("v%d-" % i) * (size // 8 + 1)))
        cmds.append(("RPUSH", "l:%d" % (i % 200), "item-%d" % i))
        cmds.append(("HSET", "h:%d" % (i % 500), "f%d" % i, "x" * (i % 64)))
        cmds.append(("SADD", "s:%d" % (i % 100), i * 7))
        if i % 3 == 0 and i >= 30:
            cmds.append(("DEL", "k:%d" % (i - 30)))
        if i % 5 == 0:
            cmds.append(("APPEND", "k:%d" % (i // 2), "tail" * (i % 40)))
        if i % 7 == 0:
            cmds.append(("LPOP", "l:%d" % (i % 200)))
    h = hashlib.sha1()
    for rep in r.pipeline(cmds):
        h.update(repr(rep).encode())
    lua = ("local s = 0 for i = 0, tonumber(ARGV[1]) - 1 do "
           "s = s + redis.call('STRLEN', 'k:' .. i) end "
           "local l = 0 for i = 0, 199 do "
           "l = l + redis.call('LLEN', 'l:' .. i) end "
           "local hh = 0 for i = 0, 499 do "
           "hh = hh + redis.call('HLEN', 'h:' .. i) end "
           "return {s, l, hh}")
    res = r.call("EVAL", lua, 0, n)
    dbsize = r.call("DBSIZE")
    h.update(repr((res, dbsize)).encode())
    return "%s/%s" % (h.hexdigest()[:16], dbsize)


# ------------------------------------------------------------------ runner

class Bench:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.mode = "quick" if args.quick else "full"
        self.allow_install = not args.no_install
        self.bin_dir = None
        self.allocs = []          # [(name, preload path or None)]
        self.alloc_info = {}      # name -> description
        self.results = {}         # (workload, threads, alloc) -> [RunResult]
        self.configs = []         # [(workload dict, threads)]
        self.errors = []
        self.notes = []
        self.tmpdir = tempfile.mkdtemp(prefix="pcb-")

    # ----------------------------------------------------------- discovery
    def find_bins(self):
        global SPAWN
        cands = []
        if self.args.bin_dir:
            cands.append(self.args.bin_dir)
        cands += [os.path.join(self.args.build_dir, "bench"),
                  os.path.join(self.args.build_dir, "bench-only")]
        for d in cands:
            if os.path.exists(os.path.join(d, "pcb_spawn")):
                self.bin_dir = os.path.abspath(d)
                SPAWN = os.path.join(self.bin_dir, "pcb_spawn")
                return
        error("benchmark binaries not found in %s; build first "
              "(bench/run.sh does it)" % ", ".join(cands))
        sys.exit(2)

    def probe(self, name, preload):
        """Check that the preload really provides malloc."""
        try:
            code, to, _, _, _, so, se = spawn_measured(
                [os.path.join(self.bin_dir, "pcb_probe")], preload,
                timeout=30)
        except OSError as e:
            return "cannot run probe: %s" % e
        if code != 0:
            return "probe failed (%s): %s" % (describe_status(code, to),
                                              se.strip()[-300:])
        m = re.search(r"malloc-from: (.*)", so)
        where = os.path.realpath(m.group(1).strip()) if m else "?"
        if preload:
            if where != os.path.realpath(preload):
                return ("LD_PRELOAD did not take effect: malloc comes from "
                        "%s (%s)" % (where, se.strip()[-200:]))
        elif "libc.so" not in os.path.basename(where):
            return "malloc comes from %s, not glibc" % where
        return None

    def setup_allocators(self):
        wanted = ALL_ALLOCATORS
        if self.args.allocators:
            wanted = [a.strip() for a in self.args.allocators.split(",")
                      if a.strip()]
            bad = [a for a in wanted if a not in ALL_ALLOCATORS]
            if bad:
                error("unknown allocator(s) %s; known: %s"
                      % (",".join(bad), ",".join(ALL_ALLOCATORS)))
                sys.exit(2)
        cands = []
        for name in ALL_ALLOCATORS:
            if name not in wanted:
                continue
            if name == "pcmalloc":
                lib = self.args.pcmalloc or os.path.join(
                    self.args.build_dir, "libpcmalloc.so")
                # The table is pcmalloc against the others: without
                # pcmalloc's own column, or with a column measured from an
                # old build, it would say nothing true.
                if not os.path.exists(lib):
                    error("pcmalloc: %s not found (build it: cmake -S . -B "
                          "build -DCMAKE_BUILD_TYPE=Release && cmake --build "
                          "build; bench/run.sh does both)" % lib)
                    sys.exit(2)
                lib = os.path.abspath(lib)
                stale = [] if self.args.pcmalloc else stale_sources(lib)
                if stale:
                    error("pcmalloc: %s is older than %s: rebuild it "
                          "(bench/run.sh builds before running)"
                          % (lib, ", ".join(stale[:3])))
                    sys.exit(2)
                built = datetime.datetime.fromtimestamp(
                    os.path.getmtime(lib)).strftime("%Y-%m-%d %H:%M")
                cands.append((name, lib, "%s (built %s)"
                              % (os.path.relpath(lib, ROOT), built)))
            elif name == "glibc":
                cands.append((name, None, "glibc %s (no preload)"
                              % platform.libc_ver()[1]))
            else:
                soname, pkg = [(s, p) for n, s, p in OTHER_ALLOCATORS
                               if n == name][0]
                lib = find_lib(soname)
                if not lib and apt_install([pkg], "allocator " + name,
                                           self.allow_install):
                    lib = find_lib(soname)
                if not lib:
                    log("%s: %s not installed - skipping" % (name, soname))
                    self.notes.append("%s not installed: skipped" % name)
                    continue
                ver = pkg_version(pkg)
                cands.append((name, lib, "%s %s" % (lib, ver)))
        # --extra NAME=PATH: another build to compare, e.g. a variant.
        for spec in self.args.extra or []:
            name, _, lib = spec.partition("=")
            if not name or not os.path.exists(lib):
                error("--extra %s: want NAME=PATH to a library" % spec)
                sys.exit(2)
            cands.append((name, os.path.abspath(lib), "%s (%s)" %
                          (name, os.path.abspath(lib))))
        for name, lib, desc in cands:
            why = self.probe(name, lib)
            if why:
                error("%s unusable: %s" % (name, why))
                self.errors.append("%s unusable: %s" % (name, why))
                continue
            self.allocs.append((name, lib))
            self.alloc_info[name] = desc
        if not self.allocs:
            error("no allocator left to benchmark")
            sys.exit(2)
        self.ref = self.allocs[0][0]
        log("allocators: %s (reference: %s)"
            % (", ".join(a for a, _ in self.allocs), self.ref))

    def setup_workloads(self):
        ws = all_workloads()
        if self.args.only:
            names = [n.strip() for n in self.args.only.split(",")
                     if n.strip()]
            known = {w["name"] for w in ws}
            bad = [n for n in names if n not in known]
            if bad:
                error("unknown workload(s) %s; known: %s"
                      % (",".join(bad), ", ".join(sorted(known))))
                sys.exit(2)
            ws = [w for w in ws if w["name"] in names]
        if self.args.threads:
            tlist = [int(x) for x in self.args.threads.split(",")]
        else:
            tlist = [1, 4] if self.quick else [1, 2, 4, 8]
        for w in ws:
            if w["kind"] == "python":
                w["exe"] = (self.args.python or
                            ("/usr/bin/python3" if os.path.exists(
                                "/usr/bin/python3") else shutil.which(
                                    "python3")))
                if not w["exe"]:
                    self.skip(w, "no python3 found")
                    continue
            elif w["kind"] == "sqlite":
                w["exe"] = shutil.which("sqlite3")
                if not w["exe"] and apt_install(["sqlite3"], "sqlite "
                                                "workload",
                                                self.allow_install):
                    w["exe"] = shutil.which("sqlite3")
                if not w["exe"]:
                    self.skip(w, "sqlite3 not available")
                    continue
                size = w["quick" if self.quick else "full"]
                with open(os.path.join(WORKLOAD_DIR, "sqlite.sql")) as f:
                    sql = f.read().replace("@ROWS@", str(size))
                w["sql"] = os.path.join(self.tmpdir, "sqlite.sql")
                with open(w["sql"], "w") as f:
                    f.write(sql)
            elif w["kind"] == "redis":
                if not (shutil.which("redis-server") and
                        shutil.which("redis-benchmark")):
                    apt_install(["redis-server", "redis-tools"],
                                "redis workload", self.allow_install)
                if not (shutil.which("redis-server") and
                        shutil.which("redis-benchmark")):
                    self.skip(w, "redis-server/redis-benchmark not "
                              "available")
                    continue
                shim = os.path.join(self.bin_dir, "libpcb_glibc_shim.so")
                w["glibc_shim"] = shim if os.path.exists(shim) else None
                if not w["glibc_shim"]:
                    self.notes.append("redis: glibc shim missing, the glibc "
                                      "column uses the allocator redis is "
                                      "linked with")
            for t in (tlist if w["mt"] else [1]):
                self.configs.append((w, t))

    def skip(self, w, why):
        log("skipping workload %s: %s" % (w["name"], why))
        self.notes.append("%s skipped: %s" % (w["name"], why))

    # ------------------------------------------------------------- running
    def c_argv(self, w, t):
        spec = w["quick" if self.quick else "full"]
        return ([os.path.join(self.bin_dir, w["bin"])] +
                [str(a).replace("{t}", str(t)) for a in spec])

    def run_one(self, w, t, alloc, preload):
        r = RunResult()
        timeout = self.args.timeout
        try:
            if w["kind"] == "c":
                res = spawn_measured(self.c_argv(w, t), preload,
                                     timeout=timeout)
            elif w["kind"] == "python":
                env = dict(PYTHONMALLOC="malloc", PYTHONHASHSEED="0",
                           PYTHONDONTWRITEBYTECODE="1")
                size = w["quick" if self.quick else "full"]
                res = spawn_measured(
                    [w["exe"], os.path.join(WORKLOAD_DIR, "pyalloc.py"),
                     str(size)], preload, env, timeout=timeout)
            elif w["kind"] == "sqlite":
                res = spawn_measured([w["exe"], ":memory:"], preload,
                                     stdin_path=w["sql"], timeout=timeout)
            elif w["kind"] == "redis":
                return self.run_redis(w, alloc, preload, timeout)
            else:
                raise AssertionError(w["kind"])
        except OSError as e:
            r.status = "cannot run: %s" % e
            return r
        code, to, r.wall, r.cpu, r.rss_kib, so, se = res
        if code != 0 or to:
            r.status = describe_status(code, to)
            r.detail = se.strip()[-500:]
            return r
        r.ok = True
        r.status = "ok"
        r.checksum = extract_checksum(so)
        return r

    def run_redis(self, w, alloc, preload, timeout):
        r = RunResult()
        if alloc == "glibc" and w.get("glibc_shim"):
            # Debian's redis-server links libjemalloc: force glibc malloc
            preload = w["glibc_shim"]
        n = w["quick" if self.quick else "full"]
        port = free_port()
        rdir = tempfile.mkdtemp(prefix="redis-", dir=self.tmpdir)
        argv = [shutil.which("redis-server"), "--port", str(port),
                "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", rdir, "--loglevel", "warning", "--daemonize", "no",
                "--protected-mode", "yes", "--io-threads", "1"]
        logf = open(os.path.join(rdir, "log"), "w+b")
        server = Spawned(argv, preload, stdout=logf, stderr=subprocess.STDOUT,
                         timeout=timeout)
        client = None
        wall = float("nan")
        checksum = None
        problem = None
        try:
            deadline = time.monotonic() + 15
            while True:
                try:
                    client = Resp(port, timeout=timeout)
                    client.call("PING")
                    break
                except (OSError, RuntimeError, ConnectionError):
                    if client:
                        client.close()
                        client = None
                    if (server.poll() is not None or
                            time.monotonic() > deadline):
                        raise RuntimeError("redis-server did not start")
                    time.sleep(0.05)
            t0 = time.perf_counter()
            bench = subprocess.run(
                [shutil.which("redis-benchmark"), "-h", "127.0.0.1", "-p",
                 str(port), "-n", str(n), "-q", "-P", "16", "-r", "100000",
                 "-d", "128", "-t", "set,get,incr,lpush,lpop,sadd,hset,"
                 "lrange_100"], env=base_env(), capture_output=True,
                text=True, timeout=timeout)
            if bench.returncode != 0:
                raise RuntimeError("redis-benchmark failed: %s"
                                   % bench.stderr.strip()[-300:])
            got = re.findall(r"[0-9.]+ requests per second",
                             bench.stdout)
            checksum = redis_deterministic_load(client, max(1000, n // 5))
            checksum += "/%dtests" % len(got)
            wall = time.perf_counter() - t0
            try:
                client.sock.sendall(Resp.encode("SHUTDOWN", "NOSAVE"))
                client.sock.recv(100)
            except OSError:
                pass
        except (RuntimeError, OSError, ConnectionError,
                subprocess.TimeoutExpired) as e:
            problem = str(e)
            server.kill()
        finally:
            if client:
                client.close()
        code, timed_out, _, cpu, rss = server.wait()
        logf.seek(0)
        server_log = logf.read().decode("utf-8", "replace")
        logf.close()
        shutil.rmtree(rdir, ignore_errors=True)
        if problem or code != 0 or timed_out:
            r.status = describe_status(code, timed_out)
            if problem:
                r.status = "%s (redis-server %s)" % (problem, r.status)
            r.detail = server_log.strip()[-500:]
            return r
        r.ok = True
        r.status = "ok"
        r.wall = wall
        r.cpu = cpu
        r.rss_kib = rss
        r.checksum = checksum
        return r

    def run_all(self):
        reps = self.args.reps or (3 if self.quick else 5)
        budget = self.args.budget
        if budget is None:
            budget = 170.0 if self.quick else 0.0
        total = len(self.configs) * reps * len(self.allocs)
        done = 0
        start = time.monotonic()
        reduced = False
        for ci, (w, t) in enumerate(self.configs):
            cfg_reps = reps
            if budget and time.monotonic() - start > budget and reps > 1:
                cfg_reps = 1
                if not reduced:
                    reduced = True
                    msg = ("time budget of %.0f s used up: remaining "
                           "workloads run 1 repetition (see --budget)"
                           % budget)
                    log("warning: " + msg)
                    self.notes.append(msg)
            failed = set()
            for rep in range(cfg_reps):
                for alloc, preload in self.allocs:
                    key = (w["name"], t, alloc)
                    lst = self.results.setdefault(key, [])
                    done += 1
                    if alloc in failed:
                        continue
                    r = self.run_one(w, t, alloc, preload)
                    lst.append(r)
                    tag = "[%3d/%d] %-13s t=%d rep %d/%d %-9s" % (
                        done, total, w["name"], t, rep + 1, cfg_reps, alloc)
                    if r.ok:
                        log("%s %7.3fs cpu %7.3fs rss %8.1f MiB  %s"
                            % (tag, r.wall, r.cpu, r.rss_kib / 1024.0,
                               r.checksum))
                    else:
                        failed.add(alloc)
                        msg = ("%s t=%d under %s: %s" % (w["name"], t, alloc,
                                                          r.status))
                        error(msg + (("\n  " + r.detail.replace(
                            "\n", "\n  ")) if r.detail else ""))
                        self.errors.append(msg)
            self.check_checksums(w, t)
        self.elapsed = time.monotonic() - start

    def check_checksums(self, w, t):
        sums = {}
        for alloc, _ in self.allocs:
            for r in self.results.get((w["name"], t, alloc), []):
                if r.ok:
                    sums.setdefault(alloc, set()).add(r.checksum)
        distinct = set().union(*sums.values()) if sums else set()
        self.mismatch = getattr(self, "mismatch", set())
        if len(distinct) > 1:
            self.mismatch.add((w["name"], t))
            detail = ", ".join("%s=%s" % (a, "/".join(sorted(s)))
                               for a, s in sums.items())
            msg = "CHECKSUM MISMATCH in %s t=%d: %s" % (w["name"], t, detail)
            error(msg)
            self.errors.append(msg)

    # ------------------------------------------------------------- summary
    def summary(self):
        """rows: list of dicts per (workload, threads, alloc)."""
        rows = []
        for w, t in self.configs:
            for alloc, _ in self.allocs:
                rs = self.results.get((w["name"], t, alloc), [])
                ok = [r for r in rs if r.ok]
                bad = [r for r in rs if not r.ok]
                row = dict(workload=w["name"], threads=t, allocator=alloc,
                           reps=len(ok))
                if ok and not bad:
                    row["wall"] = statistics.median(r.wall for r in ok)
                    row["cpu"] = statistics.median(r.cpu for r in ok)
                    row["rss"] = statistics.median(r.rss_kib for r in ok)
                    row["checksum"] = ok[0].checksum
                    row["status"] = "ok"
                    if (w["name"], t) in getattr(self, "mismatch", set()):
                        row["status"] = "MISMATCH"
                else:
                    row["status"] = bad[0].status if bad else "not run"
                    row["checksum"] = ""
                rows.append(row)
        ref = {}
        for row in rows:
            if row["allocator"] == self.ref and row["status"] == "ok":
                ref[(row["workload"], row["threads"])] = row
        for row in rows:
            rr = ref.get((row["workload"], row["threads"]))
            for m in ("wall", "cpu", "rss"):
                v = row.get(m)
                row[m + "_ratio"] = (v / rr[m] if rr and v is not None and
                                     rr[m] > 0 and row["status"] == "ok"
                                     else None)
        return rows

    def geomeans(self, rows, metric):
        out = {}
        for alloc, _ in self.allocs:
            vals = [r[metric + "_ratio"] for r in rows
                    if r["allocator"] == alloc and r[metric + "_ratio"]]
            out[alloc] = (math.exp(sum(math.log(v) for v in vals) /
                                   len(vals)) if vals else None, len(vals))
        return out

    def markdown(self, rows):
        allocs = [a for a, _ in self.allocs]
        by = {(r["workload"], r["threads"], r["allocator"]): r for r in rows}
        L = []
        L.append("## pcmalloc benchmarks (%s mode)" % self.mode)
        L.append("")
        L.append("%s; %d CPUs; %s; median of %s repetitions, allocators "
                 "interleaved; ratios are allocator / %s (> 1: slower or "
                 "bigger than %s)." % (
                     datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
                     os.cpu_count() or 0, platform.platform(terse=True),
                     self.args.reps or (3 if self.quick else 5), self.ref,
                     self.ref))
        L.append("")
        for a in allocs:
            L.append("- %s: %s" % (a, self.alloc_info.get(a, "")))
        L.append("")
        titles = [("wall", "Wall time (s)", "%.3f"),
                  ("cpu", "CPU time, user+sys (s)", "%.3f"),
                  ("rss", "Peak RSS (MiB)", "%.1f")]
        for metric, title, fmt in titles:
            L.append("### %s" % title)
            L.append("")
            L.append("| workload | thr | " + " | ".join(allocs) + " |")
            L.append("|---|--:|" + "--:|" * len(allocs))
            for w, t in self.configs:
                cells = []
                for a in allocs:
                    r = by.get((w["name"], t, a))
                    if not r or r["status"] not in ("ok", "MISMATCH"):
                        cells.append("**%s**" % (r["status"] if r else "-"))
                        continue
                    v = r[metric]
                    if metric == "rss":
                        v = v / 1024.0
                    s = fmt % v
                    if a != self.ref and r[metric + "_ratio"]:
                        s += " (%.2f)" % r[metric + "_ratio"]
                    if r["status"] == "MISMATCH":
                        s += " **MISMATCH**"
                    cells.append(s)
                L.append("| %s | %d | %s |" % (w["name"], t,
                                               " | ".join(cells)))
            gm = self.geomeans(rows, metric)
            L.append("| **geomean ratio** | | " + " | ".join(
                ("%.2f" % gm[a][0]) if gm[a][0] else "-" for a in allocs)
                + " |")
            L.append("")
        if self.errors:
            L.append("### Errors")
            L.append("")
            for e in self.errors:
                L.append("- " + e)
            L.append("")
        if self.notes:
            L.append("### Notes")
            L.append("")
            for n in self.notes:
                L.append("- " + n)
            L.append("")
        return "\n".join(L)

    def out_paths(self):
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = self.args.out or os.path.join(HERE, "results")
        if out.endswith(".csv"):
            base = out[:-4]
            os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        else:
            os.makedirs(out, exist_ok=True)
            base = os.path.join(out, "bench-%s-%s" % (self.mode, stamp))
        return base + ".csv", base + "-runs.csv", base + ".png", base

    def write_csv(self, rows, path, raw_path):
        cols = ["mode", "workload", "threads", "allocator", "reps", "status",
                "wall_median_s", "cpu_median_s", "maxrss_median_kib",
                "wall_ratio", "cpu_ratio", "rss_ratio", "reference",
                "checksum"]
        with open(path, "w", newline="") as f:
            wr = csv.writer(f)
            wr.writerow(cols)
            for r in rows:
                def num(k, fmt="%.6f"):
                    v = r.get(k)
                    return "" if v is None else fmt % v
                wr.writerow([self.mode, r["workload"], r["threads"],
                             r["allocator"], r["reps"], r["status"],
                             num("wall"), num("cpu"), num("rss", "%d"),
                             num("wall_ratio", "%.4f"),
                             num("cpu_ratio", "%.4f"),
                             num("rss_ratio", "%.4f"), self.ref,
                             r["checksum"]])
        with open(raw_path, "w", newline="") as f:
            wr = csv.writer(f)
            wr.writerow(["mode", "workload", "threads", "allocator", "rep",
                         "status", "wall_s", "cpu_s", "maxrss_kib",
                         "checksum"])
            for w, t in self.configs:
                for a, _ in self.allocs:
                    for i, r in enumerate(self.results.get((w["name"], t, a),
                                                           [])):
                        wr.writerow([self.mode, w["name"], t, a, i + 1,
                                     r.status, "%.6f" % r.wall,
                                     "%.6f" % r.cpu, r.rss_kib, r.checksum])

    def chart(self, rows, png, base):
        gp = shutil.which("gnuplot")
        if not gp and apt_install(["gnuplot-nox"], "chart",
                                  self.allow_install):
            gp = shutil.which("gnuplot")
        if not gp:
            log("note: gnuplot not available - no chart")
            self.notes.append("gnuplot not available: no chart")
            return None
        others = [a for a, _ in self.allocs if a != self.ref]
        if not others:
            log("note: only one allocator - no chart")
            return None
        by = {(r["workload"], r["threads"], r["allocator"]): r for r in rows}
        labels = ["%s/%d" % (w["name"], t) if w["mt"] else w["name"]
                  for w, t in self.configs]
        n, m = len(self.configs), len(others)
        width = 0.8 / m
        datf = base + "-chart.dat"
        rng = {}
        with open(datf, "w") as f:
            for panel in ("wall", "rss"):
                lo, hi = 1.0, 1.0
                for j, a in enumerate(others):
                    f.write("# %s %s\n" % (panel, a))
                    wrote = False
                    for i, (w, t) in enumerate(self.configs):
                        r = by.get((w["name"], t, a))
                        v = r and r.get(panel + "_ratio")
                        if not v:
                            continue
                        x = i + (j - (m - 1) / 2.0) * width
                        f.write("%.4f %.5f %.4f %.4f %.5f %.5f\n" % (
                            x, v, x - width / 2, x + width / 2, min(1, v),
                            max(1, v)))
                        lo, hi = min(lo, v), max(hi, v)
                        wrote = True
                    if not wrote:  # keep gnuplot's index numbering
                        f.write("nan nan nan nan nan nan\n")
                    f.write("\n\n")
                rng[panel] = (lo / 1.25, hi * 1.25)
        tics = [0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 1, 1.1, 1.25, 1.5,
                2, 3, 5, 10, 20, 50, 100]
        ytics = ", ".join('"%g" %g' % (v, v) for v in tics)
        xt = ", ".join('"%s" %d' % (l, i) for i, l in enumerate(labels))
        colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"]
        W = max(1000, 70 * n + 200)

        def plots(panel_idx):
            ps = []
            for j, a in enumerate(others):
                ps.append("'%s' index %d using 1:2:3:4:5:6 with boxxyerror "
                          "fs solid 0.8 lc rgb '%s' title '%s'" % (
                              datf, panel_idx * m + j,
                              colors[j % len(colors)], a))
            return ", ".join(ps)

        script = """
set terminal pngcairo size %(W)d,1000 font "sans,9"
set output '%(png)s'
set multiplot layout 2,1 title "pcmalloc benchmarks (%(mode)s): ratio to %(ref)s, log scale (above 1 = worse than %(ref)s)"
set logscale y
set ytics (%(ytics)s)
set xrange [-0.6:%(xmax)g]
set xtics (%(xt)s) rotate by 40 right
set grid ytics
set key outside right top
set arrow from -0.6,1 to %(xmax)g,1 nohead lw 2 lc rgb 'black' front
set ylabel "wall time / %(ref)s"
set yrange [%(wlo)g:%(whi)g]
plot %(p0)s
set ylabel "peak RSS / %(ref)s"
set yrange [%(rlo)g:%(rhi)g]
plot %(p1)s
unset multiplot
""" % dict(W=W, png=png, mode=self.mode, ref=self.ref, ytics=ytics,
           wlo=rng["wall"][0], whi=rng["wall"][1], rlo=rng["rss"][0],
           rhi=rng["rss"][1],
           xmax=n - 0.4, xt=xt, p0=plots(0), p1=plots(1))
        gpf = base + "-chart.gp"
        with open(gpf, "w") as f:
            f.write(script)
        r = subprocess.run([gp, gpf], capture_output=True, text=True)
        if r.returncode != 0 and "pngcairo" in r.stderr:
            with open(gpf, "w") as f:
                f.write(script.replace("pngcairo", "png"))
            r = subprocess.run([gp, gpf], capture_output=True, text=True)
        if r.returncode != 0:
            log("note: gnuplot failed, no chart: %s (script kept: %s)"
                % (r.stderr.strip()[-300:], gpf))
            self.notes.append("gnuplot failed: no chart")
            return None
        for f in (gpf, datf):
            os.unlink(f)
        return png

    def cleanup(self):
        shutil.rmtree(self.tmpdir, ignore_errors=True)


def list_workloads():
    for w in all_workloads():
        print("%-14s %-3s %s  [after: %s]" % (
            w["name"], "MT" if w["mt"] else "1T", w["what"], w["after"]))


def stale_sources(lib):
    """Library sources newer than lib (an out-of-date build)."""
    t = os.path.getmtime(lib)
    newer = []
    for d in ("src", "include"):
        for f in sorted(os.listdir(os.path.join(ROOT, d))):
            path = os.path.join(ROOT, d, f)
            if os.path.isfile(path) and os.path.getmtime(path) > t:
                newer.append(os.path.join(d, f))
    return newer


def main():
    ap = argparse.ArgumentParser(
        description="Benchmark pcmalloc against glibc, jemalloc, tcmalloc "
                    "and mimalloc (LD_PRELOAD).")
    ap.add_argument("--quick", action="store_true",
                    help="quick mode: 3 reps, threads 1 and 4, small sizes "
                         "(about 2 minutes)")
    ap.add_argument("--only", metavar="WORKLOAD[,W2...]",
                    help="run only these workloads (see --list)")
    ap.add_argument("--extra", metavar="NAME=PATH", action="append",
                    help="also run a library of your own under this name "
                         "(repeatable), e.g. a build variant")
    ap.add_argument("--allocators", metavar="A,B,...",
                    help="allocators to run (default: all of %s that are "
                         "available)" % ",".join(ALL_ALLOCATORS))
    ap.add_argument("--reps", type=int, metavar="N",
                    help="repetitions per allocator (default 3 quick, 5 full)")
    ap.add_argument("--threads", metavar="1,2,...",
                    help="thread counts for multi-threaded workloads "
                         "(default 1,4 quick; 1,2,4,8 full)")
    ap.add_argument("--out", metavar="DIR",
                    help="directory for CSV and PNG (default bench/results), "
                         "or a FILE.csv path")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"),
                    help="cmake build directory (default: build/)")
    ap.add_argument("--bin-dir", help="directory with the pcb_* workload "
                    "binaries (default: BUILD/bench)")
    ap.add_argument("--pcmalloc", metavar="LIB",
                    help="pcmalloc shared library (default: "
                         "BUILD/libpcmalloc.so)")
    ap.add_argument("--python", metavar="EXE",
                    help="python3 for the python workload (default "
                         "/usr/bin/python3)")
    ap.add_argument("--timeout", type=float, default=None,
                    help="seconds before a run is killed (default 60 quick, "
                         "300 full)")
    ap.add_argument("--budget", type=float, default=None,
                    help="after this many seconds, remaining workloads run "
                         "once (default 170 in quick mode, 0 = off)")
    ap.add_argument("--no-install", action="store_true",
                    help="never apt-get install missing tools/allocators")
    ap.add_argument("--no-chart", action="store_true", help="skip the PNG")
    ap.add_argument("--no-build", action="store_true",
                    help="(for run.sh) do not build; ignored here")
    ap.add_argument("--list", action="store_true",
                    help="list workloads and exit")
    args = ap.parse_args()
    if args.list:
        list_workloads()
        return 0
    if args.timeout is None:
        args.timeout = 60.0 if args.quick else 300.0
    if args.reps is not None and args.reps < 1:
        ap.error("--reps must be >= 1")

    b = Bench(args)
    try:
        b.find_bins()
        b.setup_allocators()
        b.setup_workloads()
        if not b.configs:
            error("no workload to run")
            return 2
        b.run_all()
        rows = b.summary()
        csv_path, raw_path, png, base = b.out_paths()
        b.write_csv(rows, csv_path, raw_path)
        chart = None if args.no_chart else b.chart(rows, png, base)
        print(b.markdown(rows))
        print("CSV: %s (per run: %s)" % (os.path.relpath(csv_path),
                                        os.path.relpath(raw_path)))
        if chart:
            print("Chart: %s" % os.path.relpath(chart))
        log("finished in %.0f s" % b.elapsed)
    finally:
        b.cleanup()
    if b.errors:
        error("%d error(s), see above (checksum mismatches, crashes, "
              "timeouts)" % len(b.errors))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
