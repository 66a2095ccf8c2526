"""Peak resident memory of the benchmark process (psutil's RSS definition, via the kernel)."""

from __future__ import annotations

import sys
from pathlib import Path


class PeakRss:
    """Peak resident memory of this process since the last reset.

    Linux lets a process reset its high-water mark (/proc/self/clear_refs, value 5), so each
    model's peak excludes earlier models; elsewhere the peak is the process lifetime's, and the
    row says so. `proc_self` is a root path so tests can point it at a fake /proc/self.
    """

    def __init__(self, proc_self: Path = Path("/proc/self")) -> None:
        self._clear = proc_self / "clear_refs"
        self._status = proc_self / "status"
        self.resettable = False

    def reset(self) -> None:
        try:
            self._clear.write_text("5")
            self.resettable = True
        except OSError:
            self.resettable = False

    def read_bytes(self) -> int:
        if self.resettable:
            for line in self._status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024
