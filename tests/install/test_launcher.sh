#!/usr/bin/env bash
# The pcmalloc launcher, as configured into the build tree
# (<build>/tools/pcmalloc) and as it sits in the source tree (tools/pcmalloc).
# Usage: test_launcher.sh <build-launcher> <source-launcher> <build-lib> VERSION
set -u

launcher=$1 src_launcher=$2 lib=$3 version=$4
fail=0
work=$(mktemp -d "${TMPDIR:-/tmp}/pcmalloc-launcher.XXXXXX")
trap 'rm -rf "$work"' EXIT
unset PCMALLOC_LIB PCMALLOC_CONF LD_PRELOAD

bad() { printf 'FAIL: %s\n' "$*"; fail=1; }

# expect STATUS STDOUT-FILE STDERR-FILE command...: run, check the status.
expect() {
	local want=$1 out=$2 err=$3
	shift 3
	"$@" >"$out" 2>"$err"
	local got=$?
	if [ "$got" != "$want" ]; then
		bad "'$*' exited $got, expected $want; stderr: $(cat "$err")"
		return 1
	fi
}
o=$work/out e=$work/err
canon_lib=$(cd "${lib%/*}" && pwd -P)/${lib##*/}

# --version, --help
expect 0 "$o" "$e" "$launcher" --version &&
	{ [ "$(cat "$o")" = "pcmalloc $version" ] ||
	  bad "--version printed '$(cat "$o")'"; }
expect 0 "$o" "$e" "$src_launcher" --version &&
	{ [ "$(cat "$o")" = "pcmalloc $version" ] ||
	  bad "source launcher --version printed '$(cat "$o")'" \
	      "(include/pcmalloc.h and project() disagree?)"; }
expect 0 "$o" "$e" "$launcher" --help &&
	{ grep -q "^Usage: pcmalloc " "$o" || bad "--help: no usage"; }
expect 0 "$o" "$e" "$launcher" -h

# Runs a program, with and without --
expect 0 "$o" "$e" "$launcher" -- true
expect 0 "$o" "$e" "$launcher" true
# The program's exit status is passed on.
expect 42 "$o" "$e" "$launcher" -- sh -c 'exit 42'
# Arguments reach the program unchanged.
expect 0 "$o" "$e" "$launcher" -- printf '%s|' a 'b c' '' --conf -v &&
	{ [ "$(cat "$o")" = "a|b c||--conf|-v|" ] ||
	  bad "arguments mangled: $(cat "$o")"; }

# LD_PRELOAD: ours, then whatever was there
expect 0 "$o" "$e" "$launcher" -- printenv LD_PRELOAD &&
	{ [ "$(cat "$o")" = "$canon_lib" ] ||
	  bad "LD_PRELOAD is '$(cat "$o")', expected $canon_lib"; }
expect 0 "$o" "$e" env LD_PRELOAD=libm.so.6 "$launcher" -- printenv LD_PRELOAD &&
	{ [ "$(cat "$o")" = "$canon_lib:libm.so.6" ] ||
	  bad "existing LD_PRELOAD not kept: '$(cat "$o")'"; }
# The program really runs on it.
expect 0 "$o" "$e" "$launcher" -- cat /proc/self/maps &&
	{ grep -qF "${canon_lib%.so*}.so" "$o" ||
	  bad "program run by the launcher does not map $canon_lib"; }
# `echo` is a bash builtin; the launcher must run /usr/bin/echo, on pcmalloc.
expect 0 "$o" "$e" "$launcher" echo hello &&
	{ [ "$(cat "$o")" = hello ] || bad "echo printed '$(cat "$o")'"; }

# -v reports the library on stderr, and nothing on stdout
expect 0 "$o" "$e" "$launcher" -v -- true &&
	{ grep -qxF "pcmalloc: using $canon_lib" "$e" ||
	  bad "-v printed '$(cat "$e")'"; }
expect 0 "$o" "$e" "$launcher" -- true &&
	{ [ ! -s "$e" ] || bad "without -v, stderr has '$(cat "$e")'"; }

# --conf and --stats: appended to PCMALLOC_CONF
expect 0 "$o" "$e" "$launcher" --conf narenas:2 --conf=tcache:on -s -- \
	printenv PCMALLOC_CONF &&
	{ [ "$(cat "$o")" = "narenas:2,tcache:on,stats_print:true" ] ||
	  bad "PCMALLOC_CONF is '$(cat "$o")'"; }
expect 0 "$o" "$e" env PCMALLOC_CONF=tcache_max:1k "$launcher" -c narenas:1 \
	printenv PCMALLOC_CONF &&
	{ [ "$(cat "$o")" = "tcache_max:1k,narenas:1" ] ||
	  bad "existing PCMALLOC_CONF not kept: '$(cat "$o")'"; }
expect 0 "$o" "$e" env PCMALLOC_CONF=tcache:off "$launcher" -- \
	printenv PCMALLOC_CONF &&
	{ [ "$(cat "$o")" = "tcache:off" ] ||
	  bad "PCMALLOC_CONF changed without --conf: '$(cat "$o")'"; }
# ... and the library reads them (a bad key is reported by the library).
expect 0 "$o" "$e" "$launcher" --conf no_such_key:1 -- true &&
	{ grep -q 'pcmalloc: PCMALLOC_CONF: unknown option "no_such_key:1"' "$e" ||
	  bad "library did not see --conf: '$(cat "$e")'"; }

# PCMALLOC_LIB overrides the search
cp "$lib" "$work/libpc copy.so"
ln -s "$lib" "$work/libother.so"
expect 0 "$o" "$e" env PCMALLOC_LIB="$work/libother.so" "$launcher" -- \
	printenv LD_PRELOAD &&
	{ [ "$(cat "$o")" = "$(cd "$work" && pwd -P)/libother.so" ] ||
	  bad "PCMALLOC_LIB not used: '$(cat "$o")'"; }
# the source-tree launcher with PCMALLOC_LIB
expect 0 "$o" "$e" env PCMALLOC_LIB="$lib" "$src_launcher" -- printenv LD_PRELOAD &&
	{ [ "$(cat "$o")" = "$canon_lib" ] ||
	  bad "source launcher: '$(cat "$o")'"; }

# Errors
expect 127 "$o" "$e" "$launcher" -- pcmalloc-no-such-program-xyz &&
	{ grep -q "pcmalloc: pcmalloc-no-such-program-xyz: command not found" "$e" ||
	  bad "missing program message: '$(cat "$e")'"; }
expect 127 "$o" "$e" "$launcher" -- "$work/nothing-here" &&
	{ grep -q "no such file" "$e" || bad "missing file message: $(cat "$e")"; }
: >"$work/not-exec"
expect 126 "$o" "$e" "$launcher" -- "$work/not-exec"
expect 1 "$o" "$e" env PCMALLOC_LIB=/nonexistent/libpcmalloc.so.0 \
	"$launcher" -- true &&
	{ grep -q "PCMALLOC_LIB=/nonexistent/libpcmalloc.so.0 is not a readable file" \
	    "$e" || bad "bad PCMALLOC_LIB message: $(cat "$e")"; }
expect 1 "$o" "$e" env PCMALLOC_LIB="$work/libpc copy.so" "$launcher" -- true &&
	{ grep -q "space or a colon" "$e" || bad "space in path: $(cat "$e")"; }
# A launcher with no library anywhere near it
mkdir -p "$work/lonely/bin"
cp "$launcher" "$work/lonely/bin/pcmalloc"
expect 1 "$o" "$e" "$work/lonely/bin/pcmalloc" -- true &&
	{ grep -q "pcmalloc: cannot find libpcmalloc.so.0" "$e" ||
	  bad "missing library message: $(cat "$e")"; }
expect 2 "$o" "$e" "$launcher"
expect 2 "$o" "$e" "$launcher" --bogus -- true
expect 2 "$o" "$e" "$launcher" --conf

if [ "$fail" = 0 ]; then
	echo "PASS: launcher"
	exit 0
fi
exit 1
