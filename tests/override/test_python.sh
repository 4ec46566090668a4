#!/bin/bash
# python3 (PYTHONMALLOC=malloc: every object through malloc/realloc/free)
# running an allocation-heavy script, with and without pcmalloc preloaded.
# Catches: realloc/free bugs that corrupt a real interpreter's objects
# (crashes or different output), slowness-induced hangs (timeout).
. "$(dirname "$0")/common.sh"
PY=${PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || { echo "SKIP: $PY not found"; exit $SKIP; }
check_preload_maps
export PYTHONMALLOC=malloc PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1
run_compare python "$PY" -S "$(dirname "$0")/alloc_heavy.py"
