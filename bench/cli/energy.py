"""`edgebench meters` and `edgebench energy attach`, and opening the run's energy source.

The device profile (cost stage) supplies the TDP figures of the labelled estimate; the energy
stage opens the meter and measures the idle baseline.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench.errors import EdgebenchError


def device_profile(fp: Any, profile_id: str | None) -> Any:
    """The hardware profile for this machine: --device-profile, else an exact fingerprint match."""
    from bench.cost.device_match import device_by_id, match_device
    from bench.cost.profiles import load_profiles

    profiles = load_profiles()
    if profile_id:
        return device_by_id(profiles, profile_id)
    return match_device(fp.cpu_model, "", profiles, cpu_cores_logical=fp.cpu_cores_logical)


def estimate_params(fp: Any, profile_id: str | None) -> Any:
    """estimate:tdp figures (with bounds) from the device profile, or None when none gives them."""
    from bench.energy.cpu_class import profile_params

    device = device_profile(fp, profile_id)
    if device is not None and device.tdp_w is not None and device.idle_power_w is not None:
        return profile_params(device.id, device.idle_power_w, device.tdp_w,
                              tdp_min_w=device.tdp_min_w, tdp_max_w=device.tdp_max_w)
    return None


def class_params(machine: Any) -> Any:
    """estimate:class figures for any machine, from what it says about itself."""
    from bench.energy.cpu_class import class_params as from_facts

    return from_facts(machine.facts())


NVIDIA_EPS = ("cuda", "tensorrt")  # the execution providers whose energy NVML measures


def gpu_run(eps: list[str]) -> bool:
    return any(ep in NVIDIA_EPS for ep in eps)


def open_energy(args: argparse.Namespace, fp: Any, console: Any, machine: Any) -> Any:
    """The run's EnergySetup (None with --energy none, or when nothing is available under auto)."""
    from bench.energy.setup import open_energy_setup

    if args.energy == "none":
        return None
    return open_energy_setup(args.energy, estimate_params(fp, args.device_profile),
                             class_params=class_params(machine), gpu_run=gpu_run(args.ep),
                             sys_root=machine.root, power_log=args.power_log,
                             clock_offset_s=args.clock_offset, power_log_scope=args.scope,
                             idle_s=args.idle_s, say=console.print)


def cmd_meters(args: argparse.Namespace) -> int:
    from bench.energy.meters import auto_choice, detect_meters, replacement_hint
    from bench.machine.facts import Machine
    from bench.run import hardware

    machine = Machine.from_env()
    context = dict(estimate_params=estimate_params(hardware.fingerprint([], machine),
                                                   args.device_profile),
                   class_params=class_params(machine), power_log=args.power_log,
                   sys_root=machine.root)
    print("| source | works | scope | resolution s | detail |")
    print("|---|---|---|---:|---|")
    for p in detect_meters(**context):
        res = f"{p.resolution_s:g}" if p.resolution_s is not None else "-"
        print(f"| {p.method} | {'yes' if p.available else 'no'} | {p.scope} | {res} | {p.detail} |")
    for label, gpu in (("a CPU run", False), ("a GPU run (--ep cuda, ...)", True)):
        try:
            method, why = auto_choice(gpu_run=gpu, **context)
        except EdgebenchError as exc:
            method, why = "none", str(exc)
        print(f"\n--energy auto for {label}: {method} ({why})")
    print(f"\nto measure instead of estimating: {replacement_hint(machine.root)}")
    return 0


def cmd_energy_attach(args: argparse.Namespace) -> int:
    from bench.energy.attach import attach_file

    n = attach_file(Path(args.results), Path(args.power_log), args.clock_offset, Path(args.output),
                    args.scope)
    print(f"{n} rows with energy from {args.power_log} written to {args.output}")
    return 0


def register(sub: argparse._SubParsersAction, parser_class: type) -> None:
    meters = sub.add_parser("meters", help="energy sources: which work here, scope, resolution, "
                                           "and why the others do not")
    meters.add_argument("--device-profile", metavar="ID",
                        help="hardware profile for the estimate (default: exact match)")
    meters.add_argument("--power-log", metavar="FILE", help="an external meter's CSV log")
    meters.set_defaults(func=cmd_meters)

    energy = sub.add_parser("energy", help="energy from an external meter's log, after the run")
    esub = energy.add_subparsers(dest="energy_command", required=True, parser_class=parser_class)
    eattach = esub.add_parser("attach", help="fill a results CSV's energy columns from a USB-C "
                                             "meter or smart-plug log, into a new file")
    eattach.add_argument("results", metavar="RESULTS.csv")
    eattach.add_argument("--power-log", required=True, metavar="FILE",
                         help="CSV: a timestamp column and watts or cumulative watt-hours")
    eattach.add_argument("--clock-offset", type=float, default=0.0, metavar="S",
                         help="machine time minus meter time, in seconds")
    eattach.add_argument("--scope", metavar="wall_ac|system_dc",
                         help="what the meter measured: wall_ac (smart plug) or system_dc (USB-C "
                              "meter into the device); needed unless the log has '# scope: ...'")
    eattach.add_argument("--output", "-o", required=True, metavar="FILE",
                         help="new results CSV to write")
    eattach.set_defaults(func=cmd_energy_attach)
