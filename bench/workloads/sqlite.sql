-- In-memory SQLite workload for the pcmalloc benchmarks.
-- bench/run.py replaces @ROWS@ with the row count and feeds this to
-- `sqlite3 :memory:` on stdin. Everything is deterministic (no random()),
-- so the output is identical under every allocator.
PRAGMA cache_size = -200000;
CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER, k INTEGER, name TEXT, pad BLOB);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < @ROWS@)
INSERT INTO t(id, grp, k, name, pad)
SELECT x, x % 97, (x * 2654435761) % 1000003,
       printf('name-%d-%s', x / 3, hex(((x / 3) * 7919) % 65536)),
       zeroblob(16 + (x * 31) % 200)
FROM c;
CREATE INDEX t_k ON t(k);
CREATE INDEX t_name ON t(name);
SELECT 'rows', count(*), sum(length(name)), sum(length(pad)) FROM t;
SELECT 'groups', count(*), sum(c), max(c) FROM (SELECT grp, count(*) AS c FROM t GROUP BY grp);
SELECT 'top', grp, count(*), sum(k) % 1000000007 FROM t GROUP BY grp ORDER BY sum(k) DESC LIMIT 3;
SELECT 'distinct', count(DISTINCT name) FROM t;
CREATE TABLE u AS SELECT name, count(*) AS n, group_concat(id) AS ids FROM t GROUP BY name;
SELECT 'concat', count(*), sum(length(ids)) FROM u;
SELECT 'join', count(*), sum(t.k % 1000) FROM t JOIN u ON t.name = u.name WHERE u.n > 1;
UPDATE t SET name = name || '-upd', pad = zeroblob(length(pad) + 64) WHERE id % 3 = 0;
DELETE FROM t WHERE id % 5 = 0;
SELECT 'after', count(*), sum(length(name)), sum(length(pad)) FROM t;
SELECT 'range', count(*), sum(id) FROM t WHERE k BETWEEN 1000 AND 400000;
SELECT 'order', group_concat(id) FROM (SELECT id FROM t ORDER BY name DESC, id LIMIT 20);
DROP TABLE u;
VACUUM;
SELECT 'final', count(*) FROM t;
