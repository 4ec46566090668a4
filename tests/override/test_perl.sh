#!/bin/bash
# perl (Debian's perl uses the system malloc) running hash-heavy code, with
# and without pcmalloc preloaded.  Catches: heap corruption in a program
# with millions of small allocations and frees, realloc of growing strings
# and arrays.
. "$(dirname "$0")/common.sh"
need perl
check_preload_maps
run_compare perl perl -e '
my %h;
for my $i (1 .. 300000) { $h{"key$i"} = "v" x ($i % 100) . $i; }
my $s = 0;
for my $k (sort keys %h) { $s = ($s * 31 + length($h{$k})) % 1000000007; }
delete $h{"key$_"} for grep { $_ % 3 } 1 .. 300000;
my @a = map { [ $_, "x" x ($_ % 50) ] } 1 .. 100000;
my $str = "";
$str .= chr(65 + $_ % 26) for 1 .. 1000000;
my %counts;
$counts{substr($str, $_, 3)}++ for 0 .. 200000;
print scalar(keys %h), " $s ", scalar(@a), " ", length($str), " ",
    scalar(keys %counts), "\n";
'
