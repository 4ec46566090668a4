# Allocation-heavy, deterministic Python workload (run with
# PYTHONMALLOC=malloc so every object goes through malloc/realloc/free).
import collections
import json
import random
import threading

rng = random.Random(12345)

# dicts of strings, grown and shrunk
d = {}
for i in range(200000):
    d["k%d" % i] = "v" * (i % 97) + str(i)
for i in range(0, 200000, 3):
    del d["k%d" % i]
print("dict", len(d), sum(len(v) for v in d.values()))

# lists of lists, sorting, slicing
lists = [[rng.randrange(1000000) for _ in range(rng.randrange(1, 200))]
         for _ in range(5000)]
lists.sort(key=lambda l: (len(l), l[0]))
flat = sorted(x for l in lists for x in l)
print("lists", len(flat), flat[0], flat[-1], sum(flat[::1000]))

# string building and big strings (realloc growth)
s = ""
for i in range(50000):
    s += chr(65 + i % 26)
big = "".join(str(i) for i in range(300000))
print("strings", len(s), len(big), hash(big[:1000]) == hash(big[:1000]),
      big.count("12345"))

# bytes/bytearray of large (mmap-sized) blocks
ba = bytearray()
for i in range(200):
    ba += bytes([i % 256]) * 40000
print("bytes", len(ba), sum(ba[::4096]))

# json round trip of a nested structure
obj = {"items": [{"id": i, "name": "n%d" % i, "tags": ["t%d" % (i % 7)] * (i % 5)}
                 for i in range(30000)]}
text = json.dumps(obj, sort_keys=True)
back = json.loads(text)
print("json", len(text), len(back["items"]), back["items"][-1]["name"])

# collections, sets
c = collections.Counter(w for w in ("w%d" % (rng.randrange(5000)) for _ in range(200000)))
print("counter", len(c), c.most_common(1)[0][1] > 0)
st = set(range(0, 500000, 7)) - set(range(0, 500000, 11))
print("set", len(st))

# threads allocating (results gathered deterministically)
results = [None] * 8
def work(k):
    acc = []
    for i in range(20000):
        acc.append(("%d-%d" % (k, i)) * (i % 13 + 1))
    results[k] = sum(len(x) for x in acc)
ts = [threading.Thread(target=work, args=(k,)) for k in range(8)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print("threads", results)

# freeing everything
del d, lists, flat, s, big, ba, obj, text, back, c, st
print("done")
