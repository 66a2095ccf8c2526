"""`edgebench run`: parse the sweep, hand it to the run stage, print the summary and verdict."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from bench.cli.args import (energy_options, list_of, non_negative_float, non_negative_int, positive_int, prompt_gen_pair)
from bench.errors import EdgebenchError

DEFAULT_MODEL = "smollm2-135m-instruct"
DEFAULT_VARIANT = "gguf"  # the GGUF's own blocks (models/gguf_variant.py): built without torch
DEFAULT_REPS = 5


def _folders(args: argparse.Namespace, say: Callable[[str], None]) -> list:
    from bench.models.folder import open_model_folder

    folders = [_open_path(Path(path)) if Path(path).suffix == ".gguf" else
               open_model_folder(Path(path)) for path in args.model_path or []]
    variants = args.variant or [DEFAULT_VARIANT]
    if args.model == ["all"]:
        return folders + _ladder(variants, say)
    if not args.model_path or args.model:
        folders += [record for model_id in args.model or [DEFAULT_MODEL]
                    for variant in variants
                    for record in _records(model_id, variant, args.backend)]
    return folders


def _open_path(path: Path) -> Any:
    from bench.models.gguf_model import open_gguf_path

    return open_gguf_path(path)


def _records(model_id: str, variant: str, backends: list[str]) -> list:
    """What each requested backend kind runs for (model, variant): the built ONNX folder, the
    recipe's original GGUF (variant `gguf`, llamacpp) or its Hugging Face folder (`fp32` or
    `bf16`, torch). The plan skips, with a reason, any backend left without one."""
    from bench.models import recipes
    from bench.models.folder import open_built_variant
    from bench.run.backends import entry

    recipe = recipes.get_recipe(model_id)
    kinds = {entry(b).runtime for b in backends}
    out: list = []
    if "onnx" in kinds and variant in recipe.variants:
        out.append(open_built_variant(model_id, variant))
    if "gguf" in kinds and variant == "gguf":
        from bench.models.gguf_model import open_recipe_gguf

        out.append(open_recipe_gguf(model_id))
    if "hf" in kinds and variant in ("fp32", "bf16"):
        from bench.models.hf_model import open_recipe_hf

        out.append(open_recipe_hf(model_id, variant))
    if not out:
        raise EdgebenchError(
            f"{model_id} has no variant {variant!r} that --backend {','.join(backends)} can "
            f"run; ONNX variants: {', '.join(recipe.variants)}; 'gguf' (the recipe's GGUF) runs "
            "on llamacpp, 'fp32'/'bf16' of the Hugging Face folder on torch")
    return out


def _ladder(variants: list[str], say: Callable[[str], None]) -> list:
    """`--model all`: every recipe with the variant built, smallest first; the rest named."""
    from bench.models import recipes
    from bench.models.folder import is_built, open_built_variant

    ladder = sorted(recipes.list_recipes(), key=lambda r: (r.parameters or 0, r.id))
    folders, missing, absent = [], [], []
    for recipe in ladder:
        for variant in variants:
            if variant not in recipe.variants:
                absent.append(f"{recipe.id} ({variant})")
            elif is_built(recipe.id, variant):
                folders.append(open_built_variant(recipe.id, variant))
            else:
                missing.append(f"{recipe.id} --variant {variant}")
    if missing:
        say(f"--model all: not built, so not run: {'; '.join(missing)} "
            "(edgebench models build MODEL --variant V)")
    if absent:
        say(f"--model all: no such variant in the recipe, so not run: {', '.join(absent)} "
            "(edgebench models list shows each recipe's variants)")
    if not folders:
        raise EdgebenchError("--model all found no built model; build one with 'edgebench "
                             "models build MODEL'")
    return folders


def cmd_run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from bench.cli.energy import open_energy
    from bench.machine.facts import Machine
    from bench.results.writer import ResultWriter
    from bench.run import hardware, summary
    from bench.run.backends import check_backend_names
    from bench.run.plan import make_plan, make_shapes
    from bench.run.session import run_with_progress

    check_backend_names(args.backend)
    from bench.run.backends import entry
    from bench.run.backends.ort import available_eps, check_ep

    if any(entry(b).runtime == "onnx" for b in args.backend):
        for ep in args.ep:
            check_ep(ep)  # unknown or absent EPs fail here, before anything is measured
    shapes = make_shapes(args.prompt_tokens, args.gen_tokens, args.pg or [],
                         args.chat_tokens if args.chat else None)
    if args.sustained and (args.reps is not None or args.cooldown):
        raise EdgebenchError("--sustained N runs N back-to-back repetitions with no cooldown; "
                             "drop --reps/--cooldown or drop --sustained")
    reps = args.sustained or (args.reps if args.reps is not None else DEFAULT_REPS)
    console = Console(stderr=True)
    plan = make_plan(_folders(args, console.print), shapes, backends=args.backend, eps=args.ep,
                     threads=args.threads or [hardware.physical_cores()], reps=reps,
                     warmup=args.warmup, cooldown_s=args.cooldown, interleave=args.interleave)
    output = Path(args.output) if args.output else Path(
        f"edgebench-{datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S')}.csv")
    machine = Machine.from_env()
    fp = hardware.fingerprint(available_eps(), machine)
    ResultWriter.check(output)
    for line in plan.skipped():
        console.print(line)
    energy = open_energy(args, fp, console, machine)
    try:
        bandwidth = _bandwidth(args, plan, fp, console, machine.is_real)
    except BaseException:
        if energy is not None:
            energy.meter.stop()
        raise
    rows = run_with_progress(plan, fp, output, energy, console, machine.root, bandwidth=bandwidth)
    print(summary.render(rows, args.format))
    if args.sustained and args.format == "md":
        print("\n" + summary.sustained(rows))
    if args.format == "md" and args.verdict:
        print("\n" + _verdict(rows, args, output))
    console.print(f"{len(rows)} rows written to {output}")
    return 0


def _bandwidth(args: argparse.Namespace, plan: Any, fp: Any, console: Any,
               real_machine: bool) -> Callable[[int], float | None] | None:
    """bytes/s per thread count for the roofline columns, cached per machine; None to skip
    (--no-roofline, no CPU EP, or a stand-in machine whose memory is not this one's)."""
    from bench.run import roofline

    threads = sorted({t.threads for t in plan.targets if roofline.applies(t.ep)})
    if not args.roofline or not threads or not real_machine:
        return None
    return roofline.bandwidths(threads, fp.host_fingerprint, remeasure=args.remeasure_bandwidth,
                               report=console.print).get


def _verdict(rows: list, args: argparse.Namespace, output: Path) -> str:
    from bench.cost.options import PricingOptions
    from bench.cost.short_verdict import short_verdict

    try:
        return short_verdict(rows, PricingOptions(device_profile_id=args.device_profile,
                                                  rent_usd_per_hour=args.rent_usd_per_hour,
                                                  owned=args.owned),
                             results_path=output)
    except EdgebenchError as exc:
        return f"no cost verdict: {exc}"


def register(sub: argparse._SubParsersAction, parser_class: type) -> None:
    from bench.run.backends import backend_names, default_backends

    run = sub.add_parser("run", help="benchmark models (a sweep is the cross product of lists)",
                         description="Benchmark models. Every option taking a list accepts "
                                     "commas (--threads 1,2); the sweep is the cross product.")
    run.add_argument("--model", type=list_of(str, "model"),
                     help=f"recipe ids, or 'all' for every built recipe, smallest first "
                          f"(default {DEFAULT_MODEL})")
    run.add_argument("--model-path", action="append", metavar="DIR",
                     help="a built model folder (e.g. copied from another machine); repeatable")
    run.add_argument("--variant", type=list_of(str, "variant"), help=f"default {DEFAULT_VARIANT}")
    run.add_argument("--backend", type=list_of(str, "backend"), default=list(default_backends()),
                     help=f"{', '.join(backend_names())} (default: ort-genai,ort when "
                          "onnxruntime-genai is installed, else ort)")
    run.add_argument("--ep", type=list_of(str.lower, "EP"), default=["cpu"],
                     help="execution providers: cpu, cuda, coreml, dml, openvino, qnn, "
                          "xnnpack... (default cpu)")
    run.add_argument("--threads", type=list_of(positive_int, "threads"),
                     help="intra-op threads (default: physical cores)")
    run.add_argument("--prompt-tokens", "-p", type=list_of(positive_int, "length"),
                     default=[512], help="prompt-processing tests ppN (default 512)")
    run.add_argument("--gen-tokens", "-n", type=list_of(positive_int, "length"),
                     default=[128], help="generation tests tgN (default 128)")
    run.add_argument("--pg", type=prompt_gen_pair, action="append", metavar="P,G",
                     help="a combined test ppP+tgG; repeatable")
    run.add_argument("--chat", action=argparse.BooleanOptionalAction, default=True,
                     help="the chat shape: the recipe's conversation through the chat template")
    run.add_argument("--chat-tokens", type=positive_int, default=128,
                     help="tokens generated by the chat shape (default 128)")
    run.add_argument("--reps", "-r", type=positive_int, help=f"repetitions ({DEFAULT_REPS})")
    run.add_argument("--warmup", type=non_negative_int, default=1, help="warmup runs (1)")
    run.add_argument("--cooldown", type=non_negative_float, default=0.0, metavar="S",
                     help="seconds of rest after each run (default 0)")
    run.add_argument("--interleave", action="store_true",
                     help="run configurations A B A B (keeps every model loaded) so host "
                          "drift hits all alike")
    run.add_argument("--output", "-o", help="results CSV, appended to "
                                            "(default edgebench-<UTC time>.csv)")
    run.add_argument("--format", choices=("md", "csv", "json"), default="md",
                     help="what to print on stdout at the end (default md summary)")
    run.add_argument("--sustained", type=positive_int, metavar="N",
                     help="N back-to-back repetitions, no cooldown; reports the drop from first "
                          "to last (thermal throttling)")
    energy_options(run)
    run.add_argument("--idle-s", type=non_negative_float, default=3.0, metavar="S",
                     help="seconds of idle baseline before the first test (default 3; 0 skips, "
                          "and net energy is then left empty)")
    run.add_argument("--roofline", action=argparse.BooleanOptionalAction, default=True,
                     help="measure the memory read bandwidth per thread count (once per "
                          "machine, cached) for the decode roofline columns")
    run.add_argument("--remeasure-bandwidth", action="store_true",
                     help="measure the bandwidth again instead of using the cached value")
    run.add_argument("--verdict", action=argparse.BooleanOptionalAction, default=True,
                     help="end with the cost verdict against the matched cloud offers")
    from bench.cli.compare import ownership_options

    ownership_options(run)
    run.set_defaults(func=cmd_run)
