#!/bin/bash
# run_preloaded.sh LIB PROGRAM [ARGS...]: run PROGRAM with LIB preloaded
# (timeout 120 s), pass its stdout/stderr through, and fail if it fails or
# if pcmalloc printed a "pcmalloc: " report.
set -u
LIB=${1:?usage: $0 lib program [args]}
shift
case $LIB in /*) ;; *) LIB=$PWD/$LIB ;; esac
err=$(mktemp "${TMPDIR:-/tmp}/pcmalloc-run.XXXXXX")
trap 'rm -f "$err"' EXIT
LD_PRELOAD=$LIB timeout "${RUN_TIMEOUT:-120}" "$@" 2> "$err"
rc=$?
cat "$err" >&2
if [ $rc -ne 0 ]; then
	echo "FAIL: $* exited with $rc under LD_PRELOAD=$LIB"
	exit 1
fi
if grep -q '^pcmalloc: ' "$err"; then
	echo "FAIL: pcmalloc reported errors"
	exit 1
fi
exit 0
