"""Hardware fingerprint: what the rows say about the device, without personal data.

Facts come from bench.machine (one layer with a root path); this module only shapes them.

No hostname, user name or path is recorded; the fingerprint hash covers only the hardware
fields so the same machine gets the same id across runs.
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
from dataclasses import dataclass

from bench.machine.facts import Machine


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
    virtualized: bool | None = None
    cloud_provider: str | None = None  # from DMI: a cloud VM is priced by its rent


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


def fingerprint(available_eps: list[str], machine: Machine | None = None) -> Fingerprint:
    """The rows' hardware columns, from the machine facts layer (a fake machine in tests)."""
    machine = machine or Machine.from_env()
    facts = machine.facts()
    model, arch = facts.cpu_model, facts.cpu_arch
    physical, logical = facts.cores_physical, facts.cores_logical
    ram = facts.ram_bytes or 0
    accel = accelerators() if machine.is_real else "none"
    key = "|".join([model, arch, str(physical), str(logical), str(round(ram / 2**30)),
                    facts.os_name, accel])
    return Fingerprint(
        host_fingerprint=hashlib.sha256(key.encode()).hexdigest()[:16],
        cpu_model=model,
        cpu_arch=arch,
        cpu_cores_physical=physical,
        cpu_cores_logical=logical,
        ram_bytes=ram,
        os_name=facts.os_name,
        os_release=platform.release(),
        python_version=platform.python_version(),
        accelerators=accel,
        available_eps=";".join(available_eps),
        virtualized=facts.is_vm,
        cloud_provider=facts.cloud_provider,
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
