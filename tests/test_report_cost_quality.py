"""Cost against quality in `edgebench report`: the Pareto front, the verdict sentence per device
and variant (numbers by hand, and equal to `edgebench compare`'s), the chart and its table,
and the local price under the machine's ownership (rent on a rented one)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from bench.cost.format import format_usd
from bench.cost.matching import published
from bench.cost.options import PricingOptions
from bench.cost.profiles import load_profiles
from bench.cost.verdict import compare_report
from bench.models.recipes import get_recipe, published_score
from bench.report.build import build_report
from bench.report.cost_quality import MODEL_CARD, pareto_front
from bench.results.writer import format_rows_csv
from tests.quality_rowfactory import humaneval_row, write_quality_csv
from tests.rowfactory import make_row
from tests.test_report_quality import html_tables

EPYC_PROFILE = "amd-epyc-vm-2vcpu"  # matches cpu_model "AMD EPYC" with 2 logical cores; has a rent
PREFILL_TOK_S, DECODE_TOK_S = 400.0, 40.0
PROMPT_TOK, GEN_TOK = 100, 50  # per HumanEval problem
M2_J = (0.01, 0.05)  # J per prefill and per decode token on the Apple M2 (owned)
CARD_MODEL = "qwen2.5-coder-1.5b-instruct"  # a recipe with a published HumanEval


# ---------------------------------------------------------------- the Pareto front
@dataclass(frozen=True)
class XY:
    name: str
    x: float | None
    y: float | None


def names(points) -> list[str]:
    return [p.name for p in points]


def test_a_dominated_point_is_left_out():
    pts = [XY("cheap-bad", 1.0, 0.2), XY("dear-good", 10.0, 0.9), XY("dominated", 5.0, 0.1),
           XY("middle", 3.0, 0.5)]
    assert names(pareto_front(pts)) == ["cheap-bad", "middle", "dear-good"]


def test_ties_keep_only_the_better_side():
    same_x = [XY("low", 2.0, 0.3), XY("high", 2.0, 0.6)]
    assert names(pareto_front(same_x)) == ["high"]  # as dear, better: the other is dominated
    same_y = [XY("dear", 4.0, 0.5), XY("cheap", 1.0, 0.5)]
    assert names(pareto_front(same_y)) == ["cheap"]  # as good, cheaper


def test_exact_duplicates_both_stay_and_unknowns_are_not_worst():
    pts = [XY("a", 1.0, 0.5), XY("b", 1.0, 0.5), XY("no-price", None, 0.99),
           XY("no-quality", 0.1, None), XY("c", 2.0, 0.7)]
    assert names(pareto_front(pts)) == ["a", "b", "c"]
    assert pareto_front([]) == []


# ---------------------------------------------------------------- the report
def rows(cpu: str, fp: str, variant: str, speed: float, cores: int, **kw):
    return make_row(run_id=fp * 32, config_id=f"{fp}/{kw.get('model_id')}/{variant}", test="chat", variant=variant,
                    precision=variant, n_prompt=200, n_gen_requested=128, n_generated=128,
                    prefill_tok_s=PREFILL_TOK_S * speed, decode_tok_s=DECODE_TOK_S * speed,
                    host_fingerprint=fp * 16, cpu_model=cpu, cpu_cores_logical=cores,
                    cpu_cores_physical=cores, **kw)


def result_rows():
    """The EPYC VM (rented by its profile): int4 at full speed, fp32 at half; the Apple M2
    (owned, measured energy): int4; int8 without quality rows; a model with a model card."""
    m2 = dict(energy_method="apple", energy_scope="system_dc", prefill_j_per_tok=M2_J[0],
              decode_j_per_tok=M2_J[1])
    return [rows("AMD EPYC", "e", "int4", 1.0, 2), rows("AMD EPYC", "e", "fp32", 0.5, 2),
            rows("AMD EPYC", "e", "int8", 0.7, 2), rows("Apple M2", "b", "int4", 1.0, 8, **m2),
            rows("AMD EPYC", "e", "int4", 1.0, 2, model_id=CARD_MODEL)]


def task_rows(variant: str, passed: int, n: int = 4, **kw):
    return [humaneval_row(i, passed=i < passed, variant=variant, prompt_tokens=PROMPT_TOK,
                          generated_tokens=GEN_TOK, **kw) for i in range(n)]


def scored_offers():
    """Offer ids with a published HumanEval, and the profiles (prices, scores, rent, tariff)."""
    p = load_profiles()
    ids = tuple(o.id for o in p.offers.values()
                if o.model_id and published(p.models.get(o.model_id), "humaneval") is not None)
    return ids, p


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cost-quality")
    ids, profiles = scored_offers()
    quality = write_quality_csv(tmp / "q.csv", task_rows("int4", 3) + task_rows("fp32", 0))
    results = tmp / "r.csv"
    results.write_text(format_rows_csv(result_rows()))
    options = PricingOptions(offer_ids=ids)
    summary = build_report([results, quality], tmp / "site", options)
    compare = compare_report(result_rows(), options,
                             quality_rows=task_rows("int4", 3) + task_rows("fp32", 0))
    return (summary.html_path.read_text(), summary.markdown_path.read_text(), compare, ids,
            profiles)


def md_table(md: str, title: str) -> list[dict[str, str]]:
    """The first table under the heading `title` (any level), up to the next heading."""
    body = re.split(r"\n#+ " + re.escape(title) + "\n", md, maxsplit=1)[1]
    lines = re.split(r"\n#", body, maxsplit=1)[0].splitlines()
    table = [ln for ln in lines if ln.startswith("|")]
    split = lambda ln: [c.strip() for c in ln.strip("|").split(" | ")]  # noqa: E731
    return [dict(zip(split(table[0]), split(ln))) for ln in table[2:]]


def usd(text: str) -> float:
    return float(text.replace("$", "").replace(",", ""))


def expected_offer(ids, profiles, measured: float) -> tuple[float, str]:
    """By hand: the local run's tokens at each offer's list prices over its published pass rate,
    per 1000 solved; the cheapest whose published pass@1 is at least the measured one."""
    n = 4
    best = []
    for oid in ids:
        o = profiles.offers[oid]
        score = published(profiles.models[o.model_id], "humaneval")
        if score >= measured:
            usd_all = (n * PROMPT_TOK * o.input_usd_per_mtok + n * GEN_TOK * o.output_usd_per_mtok) / 1e6
            best.append((usd_all / (score * n) * 1000, oid))
    return min(best)


def test_sentence_numbers_equal_a_hand_computation(report):
    page, md, compare, ids, profiles = report
    rent = profiles.devices[EPYC_PROFILE].rent_usd_per_hour
    busy_s = 4 * PROMPT_TOK / PREFILL_TOK_S + 4 * GEN_TOK / DECODE_TOK_S  # 1 s + 5 s
    local = rent / 3600 * busy_s / 3 * 1000  # 3 of 4 solved
    z, offer = expected_offer(ids, profiles, 0.75)
    score = published(profiles.models[profiles.offers[offer].model_id], "humaneval")
    sentence = (f"On AMD EPYC, int4 smollm2-135m-instruct solves 75.0% of tasks at ${local:.4g} "
                f"per 1000 solved; the cheapest cloud offer of at least that quality costs "
                f"${z:.4g} per 1000 solved ({offer}, published pass@1 {100 * score:.1f}%).")
    assert sentence in md and sentence in page
    assert f"Local price: rented at ${rent:g}/h (device profile {EPYC_PROFILE}), chat speed" in md
    # the owned Apple M2: electricity for the same tokens at the region's tariff
    tariff = profiles.regions["us-average"].electricity_usd_per_kwh
    joules = 4 * PROMPT_TOK * M2_J[0] + 4 * GEN_TOK * M2_J[1]
    m2 = joules / 3.6e6 * tariff / 3 * 1000
    assert (f"On Apple M2, int4 smollm2-135m-instruct solves 75.0% of tasks at ${m2:.4g} per 1000 "
            "solved; the cheapest cloud offer of at least that quality costs") in md
    # edgebench compare prints the same dollars per solved task
    assert f"${local:.4g} per 1000 solved" in compare and f"${m2:.4g} per 1000 solved" in compare
    assert f"${z:.4g} per 1000 solved" in compare


def test_zero_solved_says_so(report):
    _, md, _, ids, profiles = report
    z, offer = expected_offer(ids, profiles, 0.0)
    assert ("On AMD EPYC, fp32 smollm2-135m-instruct solves 0 of 4 tasks, so it has no price per "
            f"solved task; the cheapest cloud offer of at least that quality costs ${z:.4g} per "
            f"1000 solved ({offer}") in md
    table = md_table(md, "smollm2-135m-instruct: $ per 1000 solved HumanEval problems against pass@1")
    assert "AMD EPYC · smollm2-135m-instruct fp32" not in {r["point"] for r in table}  # never drawn at 0 or infinity
    assert "- AMD EPYC · smollm2-135m-instruct fp32: solves 0 of 4: no price per solved task" in md


def test_no_offer_as_good_says_so(tmp_path):
    ids, profiles = scored_offers()
    assert max(published(profiles.models[profiles.offers[i].model_id], "humaneval")
               for i in ids) < 1.0  # precondition: nobody publishes 100%
    q = write_quality_csv(tmp_path / "q.csv", task_rows("int4", 4))
    r = tmp_path / "r.csv"
    r.write_text(format_rows_csv(result_rows()[:1]))
    md = build_report([r, q], tmp_path / "site").markdown_path.read_text()
    assert ("int4 smollm2-135m-instruct solves 100.0% of tasks at $"
            in md) and "; no compared cloud offer publishes a HumanEval pass@1 of at least 100.0%." in md


def test_pareto_flags_in_the_table_match_dominance(report):
    _, md, *_ = report
    for title in ("smollm2-135m-instruct: $ per 1000 solved HumanEval problems against pass@1",
                  "$ per 1M tokens against HumanEval pass@1 (mix 3:1)"):
        table = md_table(md, title)
        pts = [(usd(r[next(k for k in r if k.startswith("$"))].split(" ")[0]),
                float(r["HumanEval pass@1"].rstrip("%")), r["Pareto front"]) for r in table]
        assert len(pts) > 3 and {p[2] for p in pts} == {"yes", "no"}
        for x, y, flag in pts:  # dominated: another at most as dear, at least as good, not equal
            dominated = any(x2 <= x and y2 >= y and (x2, y2) != (x, y) for x2, y2, _ in pts)
            assert flag == ("no" if dominated else "yes"), (x, y, flag)


def test_unknown_quality_is_listed_never_plotted_and_model_card_is_marked(report):
    _, md, *_ = report
    table = md_table(md, "$ per 1M tokens against HumanEval pass@1 (mix 3:1)")
    points = {r["point"]: r for r in table}
    assert "AMD EPYC · smollm2-135m-instruct int8" not in points
    assert ("- AMD EPYC · smollm2-135m-instruct int8: quality unknown: no HumanEval measured or "
            "published") in md
    card = published_score(get_recipe(CARD_MODEL), "humaneval").score
    row = points[f"AMD EPYC · {CARD_MODEL} int4"]
    assert row["quality"] == MODEL_CARD and row["HumanEval pass@1"] == f"{100 * card:.1f}%"
    assert "offers publish no HumanEval" not in md  # --offers named only scored ones


def test_chart_divs_and_pareto_trace(report):
    page, *_ = report
    assert 'id="chart-cq-solved-0"' in page and 'id="chart-cq-mtok"' in page
    assert page.count('"name":"Pareto front (nothing cheaper is at least as good)"') == 2
    assert '"shape":"hv"' in page  # drawn as a step line
    assert 'href="#cost-quality"' in page


def test_local_marginal_column_is_the_rent_compare_prints(report):
    page, md, compare, _, profiles = report
    table = html_tables(page)["local-cost"]
    epyc = next(r for r in table if r["device"] == "AMD EPYC" and r["configuration"] ==
                "smollm2-135m-instruct int4")
    rent = profiles.devices[EPYC_PROFILE].rent_usd_per_hour
    mix = profiles.mixes["3:1"]
    s_per_mtok = 1e6 * ((mix.input_share + mix.cached_input_share) / PREFILL_TOK_S
                        + mix.output_share / DECODE_TOK_S)
    assert epyc["marginal $/Mtok"] == f"{format_usd(rent / 3600 * s_per_mtok)} (rent)"
    assert epyc["local machine"] == f"rented at ${rent:g}/h (device profile {EPYC_PROFILE})"
    assert epyc["dedicated $/Mtok"] == "n/a (rented)"
    assert f"local marginal: {format_usd(rent / 3600 * s_per_mtok)}/Mtok by rent" in compare
    m2 = next(r for r in table if r["device"] == "Apple M2")
    assert m2["marginal $/Mtok"].endswith("(electricity, measured: apple)")
    breaks = [r for r in html_tables(page)["break-even"] if r["local scenario"].startswith("AMD EPYC")]
    assert breaks and {r["break-even tok/day"] for r in breaks} == {"n/a (rented)"}
    assert all("(marginal, rent)" in r[next(k for k in r if k.startswith("at "))] for r in breaks)


def test_owned_flag_prices_the_vm_by_electricity(tmp_path):
    r = tmp_path / "r.csv"
    r.write_text(format_rows_csv([rows("AMD EPYC", "e", "int4", 1.0, 2, energy_method="estimate:tdp",
                                       energy_scope="system_dc", prefill_j_per_tok=0.01,
                                       decode_j_per_tok=0.05)]))
    md = build_report([r], tmp_path / "site", PricingOptions(owned=True)).markdown_path.read_text()
    (row,) = md_table(md, "Local cost per 1M tokens of the mix")
    assert row["local machine"] == "owned (--owned): electricity only"
    assert row["marginal $/Mtok"].endswith("(electricity, estimate:tdp)")


def test_unknown_rent_is_an_unknown_price_not_electricity(tmp_path):
    """A VM of unknown kind larger than every listed instance: no rent, so no per-task price."""
    row = rows("Mystery CPU", "9", "int4", 1.0, 4096, virtualized=True, energy_method="estimate:tdp",
               energy_scope="system_dc", prefill_j_per_tok=0.01, decode_j_per_tok=0.05)
    r = tmp_path / "r.csv"
    r.write_text(format_rows_csv([row]))
    q = write_quality_csv(tmp_path / "q.csv", task_rows("int4", 2))
    md = build_report([r, q], tmp_path / "site").markdown_path.read_text()
    assert "solves 50.0% of tasks; its price per solved task is unknown (rent unknown" in md
    (cost_row,) = md_table(md, "Local cost per 1M tokens of the mix")
    assert cost_row["marginal $/Mtok"] == "n/a (rent)"


def test_hostile_model_id_is_escaped_and_never_a_path(tmp_path):
    evil = f"../models/{CARD_MODEL}<b>"
    r = tmp_path / "r.csv"
    r.write_text(format_rows_csv([rows("AMD EPYC", "e", "int4", 1.0, 2, model_id=evil)]))
    q = write_quality_csv(tmp_path / "q.csv", task_rows("int4", 1, model_id=evil))
    summary = build_report([r], tmp_path / "site")
    md = summary.markdown_path.read_text()
    assert "quality unknown: no HumanEval measured or published" in md  # no recipe was read
    page = build_report([r, q], tmp_path / "site2").html_path.read_text()
    assert evil not in page and "&lt;b&gt;" in page
