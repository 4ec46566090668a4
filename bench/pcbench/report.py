"""The report: Markdown tables on stdout (the CI greps "^### Wall time",
the "| workload | thr | pcmalloc |" header and "| **geomean ratio** |"),
and the CSV files of medians and of single runs."""
import csv
import datetime
import math
import os
import platform

from .paths import BENCH_DIR

# metric (a row key), table title, number format
METRICS = [("wall", "Wall time (s)", "%.3f"),
           ("cpu", "CPU time, user+sys (s)", "%.3f"),
           ("rss", "Peak RSS (MiB)", "%.1f")]


def geomeans(s, rows, metric):
    """allocator -> (geometric mean of its ratios or None, how many)."""
    out = {}
    for alloc, _ in s.allocs:
        vals = [r[metric + "_ratio"] for r in rows
                if r["allocator"] == alloc and r.get(metric + "_ratio")]
        out[alloc] = (math.exp(sum(math.log(v) for v in vals) /
                               len(vals)) if vals else None, len(vals))
    return out


def markdown(s, rows):
    allocs = [a for a, _ in s.allocs]
    L = []
    L.append("## pcmalloc benchmarks (%s mode)" % s.mode)
    L.append("")
    L.append("%s; %d CPUs; %s; median of %s repetitions, allocators "
             "interleaved; ratios are allocator / %s (> 1: slower or "
             "bigger than %s)." % (
                 datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
                 os.cpu_count() or 0, platform.platform(terse=True),
                 s.reps(), s.ref, s.ref))
    L.append("")
    for a in allocs:
        L.append("- %s: %s" % (a, s.alloc_info.get(a, "")))
    L.append("")
    for metric, title, fmt in METRICS:
        L += metric_table(s, rows, metric, title, fmt)
    L += metric_table(s, rows, "final_rss", "RSS after teardown (MiB), "
                      "workloads that report it", "%.1f", only_with=True)
    L += bullet_section("Errors", s.errors)
    L += bullet_section("Notes", s.notes)
    return "\n".join(L)


def metric_table(s, rows, metric, title, fmt, only_with=False):
    """One table of a metric; only_with: only the configurations that have
    it (none: no table)."""
    allocs = [a for a, _ in s.allocs]
    by = {(r["workload"], r["threads"], r["allocator"]): r for r in rows}
    configs = s.configs
    if only_with:
        configs = [(w, t) for w, t in s.configs
                   if any(by.get((w["name"], t, a), {}).get(metric)
                          is not None for a in allocs)]
        if not configs:
            return []
    L = ["### %s" % title, ""]
    L.append("| workload | thr | " + " | ".join(allocs) + " |")
    L.append("|---|--:|" + "--:|" * len(allocs))
    for w, t in configs:
        cells = []
        for a in allocs:
            r = by.get((w["name"], t, a))
            if not r or r["status"] not in ("ok", "MISMATCH"):
                cells.append("**%s**" % (r["status"] if r else "-"))
                continue
            v = r.get(metric)
            if v is None:
                cells.append("-")
                continue
            if metric in ("rss", "final_rss"):
                v = v / 1024.0
            cell = fmt % v
            if a != s.ref and r.get(metric + "_ratio"):
                cell += " (%.2f)" % r[metric + "_ratio"]
            if r["status"] == "MISMATCH":
                cell += " **MISMATCH**"
            cells.append(cell)
        L.append("| %s | %d | %s |" % (w["name"], t, " | ".join(cells)))
    gm = geomeans(s, rows, metric)
    L.append("| **geomean ratio** | | " + " | ".join(
        ("%.2f" % gm[a][0]) if gm[a][0] else "-" for a in allocs) + " |")
    L.append("")
    return L


def bullet_section(title, items):
    if not items:
        return []
    return ["### %s" % title, ""] + ["- " + i for i in items] + [""]


def out_paths(s):
    """(medians CSV, per-run CSV, PNG, base name for the chart's files)."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = s.args.out or os.path.join(BENCH_DIR, "results")
    if out.endswith(".csv"):
        base = out[:-4]
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    else:
        os.makedirs(out, exist_ok=True)
        base = os.path.join(out, "bench-%s-%s" % (s.mode, stamp))
    return base + ".csv", base + "-runs.csv", base + ".png", base


def write_csv(s, rows, path, raw_path):
    cols = ["mode", "workload", "threads", "allocator", "reps", "status",
            "wall_median_s", "cpu_median_s", "maxrss_median_kib",
            "wall_ratio", "cpu_ratio", "rss_ratio", "reference",
            "checksum", "final_rss_median_kib"]
    with open(path, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(cols)
        for r in rows:
            def num(k, fmt="%.6f"):
                v = r.get(k)
                return "" if v is None else fmt % v
            wr.writerow([s.mode, r["workload"], r["threads"],
                         r["allocator"], r["reps"], r["status"],
                         num("wall"), num("cpu"), num("rss", "%d"),
                         num("wall_ratio", "%.4f"),
                         num("cpu_ratio", "%.4f"),
                         num("rss_ratio", "%.4f"), s.ref,
                         r["checksum"], num("final_rss", "%d")])
    with open(raw_path, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["mode", "workload", "threads", "allocator", "rep",
                     "status", "wall_s", "cpu_s", "maxrss_kib",
                     "checksum"])
        for w, t in s.configs:
            for a, _ in s.allocs:
                for i, r in enumerate(s.results.get((w["name"], t, a), [])):
                    wr.writerow([s.mode, w["name"], t, a, i + 1,
                                 r.status, "%.6f" % r.wall,
                                 "%.6f" % r.cpu, r.rss_kib, r.checksum])
