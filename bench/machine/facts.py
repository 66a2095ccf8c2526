"""Machine facts from /proc, /sys and the device tree under a root path (a fake tree in tests).

Only facts are read here; what they mean (a device profile, a CPU class, a meter) is decided by
the stages above. On the real root of a non-Linux system the few facts available come from the
platform module and sysctl instead.
"""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT_ENV = "EDGEBENCH_MACHINE_ROOT"
LAPTOP_CHASSIS = frozenset({8, 9, 10, 14, 30, 31, 32})  # SMBIOS: portable, laptop, notebook, ...
_ARM_IMPLEMENTERS = {"0x41": "ARM", "0x51": "Qualcomm", "0x61": "Apple", "0x48": "HiSilicon",
                     "0x4e": "NVIDIA", "0x46": "Fujitsu", "0xc0": "Ampere"}
_VM_VENDORS = ("qemu", "kvm", "vmware", "microsoft corporation", "xen", "amazon ec2", "google",
               "innotek", "virtualbox", "parallels", "openstack", "digitalocean", "hetzner",
               "alibaba", "oracle")


@dataclass(frozen=True)
class MachineFacts:
    cpu_model: str  # exactly as the OS reports it (device profiles match on it)
    cpu_vendor: str  # GenuineIntel, AuthenticAMD, ARM, Qualcomm, Apple, ... or "unknown"
    cpu_arch: str  # x86_64, aarch64, arm64, ...
    cores_logical: int
    cores_physical: int | None
    ram_bytes: int | None
    os_name: str
    hypervisor_flag: bool  # the CPU flag a hypervisor sets for its guests
    dmi_vendor: str | None  # /sys/class/dmi/id/sys_vendor
    dmi_product: str | None
    chassis_type: int | None  # SMBIOS chassis type
    board_model: str | None  # device-tree model (Raspberry Pi, Jetson, phones)
    has_battery: bool

    @property
    def is_vm(self) -> bool:
        """A cloud or desktop VM: the hypervisor flag, or a hypervisor's DMI vendor/product."""
        dmi = f"{self.dmi_vendor or ''} {self.dmi_product or ''}".lower()
        return self.hypervisor_flag or any(v in dmi for v in _VM_VENDORS)

    @property
    def is_laptop(self) -> bool:
        return self.chassis_type in LAPTOP_CHASSIS or (self.has_battery and not self.is_vm)


class Machine:
    """Reads facts under `root` ("/" is this machine); `arch` and `system` override the host's."""

    def __init__(self, root: Path | str = Path("/"), *, arch: str | None = None,
                 system: str | None = None) -> None:
        self.root = Path(root)
        self._arch = arch
        self._system = system

    @classmethod
    def from_env(cls) -> "Machine":
        """This machine, or the fake one EDGEBENCH_MACHINE_ROOT points at (tests, demos)."""
        root = os.environ.get(ROOT_ENV)
        return cls(Path(root), system="Linux") if root else cls()

    @property
    def is_real(self) -> bool:
        return self.root == Path("/")

    @property
    def system(self) -> str:
        return self._system or platform.system()

    def text(self, rel: str) -> str | None:
        """A file under the root, stripped (NULs too: device-tree strings end in one), or None."""
        try:
            return (self.root / rel).read_bytes().decode(errors="replace").strip("\0 \n\t") or None
        except OSError:
            return None

    def path(self, rel: str) -> Path:
        return self.root / rel

    def cpuinfo(self) -> list[dict[str, str]]:
        """/proc/cpuinfo as one dict per block (one per logical CPU, plus trailing blocks)."""
        blocks, current = [], {}
        for line in (self.text("proc/cpuinfo") or "").splitlines():
            if not line.strip():
                if current:
                    blocks.append(current)
                current = {}
                continue
            key, _, value = line.partition(":")
            current.setdefault(key.strip(), value.strip())
        if current:
            blocks.append(current)
        return blocks

    def facts(self) -> MachineFacts:
        blocks = self.cpuinfo()
        cpus = [b for b in blocks if "processor" in b and b["processor"].isdigit()]
        first = cpus[0] if cpus else {}
        merged = {k: v for b in reversed(blocks) for k, v in b.items()}
        logical = len(cpus) or (os.cpu_count() if self.is_real else None) or 1
        cores = {(b.get("physical id", "0"), b["core id"]) for b in cpus if "core id" in b}
        physical = len(cores) or (None if first.get("vendor_id") else logical if cpus else None)
        if physical is None and self.is_real:
            physical = _psutil_physical()
        return MachineFacts(
            cpu_model=self._cpu_model(first, merged), cpu_vendor=_vendor(first),
            cpu_arch=self._arch or (_arch_from_cpuinfo(first) if not self.is_real else None)
            or platform.machine(),
            cores_logical=logical, cores_physical=physical, ram_bytes=self._ram_bytes(),
            os_name=self.system, hypervisor_flag="hypervisor" in first.get("flags", "").split(),
            dmi_vendor=self.text("sys/class/dmi/id/sys_vendor"),
            dmi_product=self.text("sys/class/dmi/id/product_name"),
            chassis_type=_int(self.text("sys/class/dmi/id/chassis_type")),
            board_model=self.text("proc/device-tree/model")
            or self.text("sys/firmware/devicetree/base/model"),
            has_battery=self._has_battery())

    def _cpu_model(self, first: dict[str, str], merged: dict[str, str]) -> str:
        if self.is_real and self.system == "Darwin":
            try:
                return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"],
                                      capture_output=True, text=True, timeout=5).stdout.strip()
            except (OSError, subprocess.SubprocessError):
                pass
        # x86 has "model name"; many ARM kernels only "Hardware" or nothing useful.
        for key in ("model name", "Hardware", "Model", "Processor", "cpu model"):
            value = first.get(key) or merged.get(key)
            if value and not value.isdigit():
                return value
        board = self.text("proc/device-tree/model")
        if board:
            return board
        return (platform.processor() if self.is_real else "") or "unknown"

    def _ram_bytes(self) -> int | None:
        for line in (self.text("proc/meminfo") or "").splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
        if self.is_real:
            import psutil

            return int(psutil.virtual_memory().total)
        return None

    def _has_battery(self) -> bool:
        supply = self.path("sys/class/power_supply")
        try:
            entries = list(supply.iterdir())
        except OSError:
            return False
        return any((self.text(f"sys/class/power_supply/{e.name}/type") or "") == "Battery"
                   for e in entries)


def _vendor(first: dict[str, str]) -> str:
    if first.get("vendor_id"):
        return first["vendor_id"]
    implementer = first.get("CPU implementer", "").lower()
    return _ARM_IMPLEMENTERS.get(implementer, "unknown")


def _arch_from_cpuinfo(first: dict[str, str]) -> str | None:
    if first.get("vendor_id"):
        return "x86_64" if " lm " in f" {first.get('flags', '')} " else "i686"
    if first.get("CPU architecture") == "8":
        return "aarch64"
    return None


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _psutil_physical() -> int | None:
    import psutil

    return psutil.cpu_count(logical=False)
