#!/usr/bin/env python3
"""Write the seed corpus of the pc_* API fuzzer into tests/fuzz/corpus/.

Each seed is a header byte and 2 or 3 equally long streams of operations
in the encoding fuzz_api.c decodes (an opcode byte, a slot byte, then the
operation's own bytes).  Deterministic: rerunning writes the same files.
"""
import os
import random
import sys

# Opcodes (fuzz_api.c, enum of OP_*)
MALLOC, MISUSE, CALLOC, REALLOC = 0, 5, 6, 8
ALIGNED_ALLOC, POSIX_MEMALIGN, MEMALIGN, ALIGNED_ANY = 12, 13, 14, 15
FREE, FREE_SIZED, USABLE, SWAP, FREE_SHARED = 16, 20, 22, 23, 25
VERIFY, TRIM, STATS, EDGE, FAULT, YIELD = 26, 27, 28, 29, 30, 31

# Header bits
CONCURRENT, THREE, SELF_FREE, MAIN_STREAM, TRIM_END = 1, 2, 4, 8, 16


def tiny(n):            # 0..15
    return [n << 4]


def small(n):           # <= 1 KiB
    return [1, n & 255, n >> 8]


def mid(n):             # <= 32 KiB
    return [6, n & 255, n >> 8]


def cls(i, delta=0):    # a class size + delta (-1, 0, 1)
    return [9 | ((delta + 1) << 4), i]


def large(n):           # 32 KiB + n, n < 2 MiB
    return [10, n & 255, (n >> 8) & 255, n >> 16]


def big(k):             # 2 MiB + k * 224
    return [13, k & 255, k >> 8]


def edge(i):            # edge_sizes[i]
    return [14, i]


def huge(k):            # 64 MiB + k KiB
    return [15, k & 255, k >> 8]


def medium(k):          # 16 MiB + k * 768
    return [31, k & 255, k >> 8]


def align(lg):          # 1 << lg, lg <= 26
    if lg >= 12:
        return [((lg - 12) << 3)]
    return [(lg << 3) | 1]


# Misuse (op_misuse): the misusing call, and the realloc size byte z.
M_FREE, M_FREE_SIZED, M_REALLOC, M_USABLE = range(4)
Z_FREE, Z_SMALL, Z_LARGE, Z_HUGE = 0, 13, 140, 230


def interior(slot, call, x, z=Z_SMALL):   # a pointer inside the block
    return [MISUSE, slot, call << 2, x, z]


def double(slot, call, how, z=Z_SMALL):   # free (how), then misuse
    return [MISUSE, slot, 2 | call << 2 | how << 4, 0, z]


def stale(i, call, z=Z_SMALL):            # the i-th remembered free
    return [MISUSE, 0, 3 | call << 2, i, z]


def rand_size(r):
    c = r.random()
    if c < 0.5:
        return small(r.randrange(1025))
    if c < 0.75:
        return mid(r.randrange(32769))
    if c < 0.85:
        return cls(r.randrange(40), r.randrange(3) - 1)
    if c < 0.97:
        return large(r.randrange(2 << 20))
    return edge(r.randrange(20))


def rand_op(r):
    op = r.choice([MALLOC] * 6 + [CALLOC, REALLOC, REALLOC, ALIGNED_ANY,
                                  FREE, FREE, FREE_SIZED, SWAP, SWAP,
                                  FREE_SHARED, USABLE, VERIFY, STATS])
    slot = r.randrange(32)
    if op == MALLOC:
        return [op, slot] + rand_size(r)
    if op == CALLOC:
        return [op, slot, r.randrange(16)] + rand_size(r)
    if op == REALLOC:
        return [op, slot, r.randrange(1, 256)] + rand_size(r)
    if op == ALIGNED_ANY:
        return [op, slot] + align(r.randrange(13)) + rand_size(r)
    if op in (SWAP, FREE_SHARED):
        return [op, slot, r.randrange(256)]
    if op == STATS:
        return [op, slot, r.randrange(200)]
    return [op, slot]


def streams(header, progs):
    n = max(len(p) for p in progs)
    body = []
    for p in progs:
        body += p + [YIELD, 0] * ((n - len(p)) // 2) + [YIELD] * ((n - len(p)) % 2)
    return bytes([header] + body)


def seeds():
    r = random.Random(20261126)
    out = {}
    # Plain small churn, one thread after the other.
    out["small_serial"] = streams(0, [
        sum(([MALLOC, i] + small(i * 37 % 1025) for i in range(32)), []) +
        sum(([FREE, i] for i in range(0, 32, 2)), []),
        sum(([MALLOC, i] + mid(i * 1000) for i in range(16)), [])])
    # Random mixes, concurrent, 2 and 3 threads.
    for name, hdr in (("mixed_2", CONCURRENT), ("mixed_3", CONCURRENT | THREE),
                      ("mixed_3_main", CONCURRENT | THREE | MAIN_STREAM),
                      ("mixed_selffree", THREE | SELF_FREE | TRIM_END)):
        out[name] = streams(hdr, [sum((rand_op(r) for _ in range(60)), [])
                                  for _ in range(3 if hdr & THREE else 2)])
    # realloc growth through every size range and back.
    chain = [MALLOC, 0] + small(10)
    for s in (small(900), mid(20000), large(100000), big(20000), edge(10),
              edge(17), edge(19), huge(100), edge(15), large(5000),
              small(3)):
        chain += [REALLOC, 0, 2] + s
    chain += [REALLOC, 0, 0] + tiny(0)
    out["realloc_chain"] = streams(MAIN_STREAM, [chain, [VERIFY, 0]])
    # Every alignment, with small, large and huge sizes.
    al = []
    for lg in range(27):
        for kind, sz in ((ALIGNED_ALLOC, small(lg * 7)),
                         (POSIX_MEMALIGN, large(lg * 4096)),
                         (MEMALIGN, mid(lg * 999))):
            al += [kind, lg] + align(lg) + sz
    al += [MEMALIGN, 1, 248] + small(5) + [ALIGNED_ALLOC, 2, 252] + small(5)
    out["aligned"] = streams(0, [al, [REALLOC, 3, 2] + large(1)])
    # Hand-offs: thread 0 fills the slots, thread 1 and 2 take and free.
    give = sum(([MALLOC, i] + small(i * 50) + [SWAP, i, i] for i in range(16)),
               [])
    take = sum(([SWAP, i, i] + [REALLOC, i, 2] + small(700) for i in range(8)),
               []) + sum(([FREE_SHARED, 0, i] for i in range(8, 16)), [])
    out["handoff"] = streams(THREE, [give, take, take])
    out["handoff_conc"] = streams(THREE | CONCURRENT, [give, take, take])
    # Edge cases, every one.
    e = [MALLOC, 0] + mid(3000)
    for i in range(16):
        e += [EDGE, 0, i | (r.randrange(16) << 4)]
    out["edge"] = streams(0, [e, [EDGE, 1, 7]])
    # Injected OS failures around allocations that need new memory.
    f = []
    for k in range(8):
        f += [FAULT, 0, k * 4] + [MALLOC, k] + big(k * 3000)
        f += [FAULT, 0, 4 * (k % 3)] + [ALIGNED_ALLOC, k + 8] + align(22) + \
            large(k)
        f += [FAULT, 0, 0] + [REALLOC, k, 2] + huge(k)
    out["faults"] = streams(0, [f, sum((rand_op(r) for _ in range(20)), [])])
    # Statistics and the checker while another thread allocates.
    st = sum(([STATS, 0, i] for i in range(0, 256, 9)), []) + [STATS, 0, 250]
    out["stats"] = streams(CONCURRENT, [st, sum((rand_op(r) for _ in range(40)),
                                                [])])
    # calloc of every size range and element layout.
    c = []
    for i, s in enumerate((small(100), mid(9000), large(300000), big(100),
                           cls(20, 1), tiny(0))):
        c += [CALLOC, i, i * 17] + s
    c += [FREE, 2, TRIM, 0, CALLOC, 2, 1] + large(300000)
    out["calloc"] = streams(0, [c, [VERIFY, 0]])
    # free_sized of every range.
    fs = []
    for i, s in enumerate((small(1), mid(2000), large(70000), edge(12))):
        fs += [MALLOC, i] + s + [FREE_SIZED, i, FREE_SIZED + 1, i]
    out["free_sized"] = streams(0, [fs, fs])
    # Misuse of small, large and huge blocks (abort_on_error off): every
    # call on interior pointers (first bytes, last bytes, page multiples,
    # the middle), serial and concurrent.
    sizes = (cls(0), small(100), mid(20000), large(100000), huge(1))
    mi = []
    for i, sz in enumerate(sizes):
        mi += [MALLOC, i] + sz
    for i in range(len(sizes)):
        for call in range(4):
            for x, z in ((3, Z_SMALL), (129, Z_LARGE), (200, Z_HUGE),
                         (255, Z_FREE)):
                mi += interior(i, call, x, z)
    mi += [VERIFY, 0]
    out["misuse_interior"] = streams(0, [mi, [VERIFY, 0]])
    out["misuse_interior_conc"] = streams(CONCURRENT, [mi, mi])
    # Double frees: freed by free, free_sized or realloc(p, 0), then
    # misused at once, for each size range (serial: predictions exact).
    md = []
    for sz in sizes:
        for how in range(3):
            for call in range(4):
                md += [MALLOC, 1] + sz + double(1, call, how,
                                                (Z_SMALL, Z_LARGE)[how & 1])
    out["misuse_double"] = streams(0, [md, [VERIFY, 0]])
    # Stale pointers: freed, partly handed out again, flushed by trim,
    # their slabs emptied and reused by other classes.
    ms = sum(([MALLOC, i] + small(64) for i in range(8)), [])
    ms += sum(([FREE, i] for i in range(8)), [])
    ms += sum((stale(i, call) for i in range(8) for call in (0, 2, 3)), [])
    ms += sum(([MALLOC, i] + small(64) for i in range(3)), [])
    ms += sum((stale(i, i % 4) for i in range(8)), [])
    ms += [MALLOC, 10] + large(200000) + [FREE, 10] + \
        [MALLOC, 11] + huge(3) + [REALLOC, 11, 2] + small(10) + \
        [MALLOC, 12] + huge(5) + [FREE, 12]
    ms += sum((stale(i, call, Z_LARGE) for i in range(8)
               for call in (0, 2, 3)), [])
    ms += sum(([FREE, i] for i in range(12)), []) + [TRIM, 0]
    ms += sum(([MALLOC, i] + small(200) for i in range(12)), [])
    ms += sum((stale(i, call, Z_HUGE) for i in range(8)
               for call in (0, 2, 3)), [])
    out["misuse_stale"] = streams(MAIN_STREAM, [[VERIFY, 0], ms])
    return out


def main():
    d = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(d, exist_ok=True)
    total = 0
    for name, data in seeds().items():
        with open(os.path.join(d, "seed_" + name), "wb") as f:
            f.write(data)
        total += len(data)
    print("wrote %d seeds, %d bytes, to %s" % (len(seeds()), total, d),
          file=sys.stderr)


if __name__ == "__main__":
    main()
