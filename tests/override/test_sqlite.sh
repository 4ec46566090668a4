#!/bin/bash
# sqlite3 building, indexing and querying an in-memory table, with and
# without pcmalloc preloaded.  Catches: corruption under sqlite's page
# cache and b-tree allocation patterns (many same-size blocks, realloc).
. "$(dirname "$0")/common.sh"
need sqlite3
check_preload_maps
cat > "$WORK/q.sql" <<'SQL'
CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, payload BLOB);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000)
INSERT INTO t SELECT x, x % 997, 'name-' || (x * 7919 % 100003), zeroblob(x % 300) FROM c;
CREATE INDEX t_grp ON t(grp);
CREATE INDEX t_name ON t(name);
SELECT count(*), sum(length(payload)), max(name) FROM t;
SELECT grp, count(*), min(name) FROM t GROUP BY grp ORDER BY count(*) DESC, grp LIMIT 5;
SELECT count(*) FROM t a JOIN t b ON a.name = b.name AND a.id < b.id;
DELETE FROM t WHERE id % 3 = 0;
UPDATE t SET name = name || '-' || grp WHERE id % 5 = 0;
SELECT count(*), count(DISTINCT name), total(grp) FROM t;
SELECT group_concat(name, ',') FROM (SELECT name FROM t ORDER BY name LIMIT 20);
VACUUM;
SELECT count(*) FROM t WHERE name LIKE 'name-1%';
SQL
STDIN_FILE=$WORK/q.sql run_compare sqlite sqlite3 :memory:
