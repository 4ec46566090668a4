"""Debian packages and shared libraries on this machine: find an
allocator's library, its package version, and install what is missing when
the runner may (as root, without --no-install)."""
import os
import shutil
import subprocess

from .log import log

LIB_DIRS = ["/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu",
            "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib",
            "/usr/local/lib"]


def have_root():
    return hasattr(os, "geteuid") and os.geteuid() == 0


_apt_updated = False


def apt_install(pkgs, why, allow):
    """Install Debian packages if we may; returns True on success."""
    global _apt_updated
    if not allow:
        log("note: %s missing (%s); not installing (--no-install)"
            % (" ".join(pkgs), why))
        return False
    if not have_root() or not shutil.which("apt-get"):
        log("note: %s missing (%s) and apt-get is not usable here"
            % (" ".join(pkgs), why))
        return False
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for attempt in range(2):
        log("installing %s with apt-get (%s)..." % (" ".join(pkgs), why))
        r = subprocess.run(["apt-get", "install", "-y", "-q"] + pkgs,
                           env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
        if r.returncode == 0:
            return True
        if _apt_updated:
            break
        _apt_updated = True
        subprocess.run(["apt-get", "update", "-q"], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log("note: could not install %s: %s" % (" ".join(pkgs),
                                             r.stderr.strip()[-300:]))
    return False


def find_lib(soname):
    for d in LIB_DIRS:
        p = os.path.join(d, soname)
        if os.path.exists(p):
            return p
    try:
        out = subprocess.run(["ldconfig", "-p"], capture_output=True,
                             text=True).stdout
        for line in out.splitlines():
            if line.strip().startswith(soname + " "):
                return line.rsplit("=>", 1)[1].strip()
    except OSError:
        pass
    return None


def pkg_version(pkg):
    try:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg],
                           capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else ""
    except OSError:
        return ""

