"""Allocation-heavy Python workload for the pcmalloc benchmarks.

Run as:  PYTHONMALLOC=malloc PYTHONHASHSEED=0 python3 pyalloc.py SCALE

With PYTHONMALLOC=malloc every object (ints, tuples, dicts, strings,
frames...) goes through the C malloc, so the interpreter becomes a big,
realistic small-object allocation workload: many short-lived temporaries,
medium-lived containers and a few long-lived structures that grow and
shrink. Prints one deterministic "checksum:" line.
"""
import json
import sys
import zlib


class Record:
    __slots__ = ("key", "name", "tags", "score")

    def __init__(self, key, name, tags, score):
        self.key = key
        self.name = name
        self.tags = tags
        self.score = score


class Node:
    def __init__(self, value, children):
        self.value = value
        self.children = children


def lcg(seed):
    x = seed & 0xFFFFFFFF
    while True:
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        yield x


def words(rng, n):
    out = []
    for _ in range(n):
        v = next(rng)
        out.append("w%x_%s" % (v % 5000, "abcdefghij"[v % 10] * (1 + v % 7)))
    return out


def build_tree(rng, depth):
    if depth == 0:
        return Node(next(rng) % 1000, [])
    return Node(next(rng) % 1000,
                [build_tree(rng, depth - 1) for _ in range(1 + next(rng) % 3)])


def tree_sum(t):
    s = t.value
    stack = list(t.children)
    while stack:
        n = stack.pop()
        s += n.value
        stack.extend(n.children)
    return s


def phase_records(rng, n, crc):
    table = {}
    for i in range(n):
        ws = words(rng, 3)
        key = "-".join(ws)
        rec = Record(i, key.upper(), tuple(sorted(set(ws))), next(rng) % 997)
        table[key] = rec
        if i % 3 == 0 and table:
            # drop an old entry: mixed lifetimes
            k = next(iter(table))
            del table[k]
    by_score = {}
    for rec in table.values():
        by_score.setdefault(rec.score, []).append(rec.key)
    top = sorted(by_score.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:50]
    crc = zlib.crc32(repr(top).encode(), crc)
    crc = zlib.crc32(str(len(table)).encode(), crc)
    return crc


def phase_json(rng, n, crc):
    docs = []
    for i in range(n):
        d = {
            "id": i,
            "name": "item%d" % (next(rng) % 100000),
            "vals": [next(rng) % 1000 for _ in range(8)],
            "nested": {"a": [1, 2, {"b": "x" * (next(rng) % 40)}]},
        }
        docs.append(json.dumps(d, sort_keys=True))
        if len(docs) > 500:
            docs = docs[250:]
    total = 0
    for s in docs:
        o = json.loads(s)
        total += sum(o["vals"]) + len(o["nested"]["a"][2]["b"])
    return zlib.crc32(str(total).encode(), crc)


def phase_strings(rng, n, crc):
    parts = []
    for i in range(n):
        line = " ".join(words(rng, 6))
        toks = line.split()
        toks.reverse()
        parts.append("|".join(t.capitalize() for t in toks))
        if len(parts) >= 200:
            crc = zlib.crc32("\n".join(parts).encode(), crc)
            parts = []
    return zlib.crc32("".join(parts).encode(), crc)


def phase_trees(rng, n, crc):
    keep = []
    for i in range(n):
        t = build_tree(rng, 6)
        s = tree_sum(t)
        if i % 10 == 0:
            keep.append(t)
            if len(keep) > 20:
                keep.pop(0)
        crc = zlib.crc32(s.to_bytes(8, "little"), crc)
    return zlib.crc32(str(sum(tree_sum(t) for t in keep)).encode(), crc)


def phase_bigint(rng, n, crc):
    a, b = 1, 1
    acc = 0
    for i in range(n):
        a, b = b, a + b * (1 + next(rng) % 3)
        if b.bit_length() > 20000:
            acc ^= b % 1000000007
            a, b = 1, next(rng) % 100 + 1
    return zlib.crc32(str(acc ^ (b % 998244353)).encode(), crc)


def main():
    scale = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    rng = lcg(12345)
    crc = 0
    for _ in range(scale):
        crc = phase_records(rng, 4000, crc)
        crc = phase_json(rng, 1500, crc)
        crc = phase_strings(rng, 1500, crc)
        crc = phase_trees(rng, 60, crc)
        crc = phase_bigint(rng, 3000, crc)
    print("pyalloc checksum: %08x" % crc)


if __name__ == "__main__":
    main()
