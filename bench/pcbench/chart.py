"""The gnuplot chart: one bar per allocator and configuration, of its
wall time and of its peak RSS as a ratio to the reference allocator."""
import os
import shutil
import subprocess

from .log import log
from .packages import apt_install


def chart(s, rows, png, base):
    """Draw png; returns its path, or None (with a note) when there is no
    chart."""
    gp = shutil.which("gnuplot")
    if not gp and apt_install(["gnuplot-nox"], "chart",
                              s.allow_install):
        gp = shutil.which("gnuplot")
    if not gp:
        log("note: gnuplot not available - no chart")
        s.notes.append("gnuplot not available: no chart")
        return None
    others = [a for a, _ in s.allocs if a != s.ref]
    if not others:
        log("note: only one allocator - no chart")
        return None
    datf = base + "-chart.dat"
    rng = write_ratios(s, rows, others, datf)
    script = plot_script(s, others, datf, rng, png)
    gpf = base + "-chart.gp"
    return run_gnuplot(s, gp, gpf, script, datf, png)


def write_ratios(s, rows, others, datf):
    """Write the bars, one gnuplot index per (panel, allocator); returns
    each panel's y range."""
    by = {(r["workload"], r["threads"], r["allocator"]): r for r in rows}
    m = len(others)
    width = 0.8 / m
    rng = {}
    with open(datf, "w") as f:
        for panel in ("wall", "rss"):
            lo, hi = 1.0, 1.0
            for j, a in enumerate(others):
                f.write("# %s %s\n" % (panel, a))
                wrote = False
                for i, (w, t) in enumerate(s.configs):
                    r = by.get((w["name"], t, a))
                    v = r and r.get(panel + "_ratio")
                    if not v:
                        continue
                    x = i + (j - (m - 1) / 2.0) * width
                    f.write("%.4f %.5f %.4f %.4f %.5f %.5f\n" % (
                        x, v, x - width / 2, x + width / 2, min(1, v),
                        max(1, v)))
                    lo, hi = min(lo, v), max(hi, v)
                    wrote = True
                if not wrote:  # keep gnuplot's index numbering
                    f.write("nan nan nan nan nan nan\n")
                f.write("\n\n")
            rng[panel] = (lo / 1.25, hi * 1.25)
    return rng


def plot_script(s, others, datf, rng, png):
    labels = ["%s/%d" % (w["name"], t) if w["mt"] else w["name"]
              for w, t in s.configs]
    n, m = len(s.configs), len(others)
    tics = [0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 1, 1.1, 1.25, 1.5,
            2, 3, 5, 10, 20, 50, 100]
    ytics = ", ".join('"%g" %g' % (v, v) for v in tics)
    xt = ", ".join('"%s" %d' % (l, i) for i, l in enumerate(labels))
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"]
    W = max(1000, 70 * n + 200)

    def plots(panel_idx):
        ps = []
        for j, a in enumerate(others):
            ps.append("'%s' index %d using 1:2:3:4:5:6 with boxxyerror "
                      "fs solid 0.8 lc rgb '%s' title '%s'" % (
                          datf, panel_idx * m + j,
                          colors[j % len(colors)], a))
        return ", ".join(ps)

    script = """
set terminal pngcairo size %(W)d,1000 font "sans,9"
set output '%(png)s'
set multiplot layout 2,1 title "pcmalloc benchmarks (%(mode)s): ratio to %(ref)s, log scale (above 1 = worse than %(ref)s)"
set logscale y
set ytics (%(ytics)s)
set xrange [-0.6:%(xmax)g]
set xtics (%(xt)s) rotate by 40 right
set grid ytics
set key outside right top
set arrow from -0.6,1 to %(xmax)g,1 nohead lw 2 lc rgb 'black' front
set ylabel "wall time / %(ref)s"
set yrange [%(wlo)g:%(whi)g]
plot %(p0)s
set ylabel "peak RSS / %(ref)s"
set yrange [%(rlo)g:%(rhi)g]
plot %(p1)s
unset multiplot
""" % dict(W=W, png=png, mode=s.mode, ref=s.ref, ytics=ytics,
       wlo=rng["wall"][0], whi=rng["wall"][1], rlo=rng["rss"][0],
       rhi=rng["rss"][1],
       xmax=n - 0.4, xt=xt, p0=plots(0), p1=plots(1))
    return script


def run_gnuplot(s, gp, gpf, script, datf, png):
    with open(gpf, "w") as f:
        f.write(script)
    r = subprocess.run([gp, gpf], capture_output=True, text=True)
    if r.returncode != 0 and "pngcairo" in r.stderr:
        with open(gpf, "w") as f:
            f.write(script.replace("pngcairo", "png"))
        r = subprocess.run([gp, gpf], capture_output=True, text=True)
    if r.returncode != 0:
        log("note: gnuplot failed, no chart: %s (script kept: %s)"
            % (r.stderr.strip()[-300:], gpf))
        s.notes.append("gnuplot failed: no chart")
        return None
    for f in (gpf, datf):
        os.unlink(f)
    return png
