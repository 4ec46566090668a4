#!/bin/bash
# The shared library exports only pc_*, the standard allocator names and
# C++ operator new/delete; every required name is there.  Catches: internal functions leaking into the dynamic symbol table
# (visibility not hidden: symbol clashes with the host program, slower
# PLT-bound internal calls) and a missing override (that function would
# silently go to glibc, mixing heaps).
set -u
# A skip under tests/run.sh (PC_TEST_NO_SKIP set) is a failure: it installs
# what the tests need, so a missing tool means the check did not run.
skip_code=77
[ -n "${PC_TEST_NO_SKIP:-}" ] && skip_code=1
LIB=${1:?usage: $0 libpcmalloc.so}
NM=${NM:-nm}
command -v "$NM" >/dev/null || { echo "SKIP: nm not found"; exit $skip_code; }

required="malloc free calloc realloc reallocarray posix_memalign aligned_alloc
memalign valloc pvalloc malloc_usable_size __libc_malloc __libc_free
__libc_calloc __libc_realloc __libc_memalign malloc_trim mallopt mallinfo2
mallinfo pc_malloc pc_free pc_calloc pc_realloc pc_reallocarray
pc_posix_memalign pc_aligned_alloc pc_memalign pc_malloc_usable_size
pc_free_sized pc_trim pc_version"
# C++ operator new/delete, every overload (src/override.c): a missing one
# would be libstdc++'s, mixing its path (malloc/free) with pcmalloc's.
required="$required _Znwm _Znam _ZnwmRKSt9nothrow_t _ZnamRKSt9nothrow_t
_ZnwmSt11align_val_t _ZnamSt11align_val_t _ZnwmSt11align_val_tRKSt9nothrow_t
_ZnamSt11align_val_tRKSt9nothrow_t _ZdlPv _ZdaPv _ZdlPvm _ZdaPvm
_ZdlPvRKSt9nothrow_t _ZdaPvRKSt9nothrow_t _ZdlPvSt11align_val_t
_ZdaPvSt11align_val_t _ZdlPvmSt11align_val_t _ZdaPvmSt11align_val_t
_ZdlPvSt11align_val_tRKSt9nothrow_t _ZdaPvSt11align_val_tRKSt9nothrow_t"

# Names allowed but not required (extend here if the contract grows).
optional=" free_sized free_aligned_sized __posix_memalign __libc_valloc __libc_pvalloc malloc_stats malloc_info"

syms=$("$NM" -D --defined-only "$LIB" | awk '{ print $NF }' | sed 's/@.*//' | sort -u)
[ -n "$syms" ] || { echo "FAIL: no dynamic symbols in $LIB"; exit 1; }

bad=0
for s in $syms; do
	case $s in
	pc_[a-z0-9_]*) ;;
	# operator new/new[]/delete/delete[], any overload (sized, aligned,
	# nothrow): _Znwm _Znam _ZdlPv _ZdaPv _ZnwmSt11align_val_t ...
	_Znwm | _Znam | _Znwm[A-Z]* | _Znam[A-Z]* | _ZdlPv | _ZdaPv | \
	    _ZdlPv[a-zA-Z]* | _ZdaPv[a-zA-Z]*) ;;
	*)
		if ! printf '%s\n' $required $optional | grep -qx -- "$s"; then
			echo "FAIL: unexpected exported symbol: $s"
			bad=1
		fi
		;;
	esac
done
for r in $required; do
	if ! printf '%s\n' $syms | grep -qx -- "$r"; then
		echo "FAIL: required symbol not exported: $r"
		bad=1
	fi
done
[ $bad = 0 ] && echo "ok: $(printf '%s\n' $syms | wc -l) exported symbols"
exit $bad
