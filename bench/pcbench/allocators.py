"""The allocators under test: which are wanted, where their libraries
are, and a check that each preload really provides malloc."""
import datetime
import os
import platform
import re
import sys

from .log import error, log
from .packages import apt_install, find_lib, pkg_version
from .paths import ROOT
from .spawn import describe_status, spawn_measured

# name, shared-object file name, Debian package
OTHER_ALLOCATORS = [
    ("jemalloc", "libjemalloc.so.2", "libjemalloc2"),
    ("tcmalloc", "libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"),
    ("mimalloc", "libmimalloc.so.2", "libmimalloc2.0"),
]
ALL_ALLOCATORS = ["pcmalloc", "glibc"] + [a[0] for a in OTHER_ALLOCATORS]


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


def setup_allocators(s):
    """Find the wanted allocators' libraries, probe each one and fill
    s.allocs; the first one left is the reference of every ratio."""
    wanted = ALL_ALLOCATORS
    if s.args.allocators:
        wanted = [a.strip() for a in s.args.allocators.split(",")
                  if a.strip()]
        bad = [a for a in wanted if a not in ALL_ALLOCATORS]
        if bad:
            error("unknown allocator(s) %s; known: %s"
                  % (",".join(bad), ",".join(ALL_ALLOCATORS)))
            sys.exit(2)
    cands = []   # (name, preload path or None, description)
    for name in ALL_ALLOCATORS:
        if name not in wanted:
            continue
        if name == "pcmalloc":
            cands.append(pcmalloc_candidate(s))
        elif name == "glibc":
            cands.append((name, None, "glibc %s (no preload)"
                          % platform.libc_ver()[1]))
        else:
            cand = installed_candidate(s, name)
            if cand:
                cands.append(cand)
    # --extra NAME=PATH: another build to compare, e.g. a variant.
    for spec in s.args.extra or []:
        name, _, lib = spec.partition("=")
        if not name or not os.path.exists(lib):
            error("--extra %s: want NAME=PATH to a library" % spec)
            sys.exit(2)
        cands.append((name, os.path.abspath(lib), "%s (%s)" %
                      (name, os.path.abspath(lib))))
    # --extra-env NAME=VAR=VALUE: that allocator's runs get VAR=VALUE
    # (base_env() drops the caller's allocator knobs; these are added
    # back per allocator, so one library can run under two settings).
    names = [c[0] for c in cands]
    for spec in s.args.extra_env or []:
        name, _, kv = spec.partition("=")
        var, eq, val = kv.partition("=")
        if not name or not var or not eq:
            error("--extra-env %s: want NAME=VAR=VALUE" % spec)
            sys.exit(2)
        if name not in names:
            error("--extra-env %s: no allocator named %s (have %s)"
                  % (spec, name, ",".join(names)))
            sys.exit(2)
        s.alloc_env.setdefault(name, {})[var] = val
    if len(set(names)) != len(names):
        error("two allocators with the same name: %s" % ",".join(names))
        sys.exit(2)
    for name, lib, desc in cands:
        env = s.alloc_env.get(name)
        if env:
            desc += " with " + " ".join("%s=%s" % kv
                                        for kv in sorted(env.items()))
        why = probe(s, name, lib)
        if why:
            error("%s unusable: %s" % (name, why))
            s.errors.append("%s unusable: %s" % (name, why))
            continue
        s.allocs.append((name, lib))
        s.alloc_info[name] = desc
    if not s.allocs:
        error("no allocator left to benchmark")
        sys.exit(2)
    s.ref = s.allocs[0][0]
    log("allocators: %s (reference: %s)"
        % (", ".join(a for a, _ in s.allocs), s.ref))


def pcmalloc_candidate(s):
    """pcmalloc's library, or exit 2. The table is pcmalloc against the
    others: without pcmalloc's own column, or with a column measured from
    an old build, it would say nothing true."""
    lib = s.args.pcmalloc or os.path.join(s.args.build_dir, "libpcmalloc.so")
    if not os.path.exists(lib):
        error("pcmalloc: %s not found (build it: cmake -S . -B "
              "build -DCMAKE_BUILD_TYPE=Release && cmake --build "
              "build; bench/run.sh does both)" % lib)
        sys.exit(2)
    lib = os.path.abspath(lib)
    stale = [] if s.args.pcmalloc else stale_sources(lib)
    if stale:
        error("pcmalloc: %s is older than %s: rebuild it "
              "(bench/run.sh builds before running)"
              % (lib, ", ".join(stale[:3])))
        sys.exit(2)
    built = datetime.datetime.fromtimestamp(
        os.path.getmtime(lib)).strftime("%Y-%m-%d %H:%M")
    return ("pcmalloc", lib, "%s (built %s)"
            % (os.path.relpath(lib, ROOT), built))


def installed_candidate(s, name):
    """A system allocator's library, installed if missing and allowed; None
    (with a note) when it is not there."""
    soname, pkg = [(so, p) for n, so, p in OTHER_ALLOCATORS if n == name][0]
    lib = find_lib(soname)
    if not lib and apt_install([pkg], "allocator " + name, s.allow_install):
        lib = find_lib(soname)
    if not lib:
        log("%s: %s not installed - skipping" % (name, soname))
        s.notes.append("%s not installed: skipped" % name)
        return None
    return (name, lib, "%s %s" % (lib, pkg_version(pkg)))


def probe(s, name, preload):
    """Check that the preload really provides malloc: None when it does,
    else why not."""
    try:
        code, to, _, _, _, so, se = spawn_measured(
            [os.path.join(s.bin_dir, "pcb_probe")], preload,
            s.alloc_env.get(name), timeout=30)
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
