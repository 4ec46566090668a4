"""The redis workload: a redis-server under the allocator, driven by
redis-benchmark and then by a deterministic load whose replies make the
checksum."""
import hashlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

from .spawn import RunResult, Spawned, base_env, describe_status


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


def run_redis(s, w, alloc, preload, timeout, extra_env=None):
    """One run of the workload; the wall time is the client's, CPU time and
    peak RSS are the server's."""
    r = RunResult()
    if alloc == "glibc" and w.get("glibc_shim"):
        # Debian's redis-server links libjemalloc: force glibc malloc
        preload = w["glibc_shim"]
    n = s.size(w)
    port = free_port()
    rdir = tempfile.mkdtemp(prefix="redis-", dir=s.tmpdir)
    argv = [shutil.which("redis-server"), "--port", str(port),
            "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", rdir, "--loglevel", "warning", "--daemonize", "no",
            "--protected-mode", "yes", "--io-threads", "1"]
    logf = open(os.path.join(rdir, "log"), "w+b")
    server = Spawned(argv, preload, extra_env, stdout=logf,
                     stderr=subprocess.STDOUT, timeout=timeout)
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
