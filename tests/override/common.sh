# shellcheck shell=bash
# Helpers for the LD_PRELOAD tests.  Sourced by the test scripts; $1 of the
# script is the shared library to preload.
#
# run_compare NAME CMD...   runs CMD once on plain glibc and once with the
# library preloaded (stdin from $STDIN_FILE if set), and fails when the exit
# codes or stdout differ, or when the preloaded run printed a "pcmalloc: "
# report on stderr (a real program never frees a foreign pointer).
set -u

SKIP=77
# Under tests/run.sh (PC_TEST_NO_SKIP set) a missing program is a failure:
# it installs what the tests need, so a skip would be a check not run.
[ -n "${PC_TEST_NO_SKIP:-}" ] && SKIP=1
LIB=${1:?usage: $0 path/to/libpcmalloc.so}
shift
case $LIB in /*) ;; *) LIB=$PWD/$LIB ;; esac
[ -f "$LIB" ] || { echo "no such library: $LIB"; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pcmalloc-override.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
RUN_TIMEOUT=${RUN_TIMEOUT:-120}

fail() { echo "FAIL: $*"; exit 1; }

need() {
	for p in "$@"; do
		command -v "$p" >/dev/null 2>&1 || { echo "SKIP: $p not found"; exit $SKIP; }
	done
}

# The preloaded library really ends up in a process's address space.
check_preload_maps() {
	LD_PRELOAD=$LIB cat /proc/self/maps > "$WORK/maps" ||
		fail "cat with LD_PRELOAD failed"
	grep -qF "$(readlink -f "$LIB")" "$WORK/maps" ||
		fail "$LIB not mapped in a preloaded process"
}

run_compare() {
	local name=$1; shift
	local in=${STDIN_FILE:-/dev/null}
	env -u LD_PRELOAD timeout "$RUN_TIMEOUT" "$@" < "$in" \
		> "$WORK/$name.ref.out" 2> "$WORK/$name.ref.err"
	local rc_ref=$?
	LD_PRELOAD=$LIB timeout "$RUN_TIMEOUT" "$@" < "$in" \
		> "$WORK/$name.pc.out" 2> "$WORK/$name.pc.err"
	local rc_pc=$?
	if [ $rc_pc -ne $rc_ref ]; then
		echo "--- stderr with LD_PRELOAD:"; tail -n 30 "$WORK/$name.pc.err"
		fail "$name: exit code $rc_pc with LD_PRELOAD, $rc_ref without"
	fi
	if ! cmp -s "$WORK/$name.ref.out" "$WORK/$name.pc.out"; then
		diff "$WORK/$name.ref.out" "$WORK/$name.pc.out" | head -n 20
		fail "$name: output differs with LD_PRELOAD"
	fi
	if grep -q '^pcmalloc: ' "$WORK/$name.pc.err"; then
		grep '^pcmalloc: ' "$WORK/$name.pc.err" | head -n 10
		fail "$name: pcmalloc reported errors"
	fi
	[ -s "$WORK/$name.ref.out" ] || [ "${ALLOW_EMPTY:-0}" = 1 ] ||
		fail "$name: no output at all (broken test?)"
	echo "ok: $name (exit $rc_ref, $(wc -c < "$WORK/$name.ref.out") bytes)"
}
