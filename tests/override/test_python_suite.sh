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
log=$WORK/suite.log
# shellcheck disable=SC2086
if ! PYTHONMALLOC=malloc LD_PRELOAD=$LIB timeout 600 \
    "$PY" -m test -j2 $tests >"$log" 2>&1; then
	tail -40 "$log"
	fail "CPython's tests failed under pcmalloc"
fi
grep -q "pcmalloc: " "$log" && { grep "pcmalloc: " "$log" | head; fail "pcmalloc reported a bad pointer"; }
tail -4 "$log"
echo "ok: CPython's tests pass under pcmalloc"
