"""The state of one run of the harness, which every stage reads and adds
to: the options, the allocators and configurations chosen, the results,
and the errors and notes the report ends with."""
import os
import shutil
import sys
import tempfile

from . import spawn
from .log import error


class Session:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.mode = "quick" if args.quick else "full"
        self.allow_install = not args.no_install
        self.bin_dir = None
        self.allocs = []          # [(name, preload path or None)]
        self.alloc_info = {}      # name -> description
        self.alloc_env = {}       # name -> {VAR: VALUE} (--extra-env)
        self.ref = None           # the allocator ratios are taken against
        self.results = {}         # (workload, threads, alloc) -> [RunResult]
        self.configs = []         # [(workload dict, threads)]
        self.mismatch = set()     # (workload, threads) whose checksums differ
        self.errors = []
        self.notes = []
        self.elapsed = 0.0
        self.tmpdir = tempfile.mkdtemp(prefix="pcb-")

    def size(self, w):
        """The workload's size argument for this mode."""
        return w["quick" if self.quick else "full"]

    def reps(self):
        return self.args.reps or (3 if self.quick else 5)

    def find_bins(self):
        cands = []
        if self.args.bin_dir:
            cands.append(self.args.bin_dir)
        cands += [os.path.join(self.args.build_dir, "bench"),
                  os.path.join(self.args.build_dir, "bench-only")]
        for d in cands:
            if os.path.exists(os.path.join(d, "pcb_spawn")):
                self.bin_dir = os.path.abspath(d)
                spawn.LAUNCHER = os.path.join(self.bin_dir, "pcb_spawn")
                return
        error("benchmark binaries not found in %s; build first "
              "(bench/run.sh does it)" % ", ".join(cands))
        sys.exit(2)

    def cleanup(self):
        shutil.rmtree(self.tmpdir, ignore_errors=True)
