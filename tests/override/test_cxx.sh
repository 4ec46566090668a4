#!/bin/bash
# Run the C++ workload (cxx_threads.cpp, built in the test tree) with and
# without pcmalloc preloaded; same output, same exit code (0).
. "$(dirname "$0")/common.sh"
PROG=${1:?usage: $0 lib cxx_threads}
check_preload_maps
run_compare cxx "$PROG" 16
run_compare cxx_32 "$PROG" 32
