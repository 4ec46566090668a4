"""Running every configuration: allocators interleaved (A B C A B C ...),
repetitions, the time budget, checksum checks, and the medians of each
configuration."""
import hashlib
import os
import re
import statistics
import time

from .log import error, log
from .paths import WORKLOAD_DIR
from .redis_workload import run_redis
from .spawn import RunResult, describe_status, spawn_measured

CHECK_RE = re.compile(r"checksum:\s*(\S+)")
# A workload may report its resident set at the end (after freeing
# everything): what the allocator keeps, beside the peak.
FINAL_RSS_RE = re.compile(r"^final_rss_kib:\s*(\d+)", re.M)


def extract_checksum(stdout):
    """The last "checksum: X" a workload printed; for programs that print
    none, a hash of all their output."""
    m = CHECK_RE.findall(stdout)
    if m:
        return m[-1]
    return "sha1:" + hashlib.sha1(stdout.encode()).hexdigest()[:16]


def c_argv(s, w, t):
    return ([os.path.join(s.bin_dir, w["bin"])] +
            [str(a(t)) if callable(a) else str(a).replace("{t}", str(t))
             for a in s.size(w)])


def run_one(s, w, t, alloc, preload):
    r = RunResult()
    timeout = s.args.timeout
    aenv = s.alloc_env.get(alloc, {})   # --extra-env
    try:
        if w["kind"] == "c":
            res = spawn_measured(c_argv(s, w, t), preload, aenv,
                                 timeout=timeout)
        elif w["kind"] == "python":
            env = dict(PYTHONMALLOC="malloc", PYTHONHASHSEED="0",
                       PYTHONDONTWRITEBYTECODE="1")
            env.update(aenv)
            res = spawn_measured(
                [w["exe"], os.path.join(WORKLOAD_DIR, "pyalloc.py"),
                 str(s.size(w))], preload, env, timeout=timeout)
        elif w["kind"] == "shell":
            res = spawn_measured(
                ["/bin/sh", os.path.join(WORKLOAD_DIR, "shell.sh"),
                 str(s.size(w))], preload, aenv, timeout=timeout)
        elif w["kind"] == "sqlite":
            res = spawn_measured([w["exe"], ":memory:"], preload, aenv,
                                 stdin_path=w["sql"], timeout=timeout)
        elif w["kind"] == "redis":
            return run_redis(s, w, alloc, preload, timeout, aenv)
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
    m = FINAL_RSS_RE.search(so)
    if m:
        r.final_rss_kib = int(m.group(1))
    return r


def run_all(s):
    reps = s.reps()
    budget = s.args.budget
    if budget is None:
        budget = 170.0 if s.quick else 0.0
    progress = Progress(len(s.configs) * reps * len(s.allocs))
    start = time.monotonic()
    reduced = False
    for w, t in s.configs:
        cfg_reps = reps
        if budget and time.monotonic() - start > budget and reps > 1:
            cfg_reps = 1
            if not reduced:
                reduced = True
                msg = ("time budget of %.0f s used up: remaining "
                       "workloads run 1 repetition (see --budget)"
                       % budget)
                log("warning: " + msg)
                s.notes.append(msg)
        run_config(s, w, t, cfg_reps, progress)
        check_checksums(s, w, t)
    s.elapsed = time.monotonic() - start


class Progress:
    """Counts runs for the "[done/total]" of each progress line."""

    def __init__(self, total):
        self.total = total
        self.done = 0


def run_config(s, w, t, reps, progress):
    """reps rounds of every allocator, interleaved; an allocator that
    fails once is not run again on this configuration."""
    failed = set()
    for rep in range(reps):
        for alloc, preload in s.allocs:
            lst = s.results.setdefault((w["name"], t, alloc), [])
            progress.done += 1
            if alloc in failed:
                continue
            r = run_one(s, w, t, alloc, preload)
            lst.append(r)
            tag = "[%3d/%d] %-13s t=%d rep %d/%d %-9s" % (
                progress.done, progress.total, w["name"], t, rep + 1, reps,
                alloc)
            if r.ok:
                log("%s %7.3fs cpu %7.3fs rss %8.1f MiB  %s"
                    % (tag, r.wall, r.cpu, r.rss_kib / 1024.0, r.checksum))
            else:
                failed.add(alloc)
                msg = "%s t=%d under %s: %s" % (w["name"], t, alloc,
                                                r.status)
                error(msg + (("\n  " + r.detail.replace("\n", "\n  "))
                             if r.detail else ""))
                s.errors.append(msg)


def check_checksums(s, w, t):
    """Every allocator and every repetition must compute the same."""
    sums = {}
    for alloc, _ in s.allocs:
        for r in s.results.get((w["name"], t, alloc), []):
            if r.ok:
                sums.setdefault(alloc, set()).add(r.checksum)
    distinct = set().union(*sums.values()) if sums else set()
    if len(distinct) > 1:
        s.mismatch.add((w["name"], t))
        detail = ", ".join("%s=%s" % (a, "/".join(sorted(got)))
                           for a, got in sums.items())
        msg = "CHECKSUM MISMATCH in %s t=%d: %s" % (w["name"], t, detail)
        error(msg)
        s.errors.append(msg)


def summary(s):
    """One row (a dict) per (workload, threads, allocator): medians,
    status, and ratios to the reference allocator."""
    rows = []
    for w, t in s.configs:
        for alloc, _ in s.allocs:
            rs = s.results.get((w["name"], t, alloc), [])
            ok = [r for r in rs if r.ok]
            bad = [r for r in rs if not r.ok]
            row = dict(workload=w["name"], threads=t, allocator=alloc,
                       reps=len(ok))
            if ok and not bad:
                row["wall"] = statistics.median(r.wall for r in ok)
                row["cpu"] = statistics.median(r.cpu for r in ok)
                row["rss"] = statistics.median(r.rss_kib for r in ok)
                if all(r.final_rss_kib is not None for r in ok):
                    row["final_rss"] = statistics.median(
                        r.final_rss_kib for r in ok)
                row["checksum"] = ok[0].checksum
                row["status"] = "ok"
                if (w["name"], t) in s.mismatch:
                    row["status"] = "MISMATCH"
            else:
                row["status"] = bad[0].status if bad else "not run"
                row["checksum"] = ""
            rows.append(row)
    ref = {}
    for row in rows:
        if row["allocator"] == s.ref and row["status"] == "ok":
            ref[(row["workload"], row["threads"])] = row
    for row in rows:
        rr = ref.get((row["workload"], row["threads"]))
        for m in ("wall", "cpu", "rss", "final_rss"):
            v = row.get(m)
            row[m + "_ratio"] = (v / rr[m] if rr and v is not None and
                                 rr.get(m) and row["status"] == "ok"
                                 else None)
    return rows
