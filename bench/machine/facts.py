"""Machine facts from /proc, /sys and the device tree under a root path (a fake tree in tests).

Only facts are read here; what they mean (a device profile, a CPU class, a meter) is decided by
the stages above. On the real root of a non-Linux system the few facts available come from the
platform module and sysctl instead.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.errors import EdgebenchError
from bench.toml_load import load_toml

ROOT_ENV = "EDGEBENCH_MACHINE_ROOT"
LAPTOP_CHASSIS = frozenset({8, 9, 10, 14, 30, 31, 32})  # SMBIOS: portable, laptop, notebook, ...
_ARM_IMPLEMENTERS = {"0x41": "ARM", "0x51": "Qualcomm", "0x61": "Apple", "0x48": "HiSilicon",
                     "0x4e": "NVIDIA", "0x46": "Fujitsu", "0xc0": "Ampere"}
_VM_VENDORS = ("qemu", "kvm", "vmware", "microsoft corporation", "xen", "amazon ec2", "google",
               "innotek", "virtualbox", "parallels", "openstack", "digitalocean", "hetzner",
               "alibaba", "oracle")
CLOUD_DMI_FILE = "cloud_dmi.toml"  # under the profiles root: provider patterns, each with a source
DMI_FIELDS = ("sys_vendor", "product_name", "bios_vendor", "bios_version", "chassis_asset_tag",
              "board_vendor")


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
    dmi_bios_vendor: str | None = None  # the rest of what cloud detection reads from DMI
    dmi_bios_version: str | None = None
    dmi_chassis_asset_tag: str | None = None
    dmi_board_vendor: str | None = None

    @property
    def dmi(self) -> dict[str, str | None]:
        """The DMI strings cloud detection matches, keyed by their sys/class/dmi/id file names."""
        return {"sys_vendor": self.dmi_vendor, "product_name": self.dmi_product,
                "bios_vendor": self.dmi_bios_vendor, "bios_version": self.dmi_bios_version,
                "chassis_asset_tag": self.dmi_chassis_asset_tag,
                "board_vendor": self.dmi_board_vendor}

    @property
    def cloud(self) -> "CloudProvider | None":
        """The cloud provider whose DMI pattern matches (hardware_profiles/cloud_dmi.toml)."""
        return detect_cloud(self.dmi, cloud_providers())

    @property
    def cloud_provider(self) -> str | None:
        """The provider's name ("Amazon EC2", "Microsoft Azure"): a rented machine."""
        cloud = self.cloud
        return cloud.name if cloud else None

    @property
    def vm_kind(self) -> str:
        """One of cloud (a provider's DMI), vm (hypervisor flag or DMI, no provider), bare-metal.

        A hypervisor flag alone (also set under WSL2 and desktop VMs) never means cloud. A rented
        bare-metal instance (AWS .metal) carries its provider's DMI and is "cloud" too.
        """
        if self.cloud is not None:
            return "cloud"
        return "vm" if self.is_vm else "bare-metal"

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
            has_battery=self._has_battery(),
            dmi_bios_vendor=self.text("sys/class/dmi/id/bios_vendor"),
            dmi_bios_version=self.text("sys/class/dmi/id/bios_version"),
            dmi_chassis_asset_tag=self.text("sys/class/dmi/id/chassis_asset_tag"),
            dmi_board_vendor=self.text("sys/class/dmi/id/board_vendor"))

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


# ---------------------------------------------------------------- cloud providers from DMI
@dataclass(frozen=True)
class CloudRule:
    """Every named DMI field must match its glob; `url` is where the pattern comes from."""

    patterns: tuple[tuple[str, str], ...]  # (dmi field, shell-style glob)
    url: str
    retrieved: dt.date
    note: str | None = None

    def matches(self, dmi: dict[str, str | None]) -> bool:
        for name, glob in self.patterns:
            value = dmi.get(name)
            if value is None or not fnmatch.fnmatchcase(value, glob):
                return False
        return True


@dataclass(frozen=True)
class CloudProvider:
    id: str
    name: str
    rules: tuple[CloudRule, ...]


def detect_cloud(dmi: dict[str, str | None],
                 providers: tuple[CloudProvider, ...]) -> CloudProvider | None:
    """The first provider (file order) any of whose rules matches the DMI strings."""
    for provider in providers:
        if any(rule.matches(dmi) for rule in provider.rules):
            return provider
    return None


def cloud_providers(path: Path | None = None) -> tuple[CloudProvider, ...]:
    """The patterns in cloud_dmi.toml (default: under bench.paths.profiles_dir())."""
    if path is None:
        from bench.paths import profiles_dir

        path = profiles_dir() / CLOUD_DMI_FILE
    if not path.is_file():
        raise EdgebenchError(f"{path} is missing: cloud detection needs it (copy it from the "
                             "edgebench checkout's hardware_profiles/)")
    return _parse_cloud_providers(str(path))


def _parse_cloud_providers(path: str) -> tuple[CloudProvider, ...]:
    """Parsed on every call (a few dozen lines, read once per fingerprint): no module cache."""
    doc = load_toml(Path(path))
    _keys(path, doc, {"providers"})
    providers = []
    for i, table in enumerate(_array(path, doc.get("providers", []), "providers")):
        where = f"{path} providers[{i}]"
        _keys(where, table, {"id", "name", "rules"}, required={"id", "name", "rules"})
        rules = []
        for j, rule in enumerate(_array(where, table["rules"], "rules")):
            at = f"{where} rules[{j}]"
            _keys(at, rule, {*DMI_FIELDS, "source"}, required={"source"})
            patterns = tuple((k, v) for k, v in rule.items() if k != "source")
            if not patterns or not all(isinstance(v, str) and v for _, v in patterns):
                raise EdgebenchError(f"{at}: name at least one DMI field ({', '.join(DMI_FIELDS)}) "
                                     "with a non-empty pattern")
            src = rule["source"]
            _keys(f"{at} source", src, {"url", "retrieved", "note"}, required={"url", "retrieved"})
            if not (isinstance(src["retrieved"], dt.date) and str(src["url"]).startswith("http")):
                raise EdgebenchError(f"{at} source: needs an http(s) url and an unquoted "
                                     "retrieved date")
            rules.append(CloudRule(patterns, src["url"], src["retrieved"], src.get("note")))
        providers.append(CloudProvider(str(table["id"]), str(table["name"]), tuple(rules)))
    return tuple(providers)


def _array(where: str, value: object, key: str) -> list:
    if not isinstance(value, list):
        raise EdgebenchError(f"{where}: {key} must be an array of tables ([[{key}]])")
    return value


def _keys(where: str, table: object, allowed: set[str],
          required: frozenset[str] | set[str] = frozenset()) -> None:
    if not isinstance(table, dict):
        raise EdgebenchError(f"{where}: expected a table")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise EdgebenchError(f"{where}: unknown key '{unknown[0]}' "
                             f"(allowed: {', '.join(sorted(allowed))})")
    missing = sorted(required - set(table))
    if missing:
        raise EdgebenchError(f"{where}: missing required key '{missing[0]}'")
