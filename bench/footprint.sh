#!/bin/sh
# Memory return against jemalloc: allocate 1 GiB in blocks of 64 B, 100 KiB
# and 1 MiB, free it all, and read RSS right after, after the decay time
# plus one second with the program asleep, and after malloc_trim(0).  Each
# allocator runs with its default options and with its background purging
# thread.  The last rows ("pool") do the same from 16 worker threads that
# allocate blocks of 16 B .. 4 KiB and then park, as an idle thread pool
# does.  Needs build/ (bench/run.sh builds it).
#   bench/footprint.sh [TOTAL_BYTES]
set -u
cd "$(dirname "$0")/.." || exit 2
total=${1:-1073741824}
bin=build/bench/pcb_footprint
[ -x "$bin" ] || { echo "build the project first (bench/run.sh builds it)" >&2; exit 2; }
je=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
echo "| allocator | options | block | start | peak | after free | after 11 s asleep | after malloc_trim |"
echo "|---|---|--:|--:|--:|--:|--:|--:|"
for size in 64 102400 1048576 pool; do
	threads=
	[ "$size" = pool ] && size=4096 threads=16
	for cfg in "pcmalloc|" "pcmalloc|background_thread:off" \
	    "jemalloc|" "jemalloc|background_thread:true"; do
		name=${cfg%%|*} conf=${cfg#*|}
		case $name in
		pcmalloc) lib=$PWD/build/libpcmalloc.so; var=PCMALLOC_CONF ;;
		jemalloc) lib=$je; var=MALLOC_CONF
			[ -e "$lib" ] || continue ;;
		esac
		out=$(env "$var=$conf" LD_PRELOAD="$lib" "$bin" "$size" "$total" \
		    11000 $threads)
		set -- $out
		if [ -n "$threads" ]; then
			shift
			set -- "16..$size, $threads threads" "$@"
		fi
		echo "| $name | ${conf:-defaults} | $1 | $2 | $3 | $4 | $5 | $6 |"
	done
done
