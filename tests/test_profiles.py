"""Every shipped profile is sourced and consistent; bad profiles fail with one clear line."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from bench.cost import options as compare
from bench.errors import EdgebenchError
from bench.paths import profiles_dir
from bench.cost.profiles import load_profiles, parse_cloud_file, parse_device
from bench.cost.litellm_import import import_litellm
from bench.cost.device_match import match_device

UNIT_SUFFIXES = ("_usd", "_w", "_j", "_tok", "_years", "_gb_s", "_tops", "_per_kwh", "_per_mtok",
                 "_per_query", "_per_gpu_hour", "_per_eur", "pue", "_parts")


def _figures(record) -> dict[str, float]:
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)
            if f.name.endswith(UNIT_SUFFIXES) and f.name != "match_cpu_cores_logical"
            and isinstance(getattr(record, f.name), (int, float))
            and not isinstance(getattr(record, f.name), bool)}


def test_every_profile_file_parses_and_every_figure_is_sourced():
    root = profiles_dir()
    files = sorted(root.rglob("*.toml"))
    assert len(files) >= 30
    for path in files:  # each file on its own, so a failure names it
        with open(path, "rb") as fh:
            tomllib.load(fh)
    p = load_profiles(root)
    records = [*p.devices.values(), *p.offers.values(), *p.gpu_rentals.values(),
               *p.energy_references.values(), *p.regions.values()]
    today = dt.date.today()
    for rec in records:
        for name, value in _figures(rec).items():
            if name == "electricity_usd_per_kwh" and rec.electricity_eur_per_kwh is not None:
                continue  # converted at load time from the sourced EUR figure and fx rate
            src = rec.sources.get(name)
            assert src is not None, f"{rec.path} {rec.id}: {name} has no source"
            assert src.url.startswith(("http://", "https://")), f"{rec.id}: {name} url {src.url}"
            assert src.retrieved <= today, f"{rec.id}: {name} retrieved in the future"
            assert value >= 0
    for mix in p.mixes.values():
        assert mix.sources and all(s.url.startswith("https://") for s in mix.sources.values())


def test_ids_unique_across_files_and_references_exist():
    root = profiles_dir()
    ids: list[str] = []
    for path in root.rglob("*.toml"):
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
        if "id" in doc:
            ids.append(doc["id"])
        for key in ("offers", "gpu_rentals", "energy_references", "regions", "mixes"):
            ids += [t["id"] for t in doc.get(key, [])]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    p = load_profiles(root)
    for d in p.devices.values():
        assert d.based_on is None or d.based_on in p.devices
        if d.generic:
            assert d.method
    for o in p.offers.values():
        assert o.energy_reference is None or o.energy_reference in p.energy_references
    # what compare uses by default exists
    assert compare.DEFAULT_REGION in p.regions and "3:1" in p.mixes and "chat" in p.mixes
    assert p.energy_references[compare.DEFAULT_ENERGY_REFERENCE].j_per_output_tok
    assert p.energy_references[compare.DEFAULT_PUE_REFERENCE].pue


def test_required_coverage():
    p = load_profiles()
    kinds = {d.kind for d in p.devices.values()}
    assert {"laptop", "desktop", "phone", "board", "gpu", "server", "generic"} <= kinds
    for dev_id in ("apple-m4", "raspberry-pi-5", "nvidia-rtx-4090", "qualcomm-snapdragon-8-elite",
                   "amd-epyc-vm-2vcpu", "generic-x86-laptop", "generic-arm-board"):
        assert dev_id in p.devices
    tiers = {o.tier for o in p.offers.values()}
    assert {"small", "frontier", "open-small"} <= tiers
    assert {g.model_class for g in p.gpu_rentals.values()} >= {"H100", "A100"}


def test_match_is_exact():
    p = load_profiles()
    vm = match_device("AMD EPYC", "", p, cpu_cores_logical=2)
    assert vm is not None and vm.id == "amd-epyc-vm-2vcpu"
    assert vm.tdp_w == pytest.approx(280 / 128 * 2) and vm.idle_power_w == pytest.approx(100 / 128 * 2)
    assert match_device("AMD EPYC", "", p, cpu_cores_logical=4) is None
    assert match_device("AMD EPYC 7763 64-Core Processor", "", p, cpu_cores_logical=2) is None
    assert match_device("Apple M4", "", p).id == "apple-m4"
    assert match_device("apple m4", "", p) is None
    assert match_device("Apple M4 ", "", p) is None
    gpu = match_device("Some Intel CPU", "Intel UHD; NVIDIA GeForce RTX 4090", p)
    assert gpu is not None and gpu.id == "nvidia-rtx-4090"


# ---------------------------------------------------------------- bad profiles
GOOD_DEVICE = """\
id = "dev"
name = "Dev"
kind = "laptop"
price_usd = 500

[sources.price_usd]
url = "https://example.com/price"
retrieved = 2025-01-01
"""


def _write(tmp_path: Path, text: str, name: str = "dev.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _one_line_error(path: Path, field: str) -> str:
    with pytest.raises(EdgebenchError) as info:
        parse_device(path)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg and field in msg, msg
    return msg


def test_good_device_parses(tmp_path):
    d = parse_device(_write(tmp_path, GOOD_DEVICE))
    assert d.price_usd == 500 and d.sources["price_usd"].retrieved == dt.date(2025, 1, 1)


def test_missing_source(tmp_path):
    text = GOOD_DEVICE.split("[sources")[0]
    assert "has no source" in _one_line_error(_write(tmp_path, text), "price_usd")


def test_unknown_key(tmp_path):
    path = _write(tmp_path, GOOD_DEVICE.replace('kind = "laptop"', 'kind = "laptop"\nprice_eur = 3'))
    assert "unknown key" in _one_line_error(path, "price_eur")


def test_negative_price(tmp_path):
    path = _write(tmp_path, GOOD_DEVICE.replace("price_usd = 500", "price_usd = -500"))
    assert "negative" in _one_line_error(path, "price_usd")


def test_future_retrieved_date(tmp_path):
    future = (dt.date.today() + dt.timedelta(days=2)).isoformat()
    path = _write(tmp_path, GOOD_DEVICE.replace("2025-01-01", future))
    assert "future" in _one_line_error(path, "retrieved")


def test_unparsable_toml_and_id_mismatch(tmp_path):
    _one_line_error(_write(tmp_path, "id = \n"), "not valid TOML")
    _one_line_error(_write(tmp_path, GOOD_DEVICE, "other.toml"), "id")


def test_source_without_url(tmp_path):
    path = _write(tmp_path, GOOD_DEVICE.replace('url = "https://example.com/price"\n', ""))
    _one_line_error(path, "url")


def test_bad_cloud_offer_names_file_and_field(tmp_path):
    path = _write(tmp_path, """\
[[offers]]
id = "x/y"
provider = "x"
model = "y"
tier = "small"
model_class = "closed-small"
input_usd_per_mtok = -0.1
output_usd_per_mtok = 0.4
sources.input_usd_per_mtok = { url = "https://example.com", retrieved = 2025-01-01 }
sources.output_usd_per_mtok = { url = "https://example.com", retrieved = 2025-01-01 }
""", "api.toml")
    with pytest.raises(EdgebenchError, match=r"api\.toml offers\[0\] \(x/y\): input_usd_per_mtok must not be negative"):
        parse_cloud_file(path)


def test_duplicate_ids_across_files(tmp_path):
    root = tmp_path / "profiles"
    shutil.copytree(profiles_dir(), root)
    text = (root / "devices" / "apple-m4.toml").read_text()
    (root / "devices" / "apple-m4-copy.toml").write_text(text.replace('id = "apple-m4"', 'id = "apple-m4-copy"'))
    load_profiles(root)  # a different id is fine
    (root / "cloud" / "dup.toml").write_text((root / "cloud" / "api_frontier.toml").read_text())
    with pytest.raises(EdgebenchError, match="also defined in"):
        load_profiles(root)


# ---------------------------------------------------------------- LiteLLM import
def test_import_litellm(tmp_path):
    root = tmp_path / "profiles"
    shutil.copytree(profiles_dir(), root)
    src = tmp_path / "model_prices_and_context_window.json"
    src.write_text(json.dumps({
        "sample_spec": {"input_cost_per_token": 0},
        "gpt-4o-mini": {"input_cost_per_token": 1.5e-07, "output_cost_per_token": 6e-07,
                        "litellm_provider": "openai", "mode": "chat"},
        "gpt-5-nano": {"input_cost_per_token": 1e-07, "output_cost_per_token": 4e-07,
                       "litellm_provider": "openai", "mode": "chat"},
        "newprov/tiny-1b": {"input_cost_per_token": 2e-08, "output_cost_per_token": 4e-08,
                            "cache_read_input_token_cost": 5e-09, "litellm_provider": "newprov",
                            "mode": "chat"},
        "text-embedding-x": {"input_cost_per_token": 1e-08, "output_cost_per_token": 0,
                             "mode": "embedding"},
        "no-price-model": {"litellm_provider": "x", "mode": "chat"},
    }))
    out = root / "cloud" / "litellm_import.toml"
    summary = import_litellm(src, out, root=root)
    assert summary.added == ("litellm/newprov/tiny-1b",)
    reasons = dict(summary.skipped)
    assert "ours kept" in reasons["gpt-4o-mini"] and "ours kept" in reasons["gpt-5-nano"]
    assert "not chat" in reasons["text-embedding-x"] and "no input/output price" in reasons["no-price-model"]
    assert any(d.startswith("openai/gpt-5-nano: ours 0.05/0.4, LiteLLM 0.1/0.4") for d in summary.differing)
    assert "wrote 1 offers" in summary.format()
    p = load_profiles(root)  # the written file is a valid, sourced profile
    new = p.offers["litellm/newprov/tiny-1b"]
    # 2e-08 $/token * 1e6 = 0.02 $/Mtok; 4e-08 -> 0.04; 5e-09 -> 0.005
    assert (new.input_usd_per_mtok, new.output_usd_per_mtok, new.cached_input_usd_per_mtok) == \
        pytest.approx((0.02, 0.04, 0.005))
    assert new.tier == "unclassified" and new.provider == "newprov"
    assert new.sources["input_usd_per_mtok"].url == str(src)
    assert new.sources["input_usd_per_mtok"].retrieved == dt.date.today()
    assert p.offers["openai/gpt-5-nano"].input_usd_per_mtok == 0.05  # ours stays authoritative
    # re-running replaces the previous import instead of treating it as authoritative
    assert import_litellm(src, out, root=root).added == ("litellm/newprov/tiny-1b",)


def test_import_litellm_bad_json(tmp_path):
    bad = tmp_path / "p.json"
    bad.write_text("{nope")
    with pytest.raises(EdgebenchError, match="not valid JSON"):
        import_litellm(bad, tmp_path / "out.toml")
