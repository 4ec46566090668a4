#!/usr/bin/env bash
# Documentation checks.  Usage: test_docs.sh options|man <source-dir>
#   options  docs/options.md's table and pcmalloc(3) list exactly the keys of
#            CONF_OPTIONS in src/conf.h, with the same defaults
#   man      man/pcmalloc.1 and man/pcmalloc.3 format without warnings
#            (exit 77 if groff is not installed)
set -u
# A skip under tests/run.sh (PC_TEST_NO_SKIP set) is a failure: it installs
# what the tests need, so a missing tool means the check did not run.
skip_code=77
[ -n "${PC_TEST_NO_SKIP:-}" ] && skip_code=1
mode=$1 src=$2
fail=0
bad() { printf 'FAIL: %s\n' "$*"; fail=1; }

case $mode in
options)
	# X(name, default, lo, hi, "doc") lines of the CONF_OPTIONS macro
	table=$(sed -n '/^#define CONF_OPTIONS(X)/,/^$/p' "$src/src/conf.h" |
		sed -n 's/^[[:space:]]*X(\([a-z_0-9]*\),[[:space:]]*\([^,]*\),.*/\1 \2/p')
	[ -n "$table" ] || { echo "FAIL: no CONF_OPTIONS in src/conf.h"; exit 1; }
	doc=$src/docs/options.md
	man=$src/man/pcmalloc.3
	# Keys in the docs table: rows starting with | `key` |
	# shellcheck disable=SC2016  # backquotes are literal in the sed script
	doc_keys=$(sed -n 's/^| `\([a-z_0-9]*\)` |.*/\1/p' "$doc" | sort)
	code_keys=$(printf '%s\n' "$table" | cut -d' ' -f1 | sort)
	[ "$doc_keys" = "$code_keys" ] ||
		bad "docs/options.md keys [${doc_keys//$'\n'/ }] !=" \
		    "src/conf.h keys [${code_keys//$'\n'/ }]"
	while read -r key def; do
		row=$(grep "^| \`$key\` |" "$doc")
		# the default column: 3rd cell, e.g. `0` or `on` (1)
		cell=$(printf '%s\n' "$row" | awk -F'|' '{print $4}')
		case $cell in
		*"\`$def\`"*|*"($def)"*) ;;
		*) bad "docs/options.md: $key default '$cell', src/conf.h: $def" ;;
		esac
		grep -q "^\\.BI $key: " "$man" ||
			bad "man/pcmalloc.3 does not list $key"
	done <<<"$table"
	man_keys=$(sed -n 's/^\.BI \([a-z_0-9]*\): .*/\1/p' "$man" | sort)
	[ "$man_keys" = "$code_keys" ] ||
		bad "man/pcmalloc.3 keys [${man_keys//$'\n'/ }] != [${code_keys//$'\n'/ }]"
	;;
man)
	if ! command -v groff >/dev/null 2>&1; then
		echo "SKIP: groff is not installed (apt-get install groff-base)"
		exit $skip_code
	fi
	for page in "$src/man/pcmalloc.1" "$src/man/pcmalloc.3"; do
		msgs=$(groff -man -ww -z -Tutf8 "$page" 2>&1)
		[ -z "$msgs" ] || bad "$page: $msgs"
		lines=$(groff -man -Tutf8 "$page" 2>/dev/null | wc -l)
		[ "$lines" -gt 40 ] || bad "$page renders to only $lines lines"
	done
	;;
*)
	echo "usage: test_docs.sh options|man <source-dir>"
	exit 2
	;;
esac

if [ "$fail" = 0 ]; then
	echo "PASS: $mode"
	exit 0
fi
exit 1
