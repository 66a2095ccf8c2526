"""Memory read bandwidth, measured once per machine and thread count: the decode roofline.

Decode reads every weight once per token, so tokens/s can never beat bandwidth / bytes_per_token
(docs/roofline.md). The bandwidth is measured with numpy: a float32 buffer much larger than the
last-level cache (1 GiB or 8x the LLC, whichever is larger, at most a quarter of the available
memory) is filled (every page written: a calloc'd buffer maps one shared zero page and would
measure the cache), split into one slice per thread, and each thread reduces its slice with
`max`, which releases the GIL (verified: a Python loop keeps running beside it). One untimed
pass, then the median of several timed passes, in bytes/s. It runs in a child process, so the
buffer never becomes this process's peak RSS (a lifetime peak where it cannot be reset). Results
are cached in the user cache dir keyed by host fingerprint and thread count: a machine's property.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

from bench import paths

GIB = 2**30
MIN_BUFFER_BYTES = 64 * 2**20
LLC_MULTIPLE = 8
PASSES = 5
CACHE_FILE = "bandwidth.json"
_NO_MEMORY = 3  # the child's exit status when the buffer does not fit
# EPs whose weights are read from host memory by the CPU; a GPU's own memory is another roofline.
HOST_MEMORY_EPS = frozenset({"cpu", "xnnpack"})


@dataclass(frozen=True)
class Bandwidth:
    """One thread count's measured read bandwidth, and how it was measured."""

    threads: int
    bytes_s: float
    buffer_bytes: int
    passes: int
    measured_utc: str
    method: str


def applies(ep: str) -> bool:
    """Whether host memory bandwidth bounds decode on this EP."""
    return ep in HOST_MEMORY_EPS


def median_rate_bytes_s(bytes_read: int, pass_s: Sequence[float]) -> float:
    """Bytes read per pass over the median pass time: robust to one pass a neighbour slowed."""
    if not pass_s or any(s <= 0 for s in pass_s):
        raise ValueError(f"pass times must be positive, got {list(pass_s)}")
    return bytes_read / statistics.median(pass_s)


def _size_bytes(text: str) -> int | None:
    match = re.fullmatch(r"\s*(\d+)\s*([KMG]?)B?\s*", text, re.IGNORECASE)
    if not match:
        return None
    return int(match[1]) * {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}[match[2].upper()]


def last_level_cache_bytes(root: Path = Path("/")) -> int | None:
    """The largest data/unified cache level of cpu0 (Linux sysfs), else sysconf, else None."""
    best: tuple[int, int] | None = None
    for index in sorted((root / "sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            if (index / "type").read_text().strip() == "Instruction":
                continue
            level = int((index / "level").read_text())
            size = _size_bytes((index / "size").read_text())
        except (OSError, ValueError):
            continue
        if size and (best is None or level > best[0]):
            best = (level, size)
    if best:
        return best[1]
    if root != Path("/"):
        return None
    for name in ("SC_LEVEL3_CACHE_SIZE", "SC_LEVEL2_CACHE_SIZE"):
        try:
            size = os.sysconf(name)
        except (ValueError, OSError):
            continue
        if size > 0:
            return size
    return None


def buffer_bytes(llc_bytes: int | None, available_bytes: int) -> int:
    """1 GiB or 8x the LLC, whichever is larger, within a quarter of the available memory."""
    want = max(GIB, LLC_MULTIPLE * (llc_bytes or 0))
    size = max(MIN_BUFFER_BYTES, min(want, available_bytes // 4))
    return size - size % 4096


def describe(size_bytes: int, llc_bytes: int | None, passes: int) -> str:
    llc = f"{LLC_MULTIPLE}x the {llc_bytes / 2**20:.0f} MiB last-level cache" if llc_bytes else \
        "last-level cache size unknown"
    return (f"numpy max over a {size_bytes / GIB:.2f} GiB float32 buffer ({llc}; at least 1 GiB) "
            f"split across the threads, median of {passes} passes after one untimed")


def _pass_s(parts: Sequence[Any], clock: Callable[[], float]) -> float:
    """One pass: every thread reduces its slice; timed from the common start to the last join."""
    start = threading.Barrier(len(parts) + 1)

    def read(part: Any) -> None:
        start.wait()
        part.max()

    workers = [threading.Thread(target=read, args=(p,), daemon=True) for p in parts]
    for w in workers:
        w.start()
    start.wait()
    t0 = clock()
    for w in workers:
        w.join()
    return clock() - t0


def measure(threads: Sequence[int], *, size_bytes: int, passes: int = PASSES,
            clock: Callable[[], float] = time.perf_counter,
            method: str = "") -> dict[int, Bandwidth]:
    """Read bandwidth for each thread count over one buffer of `size_bytes`."""
    import numpy as np

    # float32: numpy's SIMD max keeps up with memory there (float64 max was compute-bound,
    # about half the rate ONNX Runtime itself reached on the same machine)
    buf = np.empty(max(size_bytes // 4, 1), dtype=np.float32)
    buf.fill(1.0)
    when = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    results: dict[int, Bandwidth] = {}
    for n in threads:
        parts = np.array_split(buf, n)
        _pass_s(parts, lambda: 0.0)  # untimed: threads, TLB and frequency settle
        times = [_pass_s(parts, clock) for _ in range(passes)]
        results[n] = Bandwidth(n, median_rate_bytes_s(buf.nbytes, times), buf.nbytes, passes,
                               when, method or describe(buf.nbytes, None, passes))
    return results


def measure_in_child(threads: Sequence[int], *, size_bytes: int, method: str,
                     passes: int = PASSES) -> dict[int, Bandwidth]:
    """`measure` in a child process; MemoryError when its buffer does not fit, RuntimeError
    when it fails otherwise (killed by the OOM killer, say)."""
    root = str(Path(__file__).resolve().parents[2])  # the folder holding bench/
    code = (f"import sys; sys.path.insert(0, {root!r}); "
            "from bench.run.roofline import _child; _child()")
    done = subprocess.run([sys.executable, "-c", code, str(size_bytes), str(passes),
                           *map(str, threads)], capture_output=True, text=True)
    if done.returncode == _NO_MEMORY:
        raise MemoryError
    try:
        found = {int(n): Bandwidth(**{**b, "method": method})
                 for n, b in json.loads(done.stdout).items()}
    except (ValueError, TypeError, AttributeError):
        tail = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise RuntimeError(tail[:200]) from None
    return found



def _child() -> None:
    size, passes, *threads = map(int, sys.argv[1:])
    try:
        found = measure(threads, size_bytes=size, passes=passes)
    except MemoryError:
        sys.exit(_NO_MEMORY)
    print(json.dumps({n: asdict(b) for n, b in found.items()}))


# -- the cache: one JSON file, keyed "<host fingerprint>/t<threads>" --------------------------
def cache_path() -> Path:
    return paths.cache_dir() / CACHE_FILE


def _key(host_fingerprint: str, threads: int) -> str:
    return f"{host_fingerprint}/t{threads}"


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # none yet, or damaged: measured again and rewritten
    return data if isinstance(data, dict) else {}


def load_cached(path: Path, host_fingerprint: str, threads: int) -> Bandwidth | None:
    entry = _read_cache(path).get(_key(host_fingerprint, threads))
    try:
        found = Bandwidth(**entry)
    except TypeError:
        return None
    ok = found.threads == threads and isinstance(found.bytes_s, (int, float)) and found.bytes_s > 0
    return found if ok else None


def store(path: Path, host_fingerprint: str, results: dict[int, Bandwidth]) -> None:
    """Read, merge, replace atomically: other hosts' and thread counts' entries stay."""
    data = _read_cache(path)
    data.update({_key(host_fingerprint, n): asdict(b) for n, b in results.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _rates(found: dict[int, Bandwidth]) -> str:
    return ", ".join(f"{n} thread{'s' if n > 1 else ''} {b.bytes_s / 1e9:.1f} GB/s"
                     for n, b in sorted(found.items()))


def bandwidths(threads: Sequence[int], host_fingerprint: str, *, remeasure: bool = False,
               path: Path | None = None, report: Callable[[str], None] = lambda msg: None,
               measure_fn: Callable[..., dict[int, Bandwidth]] = measure_in_child,
               size_bytes: int | None = None) -> dict[int, float]:
    """bytes/s per thread count, from the cache or measured (and cached) now; {} when the
    buffer cannot be allocated (the roofline columns then stay empty)."""
    path = path or cache_path()
    cached = {} if remeasure else {n: b for n in sorted(set(threads))
                                   if (b := load_cached(path, host_fingerprint, n)) is not None}
    todo = sorted(set(threads) - set(cached))
    fresh: dict[int, Bandwidth] = {}
    if cached:
        first = min(b.measured_utc for b in cached.values())
        report(f"memory read bandwidth (cached {first}; --remeasure-bandwidth refreshes): "
               f"{_rates(cached)}")
    if todo:
        import psutil

        llc = last_level_cache_bytes()
        size = size_bytes or buffer_bytes(llc, psutil.virtual_memory().available)
        method = describe(size, llc, PASSES)
        report(f"measuring memory read bandwidth for {', '.join(map(str, todo))} threads: {method}")
        try:
            fresh = measure_fn(todo, size_bytes=size, method=method)
        except (MemoryError, RuntimeError) as exc:
            why = "the buffer could not be allocated" if isinstance(exc, MemoryError) else exc
            report(f"memory read bandwidth not measured ({why}); the roofline columns stay "
                   "empty for these threads")
            return {n: b.bytes_s for n, b in cached.items()}
        report(f"memory read bandwidth: {_rates(fresh)}")
        try:
            store(path, host_fingerprint, fresh)
        except OSError as exc:
            report(f"memory read bandwidth not cached ({exc.strerror or exc}); it is measured "
                   "again next run")
    return {n: b.bytes_s for n, b in {**cached, **fresh}.items()}
