"""Progress and errors go to stderr: stdout is the Markdown report."""
import sys


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def error(msg):
    log("ERROR: " + msg)
