"""Device prices, idle power and rent: sourced, consistent across files, never guessed.

What the profiles must not lose (how many devices have a price, an idle power) is pinned, and the
figures that tie two files together (a generic stand-in and its device, a VM and the rent table)
must agree.
"""

from __future__ import annotations

import datetime as dt
import shutil

import pytest

from bench.cost import rent
from bench.cost.profiles import load_profiles, parse_device
from bench.errors import EdgebenchError
from bench.paths import profiles_dir

PROFILES = load_profiles()
DEVICES = PROFILES.devices


def test_coverage_does_not_shrink():
    priced = {d.id for d in DEVICES.values() if d.price_usd is not None}
    idle = {d.id for d in DEVICES.values() if d.idle_power_w is not None}
    assert len(priced) >= 15 and len(idle) >= 6
    # laptops, boards and phones with a sourced price (see the report for those without one)
    assert {"apple-m1-pro", "apple-m2", "apple-m2-pro", "apple-m2-max", "apple-m3", "apple-m3-pro",
            "apple-m3-max", "raspberry-pi-5", "nvidia-jetson-orin-nano-super", "apple-a17-pro",
            "qualcomm-snapdragon-8-gen-3"} <= priced
    assert {"raspberry-pi-5", "apple-m4", "apple-m1"} <= idle


@pytest.mark.parametrize("device_id", sorted(DEVICES))
def test_every_price_rent_and_idle_figure_is_sourced_and_says_what_it_is(device_id):
    d = DEVICES[device_id]
    for name in ("price_usd", "idle_power_w", "rent_usd_per_hour", "system_max_power_w"):
        if getattr(d, name) is None:
            assert name not in d.sources
            continue
        src = d.sources[name]
        assert src.url.startswith(("http://", "https://")) and src.retrieved <= dt.date.today()
        assert src.note, f"{device_id}: {name} needs a note saying which machine it is for"
    if d.idle_power_w is not None:
        assert d.power_scope and (d.system_max_power_w is None or d.idle_power_w < d.system_max_power_w)
    if d.price_usd is not None and d.kind not in ("gpu", "generic"):
        assert d.useful_life_years, f"{device_id}: a price needs a lifetime for the dedicated cost"


def test_raspberry_pi_5_figures_are_the_8_gb_boards():
    pi = DEVICES["raspberry-pi-5"]
    assert "8 GB" in pi.name and pi.power_scope == "wall_ac"
    assert "8 GB model" in pi.sources["price_usd"].note
    assert "Pi 5 - 8GB" in pi.sources["system_max_power_w"].note
    assert pi.system_max_power_w == 13.9 and pi.idle_power_w == 2.8  # the 16 GB board: 11.9 W


def test_generic_stand_ins_copy_their_device():
    for d in DEVICES.values():
        if not (d.generic and d.based_on):
            continue
        base = DEVICES[d.based_on]
        if base.kind == "board":  # "every figure is the Raspberry Pi 5's"
            for name in ("price_usd", "idle_power_w", "system_max_power_w", "memory_bandwidth_gb_s"):
                assert getattr(d, name) == getattr(base, name), (d.id, name)
                assert d.sources[name].url == base.sources[name].url, (d.id, name)


def test_cloud_vm_rent_matches_the_rent_table():
    vm = DEVICES["amd-epyc-vm-2vcpu"]
    assert vm.price_usd is None and vm.rent_usd_per_hour is not None
    rows = {r.instance: r for r in rent.load_vm_rents()}
    note = vm.sources["rent_usd_per_hour"].note
    (instance,) = [name for name in rows if f"row {name}," in note]
    row = rows[instance]
    assert (row.vcpus, row.usd_per_hour) == (vm.match_cpu_cores_logical, vm.rent_usd_per_hour)
    assert vm.sources["rent_usd_per_hour"].url == row.sources["usd_per_hour"].url


@pytest.fixture()
def device_file(tmp_path):
    src = profiles_dir() / "devices" / "amd-epyc-vm-2vcpu.toml"
    dst = tmp_path / src.name
    shutil.copy(src, dst)
    return dst


def test_rent_needs_a_source_and_must_not_be_negative(device_file):
    text = device_file.read_text()
    head, _, tail = text.partition("[sources.rent_usd_per_hour]")
    device_file.write_text(head)  # the last table: dropping it drops only the rent's source
    with pytest.raises(EdgebenchError, match="rent_usd_per_hour has no source"):
        parse_device(device_file)
    device_file.write_text(text.replace("rent_usd_per_hour = 0.0864", "rent_usd_per_hour = -1"))
    with pytest.raises(EdgebenchError, match="must not be negative"):
        parse_device(device_file)
    device_file.write_text(text)
    assert parse_device(device_file).rent_usd_per_hour == 0.0864
