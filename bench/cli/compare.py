"""`edgebench compare` and `edgebench profiles list|import-litellm`."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench import paths
from bench.cli.args import list_of, positive_float


def cmd_compare(args: argparse.Namespace) -> int:
    from bench.cost.options import PricingOptions
    from bench.cost.verdict import compare_report
    from bench.results.inputs import load_inputs

    inputs = load_inputs([Path(p) for p in args.results])
    options = PricingOptions(device_profile_id=args.device_profile, region=args.region,
                             usage_tok_per_day=args.usage, mix=args.mix, offer_ids=args.offers,
                             rent_usd_per_hour=args.rent_usd_per_hour, owned=args.owned)
    print(compare_report(inputs.results, options, quality_rows=inputs.quality), end="")
    return 0


def ownership_options(parser: argparse.ArgumentParser) -> None:
    """How the machine is paid for (docs/cost.md): shared by `run` and `compare`."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--rent-usd-per-hour", type=positive_float, metavar="USD",
                       help="this machine is rented at USD per hour (a cloud VM, a rented "
                            "board): its marginal cost is the rent for the time tokens take")
    group.add_argument("--owned", action="store_true",
                       help="this machine is owned: its marginal cost is electricity (also on "
                            "a VM whose DMI names no cloud)")


def cmd_profiles_list(args: argparse.Namespace) -> int:
    from bench.cost.format import format_profiles_list
    from bench.cost.profiles import load_profiles

    print(format_profiles_list(load_profiles()), end="")
    return 0


def cmd_profiles_import_litellm(args: argparse.Namespace) -> int:
    from bench.cost.litellm_import import import_litellm

    out = args.output or paths.profiles_dir() / "cloud" / "litellm_import.toml"
    print(import_litellm(Path(args.file), Path(out)).format())
    return 0


def register(sub: argparse._SubParsersAction, parser_class: type) -> None:
    compare = sub.add_parser("compare", help="local $/Mtok, CO2 and break-even against cloud "
                                             "offers, from results CSVs")
    compare.add_argument("results", nargs="+", metavar="CSV",
                         help="results CSVs and quality CSVs (edgebench quality), any order")
    compare.add_argument("--device-profile", metavar="ID",
                         help="price on this profile instead of the exact fingerprint match")
    compare.add_argument("--region", default="us-average",
                         help="electricity tariff and grid carbon (default us-average)")
    compare.add_argument("--usage", type=positive_float, default=1_000_000.0, metavar="TOK",
                         help="tokens per day for the dedicated-device cost (default 1000000)")
    compare.add_argument("--mix", default="3:1",
                         help="input:output mix, a name (3:1, chat, short, long) or I:O")
    compare.add_argument("--offers", type=list_of(str, "offer"),
                         help="only these cloud offer ids (default: all fair offers + frontier)")
    ownership_options(compare)
    compare.set_defaults(func=cmd_compare)

    profiles = sub.add_parser("profiles", help="hardware, cloud and grid profiles")
    psub = profiles.add_subparsers(dest="profiles_command", required=True, parser_class=parser_class)
    plist = psub.add_parser("list", help="device, offer, region and mix ids")
    plist.set_defaults(func=cmd_profiles_list)
    plite = psub.add_parser("import-litellm", help="refresh API prices from LiteLLM's "
                                                   "model_prices_and_context_window.json")
    plite.add_argument("file", metavar="FILE")
    plite.add_argument("--output", "-o", help="TOML to write (default "
                                              "hardware_profiles/cloud/litellm_import.toml)")
    plite.set_defaults(func=cmd_profiles_import_litellm)
