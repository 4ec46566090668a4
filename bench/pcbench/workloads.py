"""The table of workloads, and choosing and preparing the ones to run."""
import os
import shutil
import sys

from .log import error, log
from .packages import apt_install
from .paths import WORKLOAD_DIR

# Arguments use "{t}" for the thread count, or are functions of it. Sizes:
# quick mode aims at ~0.1-0.5 s per run with glibc on an idle 2-core
# machine, full at ~0.5-3 s. "optional": the binary may be missing (a C++
# workload without a C++ compiler or TBB); it is then skipped with a note.
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
    dict(name="realloc-big", bin="pcb_realloc_big", mt=True,
         quick=["{t}", 4, 16777216],
         full=["{t}", 12, 67108864],
         what="big buffers (1 MiB up to 16/64 MiB) grown by 64-byte "
              "appends and realloc by an eighth, contents verified, freed",
         after="Python list/bytearray growth, file slurping"),
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
    # issue #12's rows (mimalloc-bench cases where a peer led), then the
    # patterns of the VFX programs pcmalloc is for
    dict(name="xmalloc-64", bin="pcb_xmalloc", mt=True,
         quick=["{t}", 600, 4096, 64, 64],
         full=["{t}", 2000, 4096, 64, 64],
         what="producer/consumer pairs passing batches of 4096 64-byte "
              "blocks: every free remote, one size",
         after="xmalloc-test -w N -s 64"),
    dict(name="larson-sized", bin="pcb_larson_sized", mt=True,
         optional=True,
         quick=["{t}", 8, 400000, 20000, 8, 1000],
         full=["{t}", 10, 1500000, 40000, 8, 1000],
         what="larson with C++ new[] and sized delete[] (C++14 sized "
              "deallocation)",
         after="larson-sized"),
    dict(name="simple", bin="pcb_simple", mt=False,
         quick=["{t}", 500000], full=["{t}", 4000000],
         what="one thread: 25..1600 blocks of one size allocated, written, "
              "freed half FIFO half LIFO, sizes 16 B..4 KiB",
         after="glibc bench-malloc-simple"),
    dict(name="alloc-test", bin="pcb_alloc_test", mt=True,
         quick=["{t}", 3000000, 262144, 13],
         full=["{t}", 20000000, 262144, 13],
         what="per-thread slots, random alloc (every byte written) or "
              "free, sizes in halving bands 8 B..8 KiB, local frees",
         after="alloc-test"),
    dict(name="mleak", bin="pcb_mleak", mt=False,
         quick=[10, 300], full=[10, 1500],
         what="rounds of 10 threads that each leave one block behind and "
              "free another dead thread's",
         after="mleak"),
    dict(name="large-sparse", bin="pcb_large", mt=True,
         quick=["{t}", 10000, lambda t: 64 * t, 65536, 4194304, 0],
         full=["{t}", 100000, lambda t: 64 * t, 65536, 4194304, 0],
         what="large-block churn, 64 KiB-4 MiB, 64 live per thread, only "
              "the first and last bytes written (untouched pages must "
              "stay out of RSS)",
         after="issue #12's large-block case"),
    dict(name="openvdb", bin="pcb_openvdb", mt=True,
         quick=["{t}", 50000, 2], full=["{t}", 300000, 3],
         what="all threads allocate 2 KiB buffers, then free them in "
              "other chunks than they made (mostly remote frees)",
         after="OpenVDB allocator benchmark"),
    dict(name="fork", bin="pcb_fork", mt=True,
         quick=["{t}", 100, 16384], full=["{t}", 400, 16384],
         what="a 16 MiB heap that runs commands: fork, a few allocations "
              "in the child, exec /bin/true (the allocator loads again), "
              "wait; other threads allocate meanwhile (in bursts)",
         after="shells, build tools, job wrappers"),
    dict(name="usdlike", bin="pcb_usdlike", mt=True, optional=True,
         quick=["{t}", 50000, 1, 8], full=["{t}", 400000, 2, 16],
         what="C++ on a TBB pool: parallel build of prims (strings, "
              "vectors, hash maps), 64 KiB-64 MiB buffers, teardown on "
              "detached tasks; reports RSS after teardown",
         after="USD stage open/close (WorkMoveDestroyAsync)"),
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
    dict(name="shell", kind="shell", mt=False, quick=10, full=40,
         what="/bin/sh running bench/workloads/shell.sh: rounds of seven "
              "short commands (sort, sed, tr, wc, awk, grep, cut), each a "
              "new process that starts the allocator",
         after="real programs: configure scripts, build steps"),
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


def list_workloads():
    for w in all_workloads():
        print("%-14s %-3s %s  [after: %s]" % (
            w["name"], "MT" if w["mt"] else "1T", w["what"], w["after"]))


def setup_workloads(s):
    """Choose the workloads (--only) and thread counts, prepare each one
    and fill s.configs; a workload whose program is missing is skipped
    with a note."""
    ws = all_workloads()
    if s.args.only:
        names = [n.strip() for n in s.args.only.split(",")
                 if n.strip()]
        known = {w["name"] for w in ws}
        bad = [n for n in names if n not in known]
        if bad:
            error("unknown workload(s) %s; known: %s"
                  % (",".join(bad), ", ".join(sorted(known))))
            sys.exit(2)
        ws = [w for w in ws if w["name"] in names]
    if s.args.threads:
        tlist = [int(x) for x in s.args.threads.split(",")]
    else:
        tlist = [1, 4] if s.quick else [1, 2, 4, 8]
    prepare = dict(python=prepare_python, sqlite=prepare_sqlite,
                   redis=prepare_redis, shell=prepare_shell)
    for w in ws:
        why = prepare[w["kind"]](s, w) if w["kind"] in prepare else None
        if (not why and w.get("optional") and
                not os.path.exists(os.path.join(s.bin_dir, w["bin"]))):
            why = ("%s was not built (no C++ compiler, or no TBB: "
                   "libtbb-dev)" % w["bin"])
        if why:
            log("skipping workload %s: %s" % (w["name"], why))
            s.notes.append("%s skipped: %s" % (w["name"], why))
            continue
        for t in (tlist if w["mt"] else [1]):
            s.configs.append((w, t))


# Each prepare_* finds the program a workload runs and returns why the
# workload cannot run, or None.

def prepare_python(s, w):
    w["exe"] = (s.args.python or
                ("/usr/bin/python3" if os.path.exists(
                    "/usr/bin/python3") else shutil.which("python3")))
    if not w["exe"]:
        return "no python3 found"
    return None


def prepare_shell(s, w):
    missing = [p for p in ("sort", "sed", "tr", "wc", "awk", "grep", "cut")
               if not shutil.which(p)]
    if missing or not os.path.exists("/bin/sh"):
        return "missing %s" % ", ".join(missing or ["/bin/sh"])
    return None


def prepare_sqlite(s, w):
    w["exe"] = shutil.which("sqlite3")
    if not w["exe"] and apt_install(["sqlite3"], "sqlite workload",
                                    s.allow_install):
        w["exe"] = shutil.which("sqlite3")
    if not w["exe"]:
        return "sqlite3 not available"
    with open(os.path.join(WORKLOAD_DIR, "sqlite.sql")) as f:
        sql = f.read().replace("@ROWS@", str(s.size(w)))
    w["sql"] = os.path.join(s.tmpdir, "sqlite.sql")
    with open(w["sql"], "w") as f:
        f.write(sql)
    return None


def prepare_redis(s, w):
    if not (shutil.which("redis-server") and
            shutil.which("redis-benchmark")):
        apt_install(["redis-server", "redis-tools"], "redis workload",
                    s.allow_install)
    if not (shutil.which("redis-server") and
            shutil.which("redis-benchmark")):
        return "redis-server/redis-benchmark not available"
    shim = os.path.join(s.bin_dir, "libpcb_glibc_shim.so")
    w["glibc_shim"] = shim if os.path.exists(shim) else None
    if not w["glibc_shim"]:
        s.notes.append("redis: glibc shim missing, the glibc column uses "
                       "the allocator redis is linked with")
    return None
