"""A fair verdict end to end: `edgebench compare` on results (and quality) CSVs as a user runs
it, and the short verdict `edgebench run` ends with, on rows from fake cloud and VM machines.

Expected figures are computed here from the rows' own numbers and the shipped profiles, so the
tests check the arithmetic and the grouping, not today's prices."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from bench.cost.format import format_usd
from bench.cost.model import blended_usd_per_mtok, resolve_mix
from bench.cost.options import FAIR_TIERS, PricingOptions
from bench.cost.profiles import load_profiles
from bench.cost.short_verdict import short_verdict
from bench.machine.facts import Machine
from bench.results.writer import ResultWriter
from bench.run.hardware import fingerprint
from tests.conftest import run_cli
from tests.cost_rows import chat_rows
from tests.fake_machines import DMI_MACHINES
from tests.quality_rowfactory import humaneval_row, write_quality_csv

LLAMA_1B = "meta-llama/Llama-3.2-1B-Instruct"
QWEN = "qwen2.5-coder-0.5b-instruct"
# chat_rows' figures at the 3:1 mix: 750,000 / 600 + 250,000 / 40 = 7,500 s per Mtok;
# 750,000 x 0.1 J + 250,000 x 1.0 J = 325,000 J per Mtok
DEVICE_S_PER_MTOK = 7500.0
ENERGY_J_PER_MTOK = 325_000.0


@pytest.fixture(scope="module")
def profiles():
    return load_profiles()


def write_results(path: Path, rows) -> Path:
    with ResultWriter(path) as writer:
        for row in rows:
            writer.write(row)
    return path


def compare(*args: str) -> str:
    done = run_cli("compare", *map(str, args))
    assert done.returncode == 0, done.stderr
    return done.stdout.split("Assumptions and sources")[0]


def group_offers(text: str, heading: str) -> list[str]:
    """The offer ids in the table under `[heading]`, in printed order."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(f"[{heading}]"))
    ids = []
    for line in lines[start + 1:]:
        stripped = line.strip()
        if stripped.startswith("[") or not stripped:
            break
        if stripped.startswith(("offer ", "---", "- ")):
            continue
        ids.append(stripped.split()[0])
    return ids


def test_the_synthetic_llama_is_compared_first_with_the_hosted_llama_3_2_1b(tmp_path, profiles):
    csv = write_results(tmp_path / "r.csv", chat_rows("llama-3.2-1b-synthetic", virtualized=True))
    text = compare(csv)
    mix = resolve_mix("3:1", profiles.mixes)
    hosted = sorted((o for o in profiles.offers.values()
                     if o.model_id == LLAMA_1B and o.tier in FAIR_TIERS),
                    key=lambda o: (blended_usd_per_mtok(o, mix), o.id))
    assert hosted, "the shipped profiles list hosted Llama 3.2 1B offers"
    same = group_offers(text, "same model")
    assert same == [o.id for o in hosted]  # every one, cheapest first
    assert all("llama-3.2-1b" in i for i in same)
    # the same-model group comes before any other group and any other offer
    assert text.index("[same model]") < text.index("[at least as good]") < \
        text.index("[frontier, for context]")
    assert f"offers of {LLAMA_1B}" in text
    assert "synthetic weights: speed, energy and cost are valid; quality is only the " \
           "publisher's figure" in text
    # a VM whose rows name no cloud: typical rent, labelled, and the one-line question
    assert "local machine: a VM of unknown kind" in text and "typical on-demand rent" in text
    assert "to price it exactly: pass --rent-usd-per-hour X" in text and "--owned" in text
    assert "by rent ESTIMATE" in text


def test_the_users_rent_or_ownership_decides_the_local_price(tmp_path, profiles):
    csv = write_results(tmp_path / "r.csv", chat_rows("llama-3.2-1b-synthetic", virtualized=True))
    rented = compare(csv, "--rent-usd-per-hour", "0.5")
    # $0.5/h / 3600 x 7,500 s = $1.0417 per Mtok
    assert f"local marginal: {format_usd(0.5 / 3600 * DEVICE_S_PER_MTOK)}/Mtok by rent" in rented
    assert "$1.04/Mtok by rent" in rented
    assert "rented at $0.5/h (--rent-usd-per-hour)" in rented
    assert "to price it exactly" not in rented and "ESTIMATE" not in rented
    owned = compare(csv, "--owned")
    tariff = profiles.regions["us-average"].electricity_usd_per_kwh
    # 325,000 J / 3.6e6 J/kWh x the tariff
    electricity = format_usd(ENERGY_J_PER_MTOK / 3.6e6 * tariff)
    assert f"local marginal: {electricity}/Mtok by electricity" in owned
    assert "local machine: owned (--owned)" in owned and "to price it exactly" not in owned


def test_a_model_nobody_hosts_gets_the_self_host_line(tmp_path):
    csv = write_results(tmp_path / "r.csv", chat_rows("smollm2-135m-instruct"))
    text = compare(csv)
    assert "[same model] no hosted offer of this model (HuggingFaceTB/SmolLM2-135M-Instruct)" \
        in text
    assert group_offers(text, "same model") == []
    assert "self-host on a rented GPU: $" in text and "per M output tokens" in text
    assert "local machine: owned: electricity only" in text  # bare metal in the rows


def _quality(tmp_path: Path, passed) -> Path:
    rows = [humaneval_row(i, passed(i), model_id=QWEN) for i in range(10)]
    return write_quality_csv(tmp_path / "quality.csv", rows)


def _solved_table(text: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if "price of a solved task" in line)
    return [line.strip() for line in lines[start + 3:] if line.startswith("    ")]


def test_compare_with_quality_prices_a_solved_task(tmp_path, profiles):
    results = write_results(tmp_path / "r.csv", chat_rows(QWEN))
    quality = _quality(tmp_path, lambda i: i % 3 == 0)  # 0, 3, 6, 9: 4 of 10
    text = compare(quality, results)  # any order
    # quality_rowfactory: 130 prompt + 90 generated tokens and 310 bytes per problem
    assert "price of a solved task: HumanEval, 10 problems (completion), 1,300 prompt + 900 " \
           "generated tokens, 3,100 output bytes" in text
    assert "quality: HumanEval pass@1 40.0% (4/10, completion)" in text
    rows = _solved_table(text)
    local = [r for r in rows if r.startswith("local int4")]
    assert len(local) == 1 and "(electricity, chat speed)" in local[0]
    tariff = profiles.regions["us-average"].electricity_usd_per_kwh
    # 1,300 x 0.1 J + 900 x 1.0 J = 1,030 J x tariff / 3.6e6, over 4 solved, x 1000
    per_1000 = 1030 / 3.6e6 * tariff / 4 * 1000
    assert f"${per_1000:.4g} per 1000 solved" in local[0] and "solves 4 of 10" in local[0]
    offers = [r for r in rows if not r.startswith("local")]
    assert offers
    priced = 0
    for row in offers:
        offer = profiles.offers[row.split()[0]]
        score = profiles.models[offer.model_id].score("humaneval")
        usd = (1300 * offer.input_usd_per_mtok + 900 * offer.output_usd_per_mtok) / 1e6
        if score is None:
            assert "no published pass rate: no per-task cost" in row
            continue
        priced += 1
        assert f"${usd / (float(score.score) * 10) * 1000:.4g} per 1000 solved" in row
        assert "borrows the local prompt and output lengths" in row  # nobody hosts the 0.5B
    assert priced >= 1
    # the "at least as good" offers publish HumanEval >= the measured 40%
    for oid in group_offers(text, "at least as good"):
        model = profiles.models[profiles.offers[oid].model_id]
        assert float(model.score("humaneval").score) >= 0.40


def test_a_variant_that_solves_nothing_says_so(tmp_path):
    results = write_results(tmp_path / "r.csv", chat_rows(QWEN))
    quality = _quality(tmp_path, lambda i: False)
    text = compare(results, quality, "--rent-usd-per-hour", "0.36")
    (local,) = [r for r in _solved_table(text) if r.startswith("local int4")]
    assert "solves 0 of 10: no per-task cost" in local
    # the tokens still cost: $0.0001/s x (1,300 / 600 + 900 / 40) s = $0.00247
    assert "$0.00247" in local and "(rent, chat speed)" in local
    assert not re.search(r"\b(inf|nan)\b", text, re.IGNORECASE)


# ---------------------------------------------------------------- edgebench run's verdict
HW_FIELDS = ("host_fingerprint", "cpu_model", "cpu_arch", "cpu_cores_physical",
             "cpu_cores_logical", "ram_bytes", "os_name", "accelerators", "virtualized",
             "cloud_provider")


def rows_on(machine: str, tmp_path: Path, model_id: str = "llama-3.2-1b-synthetic"):
    """Rows as `edgebench run` writes them on a fake machine: the hardware columns come from
    the real fingerprint of that machine's /proc and /sys tree."""
    root = DMI_MACHINES[machine](tmp_path / machine)
    fp = fingerprint(["cpu"], Machine(root, system="Linux"))
    hw = {k: getattr(fp, k) for k in HW_FIELDS}
    return [dataclasses.replace(r, **hw) for r in chat_rows(model_id)]


def test_run_verdict_on_an_aws_vm_prices_by_rent_without_asking(tmp_path):
    rows = rows_on("aws-nitro-vm", tmp_path)
    assert rows[0].cloud_provider == "Amazon EC2"
    text = short_verdict(rows, PricingOptions())
    assert "Amazon EC2" in text and "typical on-demand rent for 2 vCPUs" in text
    assert "by rent ESTIMATE" in text and "to price it exactly" not in text
    same = [line.split()[2] for line in text.splitlines()
            if line.strip().startswith("same model:")]
    assert same and all("llama-3.2-1b" in oid for oid in same)  # the hosted Llama 3.2 1B
    assert "prompt + output tokens" in text  # cloud carbon counts both


def test_run_verdict_on_a_vm_of_unknown_kind_asks(tmp_path):
    rows = rows_on("hyperv-vm", tmp_path)  # Hyper-V on someone's own host: no cloud
    assert rows[0].virtualized and rows[0].cloud_provider is None
    text = short_verdict(rows, PricingOptions())
    assert "a VM of unknown kind" in text and "by rent ESTIMATE" in text
    assert "to price it exactly: pass --rent-usd-per-hour X" in text and "--owned" in text
    # the user's answer settles it
    settled = short_verdict(rows, PricingOptions(owned=True))
    assert "to price it exactly" not in settled and "by electricity" in settled


def test_run_verdict_on_the_kvm_box_without_dmi_uses_its_profiles_rent(tmp_path):
    """The development VM ('AMD EPYC', 2 vCPUs, no DMI) matches amd-epyc-vm-2vcpu, whose
    sourced rent comes before the typical rent (docs/cost.md, "Owned or rented")."""
    rows = rows_on("kvm-without-dmi", tmp_path)
    assert rows[0].virtualized and rows[0].cloud_provider is None
    text = short_verdict(rows, PricingOptions())
    assert "local machine: rented at $0.0864/h (device profile amd-epyc-vm-2vcpu)" in text
    # $0.0864 / 3600 x 7,500 s = $0.18 per Mtok
    assert f"local {format_usd(0.0864 / 3600 * DEVICE_S_PER_MTOK)}/Mtok by rent" in text


def test_run_verdict_for_a_model_nobody_hosts(tmp_path):
    text = short_verdict(rows_on("aws-nitro-vm", tmp_path, "smollm2-135m-instruct"))
    assert "no hosted offer of this model" in text and "self-host on a rented GPU" in text
    assert "frontier, for context:" in text


def test_a_rented_machine_without_a_rent_figure_has_no_per_task_cost(tmp_path):
    """64 vCPUs has no typical rent: the local price is unknown, and so is the per-task cost
    (it was once priced by electricity under a "rent" label)."""
    rows = chat_rows(QWEN, cloud_provider="Amazon EC2", virtualized=True, cpu_cores_logical=64)
    results = write_results(tmp_path / "r.csv", rows)
    text = compare(results, _quality(tmp_path, lambda i: i < 5))
    assert "no typical rent for 64 vCPUs" in text and "local marginal: unknown" in text
    (local,) = [r for r in _solved_table(text) if r.startswith("local int4")]
    assert "(rent, chat speed)" in local and "cost unknown" in local
    assert "electricity for" not in local and "per 1000 solved" not in local
