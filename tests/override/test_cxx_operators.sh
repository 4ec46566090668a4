#!/bin/bash
# pcmalloc's C++ operator new/delete (src/override.c), preloaded: they are
# the ones a C++ program binds to, bad_alloc/new-handler/nothrow/aligned
# semantics hold as without pcmalloc, and a sized delete with a wrong size
# is reported like free_sized.
. "$(dirname "$0")/common.sh"
PROG=${1:?usage: $0 lib cxx_operators}
check_preload_maps
env -u LD_PRELOAD "$PROG" > "$WORK/ref.out" 2>&1 ||
	{ cat "$WORK/ref.out"; fail "cxx_operators failed without pcmalloc"; }
LD_PRELOAD=$LIB "$PROG" libpcmalloc > "$WORK/pc.out" 2> "$WORK/pc.err" ||
	{ cat "$WORK/pc.out" "$WORK/pc.err"; fail "cxx_operators failed with pcmalloc"; }
grep -q 'operator new from libpcmalloc' "$WORK/pc.out" ||
	fail "operator new does not come from pcmalloc"
grep -q '^pcmalloc: ' "$WORK/pc.err" && { cat "$WORK/pc.err"; fail "reports on a correct program"; }
LD_PRELOAD=$LIB "$PROG" wrongsize > "$WORK/ws.out" 2> "$WORK/ws.err"
rc=$?
[ $rc -ne 0 ] || fail "sized delete with a wrong size did not abort (rc 0)"
grep -q 'free_sized of 0x[0-9a-f]* with a wrong size 16' "$WORK/ws.err" ||
	{ cat "$WORK/ws.err"; fail "sized delete with a wrong size not reported"; }
echo "ok: operators exported, semantics kept, wrong size reported"
