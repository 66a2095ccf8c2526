"""Rent: VM rent by vCPU count, self-hosting on rented GPUs, and the per-size energy references.

The rules (median, next larger size, nearest size by ratio) are tested on small synthetic tables
whose answers are worked out by hand; the shipped tables are checked for sources and consistency.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path

import pytest

from bench.cost import rent
from bench.cost.profiles import GpuRental, load_profiles
from bench.cost.rent import GpuThroughput, VmRent
from bench.errors import EdgebenchError
from bench.paths import profiles_dir

TODAY = dt.date.today()


def vm(id_: str, vcpus: int, usd: float, provider: str = "P") -> VmRent:
    return VmRent(id=id_, provider=provider, instance=id_, region="r", vcpus=vcpus, ram_gib=4.0 * vcpus,
                  usd_per_hour=usd, path=Path("x"))


def tp(id_: str, params: float, tok_s: float = 1000.0, gpu: str = "H100", gpus: int = 1) -> GpuThroughput:
    return GpuThroughput(id=id_, model=id_, gpu=gpu, gpus=gpus, batch=64, parameters=params,
                         output_tok_s=tok_s, path=Path("x"))


def gpu_rental(usd: float, model_class: str = "H100") -> GpuRental:
    return GpuRental(id="g", provider="P", gpu="G", tier="gpu-rental", model_class=model_class,
                     path=Path("x"), usd_per_gpu_hour=usd)


# ---------------------------------------------------------------- typical_rent
def test_median_of_an_odd_count():
    t = rent.typical_rent([vm("a", 2, 0.30), vm("b", 2, 0.10), vm("c", 2, 0.20), vm("d", 4, 0.05)], 2)
    assert t.rent.id == "c" and t.usd_per_hour == 0.20 and t.exact
    assert [c.id for c in t.candidates] == ["b", "c", "a"]


def test_even_count_takes_the_lower_middle_so_the_figure_is_a_listed_price():
    t = rent.typical_rent([vm("a", 2, 0.40), vm("b", 2, 0.10), vm("c", 2, 0.20), vm("d", 2, 0.30)], 2)
    assert t.rent.id == "c"


def test_missing_size_takes_the_next_larger_one_and_says_so():
    rents = [vm("two", 2, 0.1), vm("eight", 8, 0.4), vm("sixteen", 16, 0.8)]
    t = rent.typical_rent(rents, 3)
    assert t.rent.id == "eight" and not t.exact
    assert "3 vCPUs (no 3-vCPU instance listed: next larger size)" in t.label
    assert rent.typical_rent(rents, 1).rent.id == "two"
    assert rent.typical_rent(rents, 17) is None
    with pytest.raises(EdgebenchError, match="at least 1 vCPU"):
        rent.typical_rent(rents, 0)


def test_label_names_the_choice_and_every_candidate():
    t = rent.typical_rent([vm("x", 2, 0.1, "AWS"), vm("y", 2, 0.2, "GCP"), vm("z", 2, 0.3, "AWS")], 2)
    assert t.label.startswith("typical on-demand rent for 2 vCPUs: $0.2/h, GCP y (r), the median of 3")
    assert "AWS x $0.1" in t.label and "AWS z $0.3" in t.label


def test_rent_per_mtok_is_the_rent_for_the_time():
    assert rent.rent_usd_per_mtok(3.6, 1000.0) == pytest.approx(1.0)  # $3.6/h x 1000 s


# ---------------------------------------------------------------- self-hosting on rented GPUs
def test_self_host_formula():
    assert rent.self_host_usd_per_mtok(gpu_rental(3.6), tp("m", 8e9, 1000.0)) == pytest.approx(1.0)
    assert rent.self_host_usd_per_mtok(gpu_rental(3.6), tp("m", 8e9, 1000.0, gpus=4)) == pytest.approx(4.0)
    with pytest.raises(EdgebenchError, match="measured on H100"):
        rent.self_host_usd_per_mtok(gpu_rental(1.0, "A100"), tp("m", 8e9))


def test_nearest_size_is_by_ratio_not_difference():
    items = [tp("small", 8e9), tp("large", 70e9), tp("other-gpu", 30e9, gpu="A100")]
    # 30B: 70/30 = 2.3x away, 30/8 = 3.75x away (a plain difference would pick 8B)
    assert rent.nearest_throughput(items, 30e9, "H100").id == "large"
    assert rent.nearest_throughput(items, 20e9, "H100").id == "small"
    assert rent.nearest_throughput(items, 1e9, "H100").id == "small"
    assert rent.nearest_throughput(items, 30e9, "A100").id == "other-gpu"
    assert rent.nearest_throughput(items, 8e9, "L4") is None
    with pytest.raises(EdgebenchError, match="positive"):
        rent.nearest_throughput(items, 0, "H100")


def test_nearest_size_ties_go_to_the_smaller_model():
    assert rent.nearest_by_parameters([tp("b", 16e9), tp("a", 4e9)], 8e9).id == "a"


# ---------------------------------------------------------------- the shipped tables
def test_shipped_vm_rents_are_sourced_and_proportional_within_a_family():
    rents = rent.load_vm_rents()
    assert len(rents) >= 12 and len({r.provider for r in rents}) >= 2
    per_vcpu = defaultdict(set)
    for r in rents:
        for name in ("usd_per_hour", "ram_gib"):
            src = r.sources[name]
            assert src.url.startswith("https://") and src.retrieved <= TODAY, (r.id, name)
        assert r.vcpus >= 1 and r.usd_per_hour > 0
        per_vcpu[r.instance.split(".")[0].rsplit("-", 1)[0]].add(round(r.usd_per_hour / r.vcpus, 4))
    for family, prices in per_vcpu.items():  # on-demand prices scale with size: catches typos
        assert max(prices) / min(prices) < 1.01, (family, prices)
    for n in (2, 4, 8, 16):
        t = rent.typical_rent(rents, n)
        assert t.exact and len(t.candidates) >= 2 and t.rent in rents


def test_shipped_gpu_throughputs_price_every_h100_rental():
    p = load_profiles()
    throughputs = rent.load_gpu_throughputs()
    assert {t.gpu for t in throughputs} <= {g.model_class for g in p.gpu_rentals.values()}
    small = rent.nearest_throughput(throughputs, 3e9, "H100")
    assert small.parameters == 8e9 and small.gpus == 1
    for t in throughputs:
        assert set(t.sources) == {"parameters", "output_tok_s"}
        assert all(s.url.startswith("https://") and s.retrieved <= TODAY for s in t.sources.values())
    h100 = [g for g in p.gpu_rentals.values() if g.model_class == "H100"]
    assert h100
    for g in h100:
        usd = rent.self_host_usd_per_mtok(g, small)
        assert usd == pytest.approx(g.usd_per_gpu_hour / 3600 / small.output_tok_s * 1e6)
    community = p.gpu_rentals["runpod/h100-sxm-community"]
    assert rent.self_host_usd_per_mtok(community, small) == pytest.approx(0.1452, abs=5e-4)  # docs/rent.md


def test_energy_references_by_size_and_prompt_ratio_bounds():
    refs = load_profiles().energy_references
    sized = {r.id: r for r in refs.values() if r.parameters}
    assert len(sized) >= 4
    for r in refs.values():
        lo, hi = r.prompt_to_output_energy_ratio_low, r.prompt_to_output_energy_ratio_high
        assert (lo is None) == (hi is None) and (lo is None or 0 <= lo <= hi <= 1), r.id
        assert lo is None or r.j_per_output_tok, r.id  # bounds only where energy is per output token
        if r.parameters:
            assert r.j_per_output_tok and "parameters" in r.sources
    assert rent.nearest_by_parameters(refs.values(), 1e9).id == "ml-energy-llama31-8b-h100"
    assert rent.nearest_by_parameters(refs.values(), 50e9).id == "ml-energy-llama31-70b-h100x4"
    # bigger models cost more energy per token at the same batch size and GPU class
    by_size = sorted(sized.values(), key=lambda r: r.parameters)
    assert [r.j_per_output_tok for r in by_size] == sorted(r.j_per_output_tok for r in by_size)


# ---------------------------------------------------------------- strict parsing
ROW = '''[[vm_rents]]
id = "x/a"
provider = "X"
instance = "a"
region = "r"
vcpus = {vcpus}
ram_gib = 8
usd_per_hour = 0.1
sources.ram_gib = {{ url = "https://example.org", retrieved = 2026-01-01 }}
{usd_source}
'''
USD_SOURCE = 'sources.usd_per_hour = { url = "https://example.org", retrieved = 2026-01-01 }'


def write_root(tmp_path: Path, text: str) -> Path:
    (tmp_path / "rent").mkdir(parents=True, exist_ok=True)
    (tmp_path / rent.VM_RENT_FILE).write_text(text)
    return tmp_path


@pytest.mark.parametrize(("text", "message"), [
    (ROW.format(vcpus=2, usd_source=""), "usd_per_hour has no source"),
    (ROW.format(vcpus=0, usd_source=USD_SOURCE), "vcpus must be positive"),
    (ROW.format(vcpus=2.5, usd_source=USD_SOURCE), "vcpus must be an integer"),
    (ROW.format(vcpus=2, usd_source=USD_SOURCE) + "cpu = 'x'\n", "unknown key 'cpu'"),
    (ROW.format(vcpus=2, usd_source=USD_SOURCE) * 2, "id 'x/a' is defined twice"),
    ("[[vm_rent]]\nid = 'x'\n", "unknown key 'vm_rent'"),
])
def test_bad_rent_files_fail_with_one_line(tmp_path, text, message):
    root = write_root(tmp_path, text)
    with pytest.raises(EdgebenchError) as err:
        rent.load_vm_rents(root)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert str(root / rent.VM_RENT_FILE) in str(err.value)


def test_a_good_row_loads_and_missing_files_say_where(tmp_path):
    root = write_root(tmp_path, ROW.format(vcpus=2, usd_source=USD_SOURCE))
    (r,) = rent.load_vm_rents(root)
    assert (r.vcpus, r.usd_per_hour, r.sources["usd_per_hour"].retrieved) == (2, 0.1, dt.date(2026, 1, 1))
    with pytest.raises(EdgebenchError, match="gpu_throughput.toml does not exist"):
        rent.load_gpu_throughputs(root)


def test_default_root_is_the_profiles_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBENCH_PROFILES_DIR", str(write_root(tmp_path, ROW.format(vcpus=2, usd_source=USD_SOURCE))))
    assert [r.id for r in rent.load_vm_rents()] == ["x/a"] and profiles_dir() == tmp_path
