"""compare_report on synthetic rows: pairing, medians, estimate labels, unmatched devices."""

from __future__ import annotations

import dataclasses

import pytest

from bench.cost import model as cost
from bench.cost.options import PricingOptions
from bench.cost.verdict import compare_report
from bench.cost.format import format_profiles_list
from bench.cost.scenarios import group_configurations
from bench.errors import EdgebenchError
from bench.cost.profiles import load_profiles
from bench.results.schema import ResultRow
from tests import rowfactory


def make_row(**overrides) -> ResultRow:
    """A plausible tg128 row from this 2-vCPU EPYC VM with estimated energy."""
    base = dict(run_id="run-1", config_id="c1", model_id="smollm2-135m", precision="int4",
                backend="ort-genai", n_prompt=1, n_gen_requested=128, n_generated=128,
                decode_tok_s=50.0, prefill_tok_s=100.0, energy_method="estimate:tdp",
                energy_scope="cpu_package", idle_power_w=1.5625, prefill_j_per_tok=0.05,
                decode_j_per_tok=0.09)
    return rowfactory.make_row(**{**base, **overrides})


def pp_tg_rows() -> list[ResultRow]:
    rows = []
    for rep, (pp, tg) in enumerate([(400.0, 40.0), (500.0, 50.0), (450.0, 60.0)], start=1):
        rows.append(make_row(test="pp512", rep=rep, n_prompt=512, n_generated=0, prefill_tok_s=pp,
                             decode_tok_s=None, prefill_j_per_tok=0.01, decode_j_per_tok=None))
        rows.append(make_row(test="tg128", rep=rep, decode_tok_s=tg, prefill_tok_s=5.0,
                             prefill_j_per_tok=9.0, decode_j_per_tok=0.1))
    return rows


def test_pp_and_tg_are_paired_on_medians_and_tg_prefill_is_ignored():
    (cfg,) = group_configurations(pp_tg_rows())
    (sc,) = cfg.scenarios
    assert sc.label == "pp512+tg128 (paired)"
    # medians: pp 400,500,450 -> 450; tg 40,50,60 -> 50; the tg rows' 5 tok/s prefill is not used
    assert sc.perf == cost.ConfigPerf(450.0, 50.0, 0.01, 0.1)
    assert sc.energy_is_estimate


def test_chat_rows_price_alone_and_configurations_split_by_threads():
    rows = [make_row(test="chat", n_prompt=200, prefill_tok_s=300.0, threads=t) for t in (1, 2)]
    configs = group_configurations(rows)
    assert sorted(c.threads for c in configs) == [1, 2]
    assert all(c.scenarios[0].label == "chat" for c in configs)


def test_report_matches_this_vm_names_offers_and_labels_estimates():
    text = compare_report(pp_tg_rows(), PricingOptions(usage_tok_per_day=1_000_000))
    assert "device profile: amd-epyc-vm-2vcpu" in text
    assert "deepinfra/llama-3.2-3b-instruct" in text
    assert "openai/gpt-5-nano" in text
    assert "anthropic/claude-sonnet-4.6" in text  # frontier shown for context
    assert "ESTIMATE" in text and "*" in text
    assert "Assumptions and sources" in text
    assert "https://artificialanalysis.ai/methodology/performance-benchmarking" in text
    assert "retrieved 2026-" in text
    # the VM profile carries a rent: local is the rent for the busy seconds, and dedicated cost
    # and break-even (about buying a device) do not apply
    assert "local machine: rented at $0.0864/h (device profile amd-epyc-vm-2vcpu)" in text
    # 750,000 / 450 + 250,000 / 50 = 6,666.7 s/Mtok x 0.0864 / 3600 = $0.16/Mtok
    assert "local marginal: $0.16/Mtok by rent" in text
    assert "(part of the rent, not added)" in text and "n/a (rented)" in text
    assert "has no price_usd" not in text and "Break-even at" not in text
    # owned, the VM profile has no price, so dedicated cost and break-even are explained, not invented
    owned = compare_report(pp_tg_rows(), PricingOptions(owned=True))
    assert "local machine: owned (--owned)" in owned and "by electricity" in owned
    assert "has no price_usd" in owned


def test_report_with_priced_profile_gives_break_even_and_never():
    rows = [dataclasses.replace(r, energy_method="rapl") for r in pp_tg_rows()]
    text = compare_report(rows, PricingOptions(device_profile_id="apple-m4", region="de", usage_tok_per_day=5_000_000))
    assert "chosen with --device-profile" in text
    assert "Break-even at" in text or "never" in text.lower()
    assert "ESTIMATE" not in text
    assert "usd_per_eur" in text  # EUR tariff converted, with its source


def test_unmatched_device_is_reported_with_options_by_kind():
    rows = [dataclasses.replace(r, cpu_model="Mystery CPU 9000", cpu_cores_logical=16) for r in pp_tg_rows()]
    text = compare_report(rows)
    assert "Device not matched" in text and "--device-profile" in text
    assert "laptop:" in text and "apple-m4" in text
    # not a VM in the rows (virtualized unknown, no cloud): owned, and its electricity cost
    # needs no device profile: 750,000 x 0.01 + 250,000 x 0.1 = 32,500 J x 0.1688 $/kWh / 3.6e6
    assert "local machine: owned: electricity only" in text
    assert "local marginal: $0.00152*/Mtok by electricity" in text


def test_unpaired_pp_is_reported_not_priced():
    rows = [r for r in pp_tg_rows() if r.test == "pp512"]
    text = compare_report(rows)
    assert "not priced: pp512 (no tg test" in text


def test_bad_arguments_are_one_line_errors():
    with pytest.raises(EdgebenchError, match="unknown region"):
        compare_report(pp_tg_rows(), PricingOptions(region="atlantis"))
    with pytest.raises(EdgebenchError, match="unknown device profile"):
        compare_report(pp_tg_rows(), PricingOptions(device_profile_id="nope"))
    with pytest.raises(EdgebenchError, match="mix 'x'"):
        compare_report(pp_tg_rows(), PricingOptions(mix="x"))


def test_profiles_list_names_kinds_and_tiers():
    text = format_profiles_list(load_profiles())
    assert "server:" in text and "amd-epyc-vm-2vcpu" in text
    assert "open-small:" in text and "us-average" in text
