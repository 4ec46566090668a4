"""pcmalloc benchmark runner, the package behind bench/run.py.

One module per concept, called from run.py in this order:

    session     the state of one invocation: options, allocators, results
    allocators  which allocators, where their libraries are, the probe
    workloads   the table of workloads; choosing and preparing them
    runner      interleaved runs, checksum checks, medians
    redis       the redis workload (a server plus a client)
    spawn       one measured process (pcb_spawn), base environment
    report      Markdown on stdout and the CSV files
    chart       the gnuplot PNG
    packages    libraries and Debian packages on this machine
    paths, log  where things are; progress on stderr

Each stage is a function whose first argument, s, is the Session.
"""
