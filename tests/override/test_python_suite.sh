#!/bin/bash
# A real program's own test suite under LD_PRELOAD: a slice of CPython's
# regression tests (Debian's libpython3.11-testsuite), with
# PYTHONMALLOC=malloc so every object goes through pcmalloc, must pass as
# it does on glibc.  Catches what unit tests miss: allocator behaviour an
# interpreter relies on (realloc growth, alignment, thread exit, fork in
# subprocess, huge bytes objects, gc, weakrefs, pickling).
. "$(dirname "$0")/common.sh"
PY=${PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || { echo "SKIP: $PY not found"; exit $SKIP; }
"$PY" -c 'import test.test_dict' 2>/dev/null ||
	{ echo "SKIP: CPython's test suite is not installed (libpython3-testsuite)"; exit $SKIP; }
tests="test_dict test_list test_set test_unicode test_bytes test_re
	test_json test_collections test_heapq test_array test_deque test_sort
	test_itertools test_functools test_threading test_gc test_weakref
	test_pickle test_struct test_long test_float test_mmap test_queue
	test_zlib test_decimal test_subprocess test_memoryview"
# Left out: the two tests of this slice that assert on wall time (a regex
# search under 0.1 s, a subprocess timeout noticed within 1.5 s).  On a
# loaded machine they fail whatever the allocator (test_re's did, in CI,
# at 0.11 s), and our tests never assert on timing.
timed="-i test_search_anchor_at_beginning
	-i test_run_with_shell_timeout_and_capture_output"
# Left out too: test_find_periodic_pattern, whose reference answer is wrong
# when its random pattern and text both come out empty (-1 where find
# rightly says 0; CPython issues 105639 and 110160, fixed upstream after
# the 3.11 test suite Debian ships).  Workers seed random from the OS, so
# it fails about once in 13 000 runs whatever the allocator (three classes
# run it, 1000 draws each, each one empty with odds of 1 in 40 million):
# CI saw "AssertionError: -1 != 0" in test_bytes once.
flaky="-i test_find_periodic_pattern"
log=$WORK/suite.log
# The interpreter running the suite, and the workers it starts, really run
# on pcmalloc: the library is mapped and malloc's blocks are its own.
cat > "$WORK/check.py" <<'PYEOF'
import ctypes, os, subprocess, sys
lib = os.path.realpath(sys.argv[1])
with open("/proc/self/maps") as f:
    mapped = any(l.split()[-1] == lib for l in f if len(l.split()) >= 6)
if not mapped:
    sys.exit("%s not mapped in %s" % (lib, sys.executable))
c = ctypes.CDLL(None)
c.malloc.restype = ctypes.c_void_p
c.malloc.argtypes = [ctypes.c_size_t]
c.pc_malloc_usable_size.restype = ctypes.c_size_t
c.pc_malloc_usable_size.argtypes = [ctypes.c_void_p]
p = c.malloc(100)
if not p or c.pc_malloc_usable_size(p) < 100:
    sys.exit("malloc does not come from pcmalloc")
if len(sys.argv) > 2:
    sys.exit(subprocess.call([sys.executable, sys.argv[0], sys.argv[1]]))
print("pcmalloc serves malloc in python and its subprocesses")
PYEOF
PYTHONMALLOC=malloc LD_PRELOAD=$LIB "$PY" "$WORK/check.py" "$LIB" child ||
	fail "python does not run on pcmalloc under LD_PRELOAD=$LIB"
# shellcheck disable=SC2086
if ! PYTHONMALLOC=malloc LD_PRELOAD=$LIB timeout 600 \
    "$PY" -m test -j2 $timed $flaky $tests >"$log" 2>&1; then
	tail -40 "$log"
	fail "CPython's tests failed under pcmalloc"
fi
grep -q "pcmalloc: " "$log" && { grep "pcmalloc: " "$log" | head; fail "pcmalloc reported a bad pointer"; }
tail -4 "$log"
echo "ok: CPython's tests pass under pcmalloc"
