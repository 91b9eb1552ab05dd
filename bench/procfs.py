"""What the benches read of a process in /proc: CPU seconds and the kB
fields of its status files (VmRSS, Pss) or of /proc/meminfo."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

CLK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """utime + stime of a process, in seconds; OSError once it is gone."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def cpu_s_or_zero(pid: int) -> float:
    """`cpu_s`, or 0 for a process that is gone (or went while being read)."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        return cpu_s(pid)
    return 0.0


def kib(path: str, key: str) -> int:
    """A `key: N kB` field of a /proc file (`/proc/<pid>/status`'s VmRSS:,
    `smaps_rollup`'s Pss:, `/proc/meminfo`'s MemAvailable:), 0 if absent."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    return 0
