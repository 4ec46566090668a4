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
This file holds the command line; the work is in bench/pcbench/ (its
__init__.py lists the modules). See bench/README.md.
"""
import argparse
import os
import sys

# Run from the source tree, as before the split: leave no __pycache__ in
# bench/pcbench/.
sys.dont_write_bytecode = True

from pcbench.allocators import ALL_ALLOCATORS, setup_allocators
from pcbench.chart import chart
from pcbench.log import error, log
from pcbench.paths import ROOT
from pcbench.report import markdown, out_paths, write_csv
from pcbench.runner import run_all, summary
from pcbench.session import Session
from pcbench.workloads import list_workloads, setup_workloads


def parse_args():
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
    ap.add_argument("--extra-env", metavar="NAME=VAR=VALUE",
                    action="append",
                    help="set VAR=VALUE in the environment of every run of "
                         "allocator NAME (repeatable), e.g. --extra "
                         "off=build/libpcmalloc.so --extra-env "
                         "off=PCMALLOC_CONF=guard_sample:0")
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
        return args
    if args.timeout is None:
        args.timeout = 60.0 if args.quick else 300.0
    if args.reps is not None and args.reps < 1:
        ap.error("--reps must be >= 1")
    return args


def main():
    args = parse_args()
    if args.list:
        list_workloads()
        return 0
    s = Session(args)
    try:
        s.find_bins()
        setup_allocators(s)
        setup_workloads(s)
        if not s.configs:
            error("no workload to run")
            return 2
        run_all(s)
        rows = summary(s)
        csv_path, raw_path, png, base = out_paths(s)
        write_csv(s, rows, csv_path, raw_path)
        drawn = None if args.no_chart else chart(s, rows, png, base)
        print(markdown(s, rows))
        print("CSV: %s (per run: %s)" % (os.path.relpath(csv_path),
                                        os.path.relpath(raw_path)))
        if drawn:
            print("Chart: %s" % os.path.relpath(drawn))
        log("finished in %.0f s" % s.elapsed)
    finally:
        s.cleanup()
    if s.errors:
        error("%d error(s), see above (checksum mismatches, crashes, "
              "timeouts)" % len(s.errors))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
