"""CPU threads for training (`train.threads = 0`): as many as the cores other programs leave idle.

torch's default, one intra-op thread per core, is fastest on an idle machine, but on a busy one every
parallel op waits for the thread that shares its core with another program: with one CPU-bound neighbour on
2 cores the default recipe ran at 0.14x its idle speed with 2 threads and 0.6x with 1. So before training
starts, the cores busy with other programs are counted from /proc/stat over a short interval (our own CPU
time subtracted) and torch gets the rest (at least 1). The count is chosen once and kept in the checkpoint,
so a resumed run uses the same one (results depend on it in the last bits).
"""

from __future__ import annotations

import os
import time

PROBE_SECONDS = 0.3
SLACK = 0.25  # a core counts as idle when at most 75% of it is busy with other programs


def cpu_jiffies(stat: str) -> tuple[float, float, int]:
    """(busy, total) jiffies over all CPUs and the number of CPUs, from the text of /proc/stat."""
    lines = stat.splitlines()
    fields = [float(x) for x in lines[0].split()[1:9]]
    idle = fields[3] + fields[4]  # idle + iowait
    n = sum(1 for ln in lines[1:] if ln.startswith("cpu"))
    return sum(fields) - idle, sum(fields), max(n, 1)


def threads_for(others_busy: float, cores: int) -> int:
    """Threads for `cores` cores of which `others_busy` (in cores) are used by other programs."""
    return max(1, min(cores, int(cores - others_busy + SLACK)))


def idle_core_threads(seconds: float = PROBE_SECONDS) -> int | None:
    """Threads to use now: the cores other programs leave idle, measured over `seconds`; None where
    /proc/stat cannot be read (torch's default then stands)."""
    try:
        with open("/proc/stat") as f:
            busy0, total0, n = cpu_jiffies(f.read())
        own0 = time.process_time()
        time.sleep(seconds)
        with open("/proc/stat") as f:
            busy1, total1, _ = cpu_jiffies(f.read())
    except (OSError, ValueError, IndexError):
        return None
    own = (time.process_time() - own0) / seconds  # cores this process used meanwhile
    if total1 <= total0:
        return None
    others = max(0.0, (busy1 - busy0) / (total1 - total0) * n - own)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else n
    return threads_for(others, min(cores, n))
