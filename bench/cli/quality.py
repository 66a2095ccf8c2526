"""`edgebench quality`: bits per byte, agreement with fp32 and HumanEval pass@1, written to a
quality CSV and printed as a table (docs/quality.md)."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path

from bench.cli.args import list_of, positive_int
from bench.errors import EdgebenchError

DEFAULT_MODEL = "smollm2-135m-instruct"


def cmd_quality(args: argparse.Namespace) -> int:
    from rich.console import Console

    from bench.machine.facts import Machine
    from bench.quality.rows import QualityRun
    from bench.quality.session import QualityPlan, check_plan, run_quality
    from bench.quality.summary import summarize
    from bench.quality.table import render
    from bench.results.quality import KIND, QUALITY_COLUMNS
    from bench.results.writer import ResultWriter
    from bench.run import hardware
    from bench.run.backends import check_backend_names, make_backend
    from bench.run.backends.ort import available_eps, check_ep

    check_backend_names([args.backend])
    check_ep(args.ep)
    plan = QualityPlan(
        model_ids=tuple(args.model or [DEFAULT_MODEL]),
        variants=tuple(args.variant) if args.variant else None,
        measures=tuple(args.measures), corpus_ids=tuple(args.corpus) if args.corpus else None,
        limit=args.limit, prompt_format=args.prompt_format, backend=args.backend, ep=args.ep,
        threads=args.threads or hardware.physical_cores(),
        unsafe_no_isolation=args.unsafe_no_isolation)
    check_plan(plan)
    output = Path(args.output) if args.output else Path(
        f"edgebench-quality-{datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S')}.csv")
    ResultWriter.check(output, QUALITY_COLUMNS, KIND)
    fp = hardware.fingerprint(available_eps(), Machine.from_env())
    run = QualityRun(run_id=QualityRun.new_id(), git_commit=hardware.git_commit(),
                     host_fingerprint=fp.host_fingerprint, cpu_model=fp.cpu_model,
                     backend=args.backend,
                     backend_version=make_backend(args.backend).versions().backend_version,
                     ep=args.ep, threads=plan.threads)
    console = Console(stderr=True)
    rows = run_quality(plan, run, output, console, console.print)
    print(render(summarize(rows), _published))
    console.print(f"{len(rows)} quality rows written to {output}")
    return 0


def _published(model_id: str, benchmark: str) -> str | None:
    """The publisher's own figure from the recipe, printed beside the measured one."""
    from bench.models import recipes

    try:
        recipe = recipes.get_recipe(model_id)
    except EdgebenchError:  # a model measured elsewhere whose recipe is not installed here
        return None
    score = recipes.published_score(recipe, benchmark)
    if score is None:
        return "not published"
    return f"{100 * score.score:.1f}% ({score.model}, {score.setting})"


def register(sub: argparse._SubParsersAction, parser_class: type) -> None:
    q = sub.add_parser(
        "quality", help="what a model and quantization is worth: bits per byte, agreement "
                        "with fp32, HumanEval pass@1",
        description="Measure quality per model x variant and write a quality CSV. Scoring "
                    "needs full-logits builds (edgebench models build MODEL --logits all); "
                    "HumanEval runs each completion in an OS sandbox (docs/sandbox.md).")
    q.add_argument("--model", type=list_of(str, "model"),
                   help=f"recipe ids with real weights (default {DEFAULT_MODEL})")
    q.add_argument("--variant", type=list_of(str, "variant"),
                   help="variants (default: all of the recipe's; fp32 is added as the "
                        "reference for agreement)")
    q.add_argument("--measures", type=list_of(str, "measure"),
                   default=["bpb", "agreement", "humaneval"],
                   help="bpb, agreement, humaneval (default all three)")
    q.add_argument("--corpus", type=list_of(str, "corpus"),
                   help="corpus ids for bpb/agreement (default every shipped corpus)")
    q.add_argument("--limit", type=positive_int, metavar="N",
                   help="only the first N windows per corpus and N HumanEval problems: a "
                        "quick look, marked partial")
    q.add_argument("--prompt-format", choices=("auto", "completion", "chat"), default="auto",
                   help="HumanEval prompt: chat for models with a chat template, else "
                        "completion (auto, the default)")
    q.add_argument("--backend", default="ort", help="a backend with a scoring call (ort)")
    q.add_argument("--ep", type=str.lower, default="cpu", help="execution provider (cpu)")
    q.add_argument("--threads", type=positive_int, help="intra-op threads (physical cores)")
    q.add_argument("--output", "-o", help="quality CSV, appended to "
                                          "(default edgebench-quality-<UTC time>.csv)")
    q.add_argument("--unsafe-no-isolation", action="store_true",
                   help="run generated code without OS isolation where namespaces are not "
                        "available (recorded in every HumanEval row)")
    q.set_defaults(func=cmd_quality)
