"""RaplMeter against fake powercap trees laid out like the kernel's /sys/class/powercap."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.errors import EdgebenchError
from bench.energy.meters.rapl import RaplMeter, probe_rapl, read_sysfs

MAX_UJ = 262143328850  # a real package max_energy_range_uj


def zone(root: Path, zone_id: str, name: str, energy_uj: int, max_uj: int = MAX_UJ) -> Path:
    d = root / zone_id
    d.mkdir(parents=True)
    (d / "name").write_text(name + "\n")
    (d / "energy_uj").write_text(f"{energy_uj}\n")
    (d / "max_energy_range_uj").write_text(f"{max_uj}\n")
    (d / "energy_uj").chmod(0o400)  # root-only, as since CVE-2020-8694
    return d


def set_uj(root: Path, zone_id: str, energy_uj: int) -> None:
    (root / zone_id / "energy_uj").write_text(f"{energy_uj}\n")


def two_socket_tree(root: Path) -> Path:
    """Flat class view: two packages with core/dram subzones, a psys zone and an MMIO duplicate."""
    zone(root, "intel-rapl:0", "package-0", 1_000_000)
    zone(root, "intel-rapl:0:0", "core", 500_000)
    zone(root, "intel-rapl:0:1", "dram", 200_000, max_uj=65532610987)
    zone(root, "intel-rapl:1", "package-1", 3_000_000)
    zone(root, "intel-rapl:1:0", "dram", 400_000, max_uj=65532610987)
    zone(root, "intel-rapl:2", "psys", 9_000_000)
    zone(root, "intel-rapl-mmio:0", "package-0", 123)  # same package over MMIO: must be skipped
    (root / "intel-rapl").mkdir()  # the control-type directory holds only `enabled`
    (root / "intel-rapl" / "enabled").write_text("1\n")
    return root


class Clock:
    def __init__(self):
        self.t_s = 100.0

    def __call__(self):
        return self.t_s


def test_two_packages_with_dram_subzones(tmp_path):
    root = two_socket_tree(tmp_path)
    clock = Clock()
    meter = RaplMeter(root, clock=clock)
    assert sorted(z.domain for z in meter.zones) == ["package-0", "package-0/core", "package-0/dram", "package-1", "package-1/dram", "psys"]
    assert meter.scope == "cpu_package+dram" and meter.sampling_interval_s is None
    meter.start()
    start = meter.read()
    set_uj(root, "intel-rapl:0", 1_000_000 + 10_000_000)  # +10 J
    set_uj(root, "intel-rapl:0:0", 500_000 + 7_000_000)  # +7 J inside package-0
    set_uj(root, "intel-rapl:0:1", 200_000 + 2_000_000)  # +2 J
    set_uj(root, "intel-rapl:1", 3_000_000 + 20_000_000)  # +20 J
    set_uj(root, "intel-rapl:1:0", 400_000 + 3_000_000)  # +3 J
    set_uj(root, "intel-rapl:2", 9_000_000 + 50_000_000)  # psys covers everything: excluded
    clock.t_s = 102.0
    end = meter.read()
    assert end.joules["package-0/core"] - start.joules["package-0/core"] == pytest.approx(7.0)
    assert end.total_j - start.total_j == pytest.approx(10 + 2 + 20 + 3)
    assert end.t_s - start.t_s == 2.0


def test_nested_device_layout_is_found(tmp_path):
    """/sys/devices/virtual/powercap/intel-rapl nests subzones inside their package."""
    pkg = zone(tmp_path / "intel-rapl", "intel-rapl:0", "package-0", 0)
    zone(pkg, "intel-rapl:0:0", "dram", 0)
    meter = RaplMeter(tmp_path)
    assert [z.domain for z in meter.zones] == ["package-0", "package-0/dram"]


def test_counter_wrap_mid_window_is_unwrapped_per_zone(tmp_path):
    zone(tmp_path, "intel-rapl:0", "package-0", 990_000, max_uj=1_000_000)
    zone(tmp_path, "intel-rapl:0:0", "dram", 10, max_uj=2_000_000)
    meter = RaplMeter(tmp_path)
    meter.start()
    start = meter.read()
    set_uj(tmp_path, "intel-rapl:0", 999_000)  # +9 000 µJ, then the counter wraps past 1 000 000
    mid = meter.read()
    set_uj(tmp_path, "intel-rapl:0", 2_000)  # +1 000 to the wrap, +2 000 after it
    set_uj(tmp_path, "intel-rapl:0:0", 510)
    end = meter.read()
    assert mid.joules["package-0"] - start.joules["package-0"] == pytest.approx(0.009)
    assert end.joules["package-0"] - start.joules["package-0"] == pytest.approx(0.012)
    assert end.joules["package-0/dram"] == pytest.approx(500e-6)


def _denying_reader(path: Path) -> str:
    """What a non-root process gets from the kernel for energy_uj since CVE-2020-8694."""
    if path.name == "energy_uj":
        raise PermissionError(13, "Permission denied", str(path))
    return read_sysfs(path)


def test_permission_denied_reports_the_one_line_fix(tmp_path):
    two_socket_tree(tmp_path)
    probe = probe_rapl(tmp_path, reader=_denying_reader)
    assert not probe.available
    assert "not readable" in probe.detail and "sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj" in probe.detail
    assert "udev" in probe.detail and "\n" not in probe.detail
    meter = RaplMeter(tmp_path, reader=_denying_reader)  # discovery reads only world-readable files
    with pytest.raises(EdgebenchError, match="sudo chmod o"):
        meter.start()


def _probe_as_nobody(root: Path) -> str:
    """Fork, drop to uid 65534 inside `root` (so /tmp/pytest-of-root's 0700 does not block lookup)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        try:
            os.chdir(root)
            try:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
            except PermissionError:
                msg = "NOSETUID"
            else:
                p = probe_rapl(Path("."))
                msg = f"{p.available}|{p.detail}"
        except BaseException as exc:  # report, never let the child run pytest on
            msg = f"EXC|{exc!r}"
        os.write(w, msg.encode())
        os._exit(0)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    return b"".join(chunks).decode()


def test_permission_denied_by_the_real_kernel_check(tmp_path):
    """A real EACCES from a 0400 file: as root, the probe runs in a child that dropped to nobody."""
    root = two_socket_tree(tmp_path / "powercap")
    if os.geteuid() == 0:
        out = _probe_as_nobody(root)
        if out == "NOSETUID":
            pytest.skip("cannot drop privileges in this container")
        available, _, detail = out.partition("|")
    else:
        probe = probe_rapl(root)
        available, detail = str(probe.available), probe.detail
    assert available == "False", detail
    assert "sudo chmod o+r" in detail


def test_unreadable_counter_that_is_not_a_permission_problem(tmp_path):
    zone(tmp_path, "intel-rapl:0", "package-0", 0)
    energy = tmp_path / "intel-rapl:0" / "energy_uj"
    energy.unlink()
    energy.mkdir()  # reading it raises IsADirectoryError, an OSError that is not EACCES
    probe = probe_rapl(tmp_path)
    assert not probe.available
    assert f"cannot read RAPL file {energy}" in probe.detail and "chmod" not in probe.detail


def test_missing_powercap_and_missing_zones(tmp_path):
    assert "VM or non-Linux" in probe_rapl(tmp_path / "nope").detail
    (tmp_path / "pc").mkdir()
    assert "modprobe intel_rapl_msr" in probe_rapl(tmp_path / "pc").detail


def test_probe_lists_zones(tmp_path):
    probe = probe_rapl(two_socket_tree(tmp_path))
    assert probe.available and probe.scope == "cpu_package+dram" and probe.resolution_s == 0.001
    assert "package-1/dram" in probe.detail
