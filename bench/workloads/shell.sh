#!/bin/sh
# shell: a script that runs many short commands, as configure scripts,
# build steps and job wrappers do.
#
#   shell.sh ROUNDS
#
# Each round runs seven programs (sort, sed, tr, wc, awk, grep, cut) in
# pipelines and command substitutions.  LD_PRELOAD is inherited, so each
# one loads the allocator, starts it, makes its few allocations (locale,
# stdio buffers, a regex, awk's tables) and exits: what an allocator costs
# here is its start-up and the pages its first allocations touch, not its
# fast path.  Prints a checksum of everything the commands printed.
n=${1:-50}
i=0
sum=0
while [ "$i" -lt "$n" ]; do
	a=$(printf 'line %d\nb %d\nc\n' "$i" $((i * 7 % 13)) | sort |
	    sed 's/ /_/g' | tr a-z A-Z | wc -c)
	b=$(echo "$i $a" | awk '{ s = 0; for (k = 1; k <= $1 % 50; k++)
	    s += k * $2; print s }')
	c=$(printf '%s\n' "x$i,y,$b" "z,$a" | grep -c ',' )
	d=$(echo "$i,$b,$c" | cut -d, -f2)
	sum=$(( (sum * 31 + a + b + c + d) % 1000000007 ))
	i=$((i + 1))
done
echo "checksum: $sum"
