#!/bin/bash
# The shared library depends on nothing but libc (and ld.so/libpthread), and
# its SONAME is libpcmalloc.so.0.  Catches: an accidental dependency (libm,
# libstdc++, libdl, libatomic...) that would be loaded into every preloaded
# process and could itself allocate before pcmalloc is ready.
set -u
# A skip under tests/run.sh (PC_TEST_NO_SKIP set) is a failure: it installs
# what the tests need, so a missing tool means the check did not run.
skip_code=77
[ -n "${PC_TEST_NO_SKIP:-}" ] && skip_code=1
LIB=${1:?usage: $0 libpcmalloc.so}
READELF=${READELF:-readelf}
command -v "$READELF" >/dev/null || { echo "SKIP: readelf not found"; exit $skip_code; }
dyn=$("$READELF" -d "$LIB") || { echo "FAIL: readelf -d $LIB"; exit 1; }
bad=0
needed=$(printf '%s\n' "$dyn" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
for n in $needed; do
	case $n in
	libc.so.6 | ld-linux-x86-64.so.2 | ld-linux.so.2 | libpthread.so.0) ;;
	*) echo "FAIL: unexpected dependency: $n"; bad=1 ;;
	esac
done
soname=$(printf '%s\n' "$dyn" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
if [ "$soname" != libpcmalloc.so.0 ]; then
	echo "FAIL: SONAME is '$soname', want libpcmalloc.so.0"
	bad=1
fi
[ $bad = 0 ] && echo "ok: NEEDED: $(echo $needed); SONAME: $soname"
exit $bad
