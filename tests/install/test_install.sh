#!/usr/bin/env bash
# Install the build tree into a scratch prefix and use the installed copy the
# way a consumer would.  Run by ctest (tests/install/CMakeLists.txt):
#
#   test_install.sh setup     cmake --install <build> --prefix <prefix>, check
#                             the file list and that no build path leaked
#   test_install.sh pkgconfig build consumer.c/.cpp with pkg-config (shared
#                             and static) and run them; exit 77 without
#                             pkg-config
#   test_install.sh cmake     build consumer/ with find_package(pcmalloc)
#                             (CMAKE_PREFIX_PATH) and run it
#   test_install.sh launcher  the installed bin/pcmalloc finds the installed
#                             library
#
# Settings come from the environment (set by CMake):
#   PC_BUILD_DIR PC_PREFIX PC_WORK PC_SOURCE_DIR PC_VERSION PC_CMAKE PC_CONFIG
#   PC_CC PC_CXX (empty: skip C++) PC_OVERRIDE (1/0) PC_LINUX (1/0)
set -u
# A skip under tests/run.sh (PC_TEST_NO_SKIP set) is a failure: it installs
# what the tests need, so a missing tool means the check did not run.
skip_code=77
[ -n "${PC_TEST_NO_SKIP:-}" ] && skip_code=1

mode=${1:?usage: test_install.sh setup|pkgconfig|cmake|launcher}
prefix=$PC_PREFIX
fail=0

say() { printf '%s\n' "$*"; }
bad() { printf 'FAIL: %s\n' "$*"; fail=1; }
finish() {
	if [ "$fail" = 0 ]; then
		say "PASS: $mode"
		exit 0
	fi
	say "FAILED: $mode (work files kept in $work)"
	exit 1
}

work=$PC_WORK/$mode
rm -rf "$work"
mkdir -p "$work"

# The libdir under the prefix, as installed (lib, lib64 or lib/<multiarch>).
find_libdir() {
	local f
	f=$(find "$prefix" -name libpcmalloc.so.0 2>/dev/null | head -n1)
	[ -n "$f" ] && printf '%s\n' "${f%/*}"
}

# run_consumer exe kind: run it, check its output names the installed lib.
run_consumer() {
	local exe=$1 kind=$2 out
	if ! out=$("$exe" "$PC_VERSION" "$kind" 2>&1); then
		bad "$exe $kind: $out"
		return
	fi
	say "$out"
	case $out in
	*"ok pcmalloc $PC_VERSION $kind"*) ;;
	*) bad "$exe: unexpected output" ;;
	esac
	# A shared consumer must use the copy just installed, not another.
	if [ "$kind" = shared ]; then
		case $out in
		*"from $prefix/"*|*"(C++)"*) ;;
		*) bad "$exe does not use the library under $prefix" ;;
		esac
	fi
}

# run_plain exe kind: a program that never names pcmalloc must still get
# its malloc from it (when the library overrides malloc at all).
run_plain() {
	local exe=$1 kind=$2 out
	if ! out=$("$exe" 2>&1); then
		bad "$exe: $out"
		return
	fi
	say "${exe##*/}: $out"
	[ "$PC_OVERRIDE" = 1 ] || return
	case $kind:$out in
	shared:"malloc from $prefix/"*/libpcmalloc.so*) ;;
	static:"malloc from $exe") ;;
	*) bad "${exe##*/} ($kind link) does not run on pcmalloc: $out" ;;
	esac
}

case $mode in
setup)
	rm -rf "$prefix"
	args=(--install "$PC_BUILD_DIR" --prefix "$prefix")
	[ -n "${PC_CONFIG:-}" ] && args+=(--config "$PC_CONFIG")
	if ! "$PC_CMAKE" "${args[@]}" >"$work/install.log" 2>&1; then
		cat "$work/install.log"
		bad "cmake --install failed"
		finish
	fi
	libdir=$(find_libdir)
	[ -n "$libdir" ] || { bad "no libpcmalloc.so.0 under $prefix"; finish; }
	say "installed into $prefix (libdir ${libdir#"$prefix"/})"
	want=(
		"$libdir/libpcmalloc.so" "$libdir/libpcmalloc.so.0"
		"$libdir/libpcmalloc.so.$PC_VERSION" "$libdir/libpcmalloc.a"
		"$prefix/include/pcmalloc.h"
		"$libdir/pkgconfig/pcmalloc.pc"
		"$libdir/cmake/pcmalloc/pcmalloc-config.cmake"
		"$libdir/cmake/pcmalloc/pcmalloc-config-version.cmake"
		"$libdir/cmake/pcmalloc/pcmalloc-targets.cmake"
		"$prefix/share/doc/pcmalloc/README.md"
		"$prefix/share/doc/pcmalloc/LICENSE"
	)
	if [ "$PC_LINUX" = 1 ]; then
		want+=("$prefix/bin/pcmalloc"
			"$prefix/share/man/man1/pcmalloc.1"
			"$prefix/share/man/man3/pcmalloc.3"
			"$prefix/share/man/man3/pc_malloc.3")
	fi
	for f in "${want[@]}"; do
		[ -e "$f" ] || bad "missing $f"
	done
	[ "$PC_LINUX" = 1 ] && [ ! -x "$prefix/bin/pcmalloc" ] &&
		bad "bin/pcmalloc is not executable"
	# Nothing installed may point back into the build or source tree.
	leaks=$(grep -rlF -e "$PC_BUILD_DIR" -e "$PC_SOURCE_DIR" \
		"$libdir/pkgconfig" "$libdir/cmake" "$prefix/bin" 2>/dev/null)
	[ -z "$leaks" ] || bad "build/source paths in: $leaks"
	grep -q "@" "$libdir/pkgconfig/pcmalloc.pc" &&
		bad "unexpanded @VAR@ in pcmalloc.pc"
	[ "$PC_LINUX" = 1 ] && grep -q "^pc_version='@" "$prefix/bin/pcmalloc" &&
		bad "bin/pcmalloc has no version filled in"
	finish
	;;

pkgconfig)
	if ! command -v pkg-config >/dev/null 2>&1; then
		say "SKIP: pkg-config is not installed (apt-get install pkg-config)"
		exit $skip_code
	fi
	libdir=$(find_libdir)
	[ -n "$libdir" ] || { bad "nothing installed under $prefix"; finish; }
	export PKG_CONFIG_PATH=$libdir/pkgconfig
	unset PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR
	pc() { pkg-config "$@" pcmalloc; }
	v=$(pc --modversion) || { bad "pkg-config cannot find pcmalloc"; finish; }
	[ "$v" = "$PC_VERSION" ] || bad "pkg-config --modversion: $v"
	say "pkg-config --cflags --libs: $(pc --cflags --libs)"
	pc_libdir=$(pc --variable=libdir)
	[ "$(cd "$pc_libdir" 2>/dev/null && pwd -P)" = \
	    "$(cd "$libdir" && pwd -P)" ] || bad "libdir=$pc_libdir"
	staticlib=$(pc --variable=staticlib)
	[ -f "$staticlib" ] || bad "staticlib=$staticlib does not exist"

	src=$PC_SOURCE_DIR/tests/install/consumer
	defs=(-D_GNU_SOURCE -DEXPECT_OVERRIDE="$PC_OVERRIDE")
	# Word splitting of pkg-config's output is intended.
	# shellcheck disable=SC2207
	cflags=($(pc --cflags)) libs=($(pc --libs))
	# shellcheck disable=SC2207
	static=("$staticlib" $(pc --static --libs-only-other))
	rpath=("-Wl,-rpath,$pc_libdir")
	build() {	# build out compiler source link-args...
		local out=$1 cc=$2 srcf=$3
		shift 3
		if ! "$cc" "${defs[@]}" "${cflags[@]}" -o "$work/$out" \
		    "$srcf" "$@" -ldl >"$work/$out.log" 2>&1; then
			cat "$work/$out.log"
			bad "cannot build $out"
			return 1
		fi
	}
	build c_shared "$PC_CC" "$src/consumer.c" "${libs[@]}" "${rpath[@]}" &&
		run_consumer "$work/c_shared" shared
	build c_static "$PC_CC" "$src/consumer.c" "${static[@]}" &&
		run_consumer "$work/c_static" static
	if [ -n "${PC_CXX:-}" ]; then
		build cxx_shared "$PC_CXX" "$src/consumer.cpp" "${libs[@]}" \
			"${rpath[@]}" && run_consumer "$work/cxx_shared" shared
		build cxx_static "$PC_CXX" "$src/consumer.cpp" "${static[@]}" &&
			run_consumer "$work/cxx_static" static
		build plain_shared "$PC_CXX" "$src/consumer_plain.cpp" \
			"${libs[@]}" "${rpath[@]}" &&
			run_plain "$work/plain_shared" shared
		build plain_static "$PC_CXX" "$src/consumer_plain.cpp" \
			"${static[@]}" && run_plain "$work/plain_static" static
	else
		say "no C++ compiler: C++ consumers skipped"
	fi

	# The .pc file finds its prefix from its own location: a moved tree
	# still works.
	moved=$work/moved
	cp -a "$prefix" "$moved"
	rel=${libdir#"$prefix"}
	mv_libdir=$(PKG_CONFIG_PATH=$moved$rel/pkgconfig pkg-config \
		--variable=libdir pcmalloc)
	[ "$(cd "$mv_libdir" 2>/dev/null && pwd -P)" = \
	    "$(cd "$moved$rel" && pwd -P)" ] ||
		bad "relocated pcmalloc.pc still points to $mv_libdir"
	rm -rf "$moved"
	finish
	;;

cmake)
	args=(-S "$PC_SOURCE_DIR/tests/install/consumer" -B "$work/build"
		-DCMAKE_PREFIX_PATH="$prefix"
		-DPCMALLOC_EXPECT_VERSION="$PC_VERSION"
		-DCMAKE_C_COMPILER="$PC_CC" -DCMAKE_BUILD_TYPE=Release)
	if [ -n "${PC_CXX:-}" ]; then
		args+=(-DCMAKE_CXX_COMPILER="$PC_CXX")
	else
		args+=(-DWITH_CXX=OFF)
		say "no C++ compiler: C++ consumers skipped"
	fi
	if ! "$PC_CMAKE" "${args[@]}" >"$work/configure.log" 2>&1; then
		cat "$work/configure.log"
		bad "configuring the find_package() consumer failed"
		finish
	fi
	grep "pcmalloc $PC_VERSION from" "$work/configure.log"
	if ! "$PC_CMAKE" --build "$work/build" -j2 >"$work/build.log" 2>&1; then
		cat "$work/build.log"
		bad "building the find_package() consumer failed"
		finish
	fi
	for kind in shared static; do
		run_consumer "$work/build/c_$kind" "$kind"
		[ -n "${PC_CXX:-}" ] || continue
		run_consumer "$work/build/cxx_$kind" "$kind"
		run_plain "$work/build/plain_$kind" "$kind"
	done
	finish
	;;

launcher)
	libdir=$(find_libdir)
	l=$prefix/bin/pcmalloc
	[ -x "$l" ] || { bad "no $l"; finish; }
	unset PCMALLOC_LIB PCMALLOC_CONF LD_PRELOAD
	v=$("$l" --version) || bad "$l --version failed"
	[ "$v" = "pcmalloc $PC_VERSION" ] || bad "--version printed '$v'"
	out=$("$l" -v -- printenv LD_PRELOAD 2>"$work/err") ||
		bad "$l -- printenv failed"
	[ "$out" = "$libdir/libpcmalloc.so.0" ] ||
		bad "installed launcher preloads '$out', not $libdir/libpcmalloc.so.0"
	grep -qxF "pcmalloc: using $libdir/libpcmalloc.so.0" "$work/err" ||
		bad "-v did not report the library: $(cat "$work/err")"
	# Through a symbolic link elsewhere: still the installed library.
	ln -s "$l" "$work/pcmalloc"
	out=$("$work/pcmalloc" -- printenv LD_PRELOAD) ||
		bad "launcher through a symlink failed"
	[ "$out" = "$libdir/libpcmalloc.so.0" ] ||
		bad "through a symlink: preloads '$out'"
	# The preloaded program really maps it.
	"$l" -- cat /proc/self/maps | grep -q "$libdir/libpcmalloc.so" ||
		bad "a program run by the launcher does not map libpcmalloc"
	finish
	;;
*)
	say "unknown mode $mode"
	exit 2
	;;
esac
