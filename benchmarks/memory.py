"""Peak memory of this process, as the benchmarks report it."""

from __future__ import annotations


def peak_rss_mb() -> float:
    """VmHWM: the high-water mark of this process's own address space.

    Not getrusage's ru_maxrss: on Linux that survives fork and exec, so a child started by a parent holding
    several GB (the seeding step) reports the parent's size, which is how a 6.8 GB "outlier" was once recorded.
    """
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("/proc/self/status has no VmHWM line (this needs Linux)")
