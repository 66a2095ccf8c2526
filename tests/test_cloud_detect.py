"""Cloud detection from DMI: which provider a machine rents from, and cloud vs vm vs bare metal.

A hypervisor flag alone (WSL2, a desktop VM, this KVM box) must never mean "cloud"; only a
provider's own DMI string does. Facts are read from fake /sys trees, never from the host.
"""

from __future__ import annotations

import datetime as dt
import os

import pytest

from bench.errors import EdgebenchError
from bench.machine.facts import (CLOUD_DMI_FILE, DMI_FIELDS, Machine, MachineFacts,
                                 cloud_providers, detect_cloud)
from bench.paths import profiles_dir
from tests.fake_machines import DMI_MACHINES, MACHINES, _write


def facts_of(builder, tmp_path) -> MachineFacts:
    return Machine(builder(tmp_path / builder.__name__), system="Linux").facts()


# machine -> (cloud_provider, vm_kind)
EXPECTED = {
    "aws-nitro-vm": ("Amazon EC2", "cloud"),
    "aws-xen-vm": ("Amazon EC2", "cloud"),
    "aws-metal": ("Amazon EC2", "cloud"),  # rented bare metal: no hypervisor flag, still rent
    "azure-vm": ("Microsoft Azure", "cloud"),
    "hyperv-vm": (None, "vm"),  # Microsoft Corporation / Virtual Machine without Azure's tag
    "kvm-without-dmi": (None, "vm"),  # like the development VM: no /sys/class/dmi, flag set
}
EXPECTED_EXISTING = {
    "amd-epyc-vm": (None, "vm"),  # QEMU DMI
    "intel-xeon-vm": ("Google Compute Engine", "cloud"),
    "intel-laptop-rapl": (None, "bare-metal"),
    "arm64-board": (None, "bare-metal"),
    "laptop-on-battery": (None, "bare-metal"),
}


@pytest.mark.parametrize("name", sorted(DMI_MACHINES))
def test_cloud_machines(name, tmp_path):
    f = facts_of(DMI_MACHINES[name], tmp_path)
    assert (f.cloud_provider, f.vm_kind) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(MACHINES))
def test_existing_machines(name, tmp_path):
    f = facts_of(MACHINES[name], tmp_path)
    assert (f.cloud_provider, f.vm_kind) == EXPECTED_EXISTING[name]


def test_is_vm_unchanged_and_dmi_read_through_the_root(tmp_path):
    azure = facts_of(DMI_MACHINES["azure-vm"], tmp_path)
    assert azure.is_vm and azure.dmi_chassis_asset_tag == "7783-7084-3265-9085-8269-3286-77"
    assert azure.dmi["board_vendor"] == "Microsoft Corporation"
    metal = facts_of(DMI_MACHINES["aws-metal"], tmp_path)
    assert not metal.hypervisor_flag and metal.cloud.id == "aws"  # rented, not virtualised
    bare = facts_of(DMI_MACHINES["kvm-without-dmi"], tmp_path)
    assert set(bare.dmi) == set(DMI_FIELDS) and not any(bare.dmi.values())


def test_hypervisor_flag_alone_is_not_cloud():
    f = MachineFacts(cpu_model="x", cpu_vendor="GenuineIntel", cpu_arch="x86_64",
                     cores_logical=8, cores_physical=4, ram_bytes=None, os_name="Linux",
                     hypervisor_flag=True, dmi_vendor=None, dmi_product=None, chassis_type=None,
                     board_model=None, has_battery=False)  # e.g. WSL2: no DMI, flag set
    assert (f.cloud_provider, f.vm_kind) == (None, "vm")


# DMI strings as providers publish them -> provider id; written out here, not read from the table
PROVIDER_DMI = [
    ({"sys_vendor": "Amazon EC2", "product_name": "c7g.xlarge"}, "aws"),
    ({"bios_vendor": "Amazon EC2"}, "aws"),
    ({"bios_version": "4.11.amazon"}, "aws"),
    ({"sys_vendor": "Google", "product_name": "Google Compute Engine"}, "gcp"),
    ({"chassis_asset_tag": "7783-7084-3265-9085-8269-3286-77"}, "azure"),
    ({"sys_vendor": "QEMU", "chassis_asset_tag": "OracleCloud.com"}, "oracle"),
    ({"product_name": "Alibaba Cloud ECS"}, "alibaba"),
    ({"sys_vendor": "Alibaba Cloud"}, "alibaba"),
    ({"sys_vendor": "DigitalOcean", "product_name": "Droplet"}, "digitalocean"),
    ({"sys_vendor": "Hetzner", "product_name": "vServer"}, "hetzner"),
    ({"sys_vendor": "Scaleway"}, "scaleway"),
    ({"sys_vendor": "Linode"}, "akamai"),
    ({"sys_vendor": "Akamai"}, "akamai"),
    ({"sys_vendor": "Vultr"}, "vultr"),
    ({"sys_vendor": "UpCloud"}, "upcloud"),
    ({"product_name": "Exoscale Compute Platform"}, "exoscale"),
    ({"chassis_asset_tag": "HUAWEICLOUD"}, "huawei"),
    ({"chassis_asset_tag": "OpenTelekomCloud"}, "open-telekom-cloud"),
    ({"sys_vendor": "Tencent Cloud"}, "tencent"),
    # not clouds: a hypervisor's own strings, or a near miss of a provider's
    ({"sys_vendor": "Microsoft Corporation", "product_name": "Virtual Machine"}, None),
    ({"sys_vendor": "QEMU", "product_name": "Standard PC (Q35 + ICH9, 2009)"}, None),
    ({"sys_vendor": "OpenStack Foundation", "product_name": "OpenStack Nova"}, None),
    ({"sys_vendor": "VMware, Inc.", "product_name": "VMware Virtual Platform"}, None),
    ({"bios_version": "4.2.Amazon"}, None),  # case-sensitive, as ds-identify's case patterns
    ({"sys_vendor": "amazon ec2"}, None),
    ({"product_name": "Google Compute Engine VM"}, None),  # a glob must match the whole string
    ({}, None),
]


@pytest.mark.parametrize(("dmi", "provider"), PROVIDER_DMI)
def test_shipped_patterns(dmi, provider):
    full = {name: dmi.get(name) for name in DMI_FIELDS}
    found = detect_cloud(full, cloud_providers())
    assert (found.id if found else None) == provider


def test_every_pattern_is_sourced_and_every_provider_tested():
    providers = cloud_providers()
    ids = [p.id for p in providers]
    assert len(ids) == len(set(ids)) >= 12
    assert set(ids) == {p for _, p in PROVIDER_DMI if p}  # a new provider needs a test row
    for p in providers:
        assert p.name and p.rules
        for rule in p.rules:
            assert rule.patterns and all(name in DMI_FIELDS for name, _ in rule.patterns)
            assert rule.url.startswith("https://") and rule.retrieved <= dt.date.today()


def test_first_matching_provider_wins_in_file_order(tmp_path):
    path = tmp_path / CLOUD_DMI_FILE
    path.write_text(_table("one", 'sys_vendor = "Acme*"') + _table("two", 'sys_vendor = "Acme Cloud"'))
    dmi = {name: None for name in DMI_FIELDS} | {"sys_vendor": "Acme Cloud"}
    assert detect_cloud(dmi, cloud_providers(path)).id == "one"


def test_all_fields_of_a_rule_must_match(tmp_path):
    path = tmp_path / CLOUD_DMI_FILE
    path.write_text(_table("p", 'sys_vendor = "Acme"\nproduct_name = "VM*"'))
    base = {name: None for name in DMI_FIELDS}
    assert detect_cloud(base | {"sys_vendor": "Acme", "product_name": "VM 2"}, cloud_providers(path))
    assert detect_cloud(base | {"sys_vendor": "Acme"}, cloud_providers(path)) is None


def _table(pid: str, fields: str, source: str = 'source = { url = "https://example.org/x", retrieved = 2026-01-01 }') -> str:
    return f'[[providers]]\nid = "{pid}"\nname = "{pid.title()}"\n[[providers.rules]]\n{fields}\n{source}\n'


@pytest.mark.parametrize(("text", "message"), [
    (_table("p", 'sys_vendor = "A"', source=""), "missing required key 'source'"),
    (_table("p", 'serial = "A"'), "unknown key 'serial'"),
    (_table("p", ""), "name at least one DMI field"),
    (_table("p", 'sys_vendor = "A"', 'source = { url = "https://x.org", retrieved = "2026-01-01" }'),
     "unquoted retrieved date"),
    (_table("p", 'sys_vendor = "A"', 'source = { retrieved = 2026-01-01 }'), "missing required key 'url'"),
    ("providers = 3\n", "must be an array of tables"),
    ("[[provider]]\nid = 'x'\n", "unknown key 'provider'"),
])
def test_bad_pattern_files_fail_with_one_line(tmp_path, text, message):
    path = tmp_path / CLOUD_DMI_FILE
    path.write_text(text)
    with pytest.raises(EdgebenchError) as err:
        cloud_providers(path)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert str(path) in str(err.value)


def test_table_follows_the_profiles_dir_and_its_edits(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBENCH_PROFILES_DIR", str(tmp_path))
    f = facts_of(DMI_MACHINES["aws-nitro-vm"], tmp_path)
    with pytest.raises(EdgebenchError, match=CLOUD_DMI_FILE):
        f.cloud_provider  # noqa: B018 - the property reads the table
    path = tmp_path / CLOUD_DMI_FILE
    path.write_text(_table("acme", 'sys_vendor = "Amazon EC2"'))
    assert f.cloud_provider == "Acme"
    path.write_text(_table("other", 'sys_vendor = "Nobody"'))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert f.cloud_provider is None and f.vm_kind == "vm"


def test_shipped_table_is_under_profiles_dir():
    assert (profiles_dir() / CLOUD_DMI_FILE).is_file()


def test_machine_root_env_reads_a_fake_cloud(tmp_path, monkeypatch):
    root = DMI_MACHINES["azure-vm"](tmp_path / "azure")
    monkeypatch.setenv("EDGEBENCH_MACHINE_ROOT", str(root))
    f = Machine.from_env().facts()
    assert (f.cloud_provider, f.vm_kind) == ("Microsoft Azure", "cloud")
    _write(root, "sys/class/dmi/id/chassis_asset_tag", "None\n")
    assert Machine.from_env().facts().vm_kind == "vm"
