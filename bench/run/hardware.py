"""Hardware fingerprint: what the rows say about the device, without personal data.

No hostname, user name or path is recorded; the fingerprint hash covers only the hardware
fields so the same machine gets the same id across runs.
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Fingerprint:
    host_fingerprint: str
    cpu_model: str
    cpu_arch: str
    cpu_cores_physical: int | None
    cpu_cores_logical: int
    ram_bytes: int
    os_name: str
    os_release: str
    python_version: str
    accelerators: str
    available_eps: str


def cpu_model(proc_root: Path = Path("/proc")) -> str:
    """The CPU's marketing name from the OS, exactly as reported (profiles match on it)."""
    system = platform.system()
    if system == "Darwin":
        try:
            return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"],
                                  capture_output=True, text=True, timeout=5).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    cpuinfo = proc_root / "cpuinfo"
    if cpuinfo.exists():
        fields: dict[str, str] = {}
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
        # x86 has "model name"; many ARM kernels only "Hardware" or nothing useful.
        for key in ("model name", "Hardware", "Model", "Processor", "cpu model"):
            if fields.get(key):
                return fields[key]
    dt_model = Path("/proc/device-tree/model")
    if dt_model.exists():
        return dt_model.read_bytes().rstrip(b"\0").decode(errors="replace")
    return platform.processor() or "unknown"


def accelerators() -> str:
    """GPUs NVML can see, ';'-joined; "none" when there are none (the common case)."""
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError:
        return "none"
    try:
        pynvml.nvmlInit()
        try:
            names = [pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(i))
                     for i in range(pynvml.nvmlDeviceGetCount())]
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # NVMLError_LibraryNotFound and friends: no NVIDIA driver
        return "none"
    return ";".join(n.decode() if isinstance(n, bytes) else str(n) for n in names) or "none"


def fingerprint(available_eps: list[str]) -> Fingerprint:
    import psutil

    model = cpu_model()
    arch = platform.machine()
    physical = psutil.cpu_count(logical=False)
    logical = psutil.cpu_count(logical=True) or 1
    ram = psutil.virtual_memory().total
    accel = accelerators()
    key = "|".join([model, arch, str(physical), str(logical), str(round(ram / 2**30)),
                    platform.system(), accel])
    return Fingerprint(
        host_fingerprint=hashlib.sha256(key.encode()).hexdigest()[:16],
        cpu_model=model,
        cpu_arch=arch,
        cpu_cores_physical=physical,
        cpu_cores_logical=logical,
        ram_bytes=ram,
        os_name=platform.system(),
        os_release=platform.release(),
        python_version=platform.python_version(),
        accelerators=accel,
        available_eps=";".join(available_eps),
    )


def on_battery() -> bool | None:
    """True on battery, False on mains, None when the OS reports no battery."""
    import psutil

    try:
        battery = psutil.sensors_battery()
    except (AttributeError, NotImplementedError):
        return None
    return None if battery is None else not battery.power_plugged


def physical_cores() -> int:
    """The default thread count: physical cores (logical where the OS does not say)."""
    import psutil

    return psutil.cpu_count(logical=False) or psutil.cpu_count() or 1


def git_commit() -> str | None:
    """The edgebench checkout's commit, when running from one (provenance column)."""
    from bench import paths

    if not (paths.REPO_ROOT / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(paths.REPO_ROOT), "rev-parse", "--short=12",
                              "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
