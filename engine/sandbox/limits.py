"""Resource limits a process sets on itself before it runs a team's code (sandboxed child, served version)."""

from __future__ import annotations

import resource


def data_bytes() -> int:
    """This process's data size now (``VmData``: heap and private writable mappings)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmData:"):
                return int(line.split()[1]) << 10
    raise OSError("no VmData in /proc/self/status")


def limit_memory(memory_mb: int) -> int:
    """Allow this process (and what it starts) ``memory_mb`` MiB of data beyond what it uses now.

    ``RLIMIT_DATA`` rather than ``RLIMIT_AS``: address space that is only
    reserved (each thread's malloc arena reserves 64 MiB) does not count, so
    the figure is what the code really allocates. Past it an allocation fails
    (Python raises MemoryError) instead of the machine running out. Returns
    the limit set, in bytes.
    """
    limit = data_bytes() + (memory_mb << 20)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    return limit
