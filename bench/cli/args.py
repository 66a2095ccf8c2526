"""Argument types and the one-line-error parser shared by every command."""

from __future__ import annotations

import argparse
from typing import Callable


class Parser(argparse.ArgumentParser):
    """Usage errors as one line, like every other edgebench error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def list_of(kind: Callable[[str], object], what: str) -> Callable[[str], list]:
    def parse(text: str) -> list:
        items = [t.strip() for t in text.split(",") if t.strip()]
        if not items:
            raise argparse.ArgumentTypeError(f"empty {what} list")
        return [kind(t) for t in items]
    return parse


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def non_negative_int(text: str) -> int:
    value = int(text) if text.lstrip("-").isdigit() else None
    if value is None or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number >= 0")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text} must be >= 0")
    return value


def positive_float(text: str) -> float:
    value = non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text} must be > 0")
    return value


def prompt_gen_pair(text: str) -> tuple[int, int]:
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"--pg takes PROMPT,GEN (e.g. 512,128), not {text!r}")
    return positive_int(parts[0]), positive_int(parts[1])


def energy_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--energy", default="auto", metavar="METHOD",
                        help="auto (best measured source, else the labelled TDP estimate), none, "
                             "rapl, nvml, nvml+rapl, apple, battery, external, estimate")
    parser.add_argument("--power-log", metavar="FILE",
                        help="CSV written live by an external power meter (timestamp + W or Wh)")
    parser.add_argument("--clock-offset", type=float, default=0.0, metavar="S",
                        help="seconds to add to the power log's timestamps to match this clock")
    parser.add_argument("--scope", metavar="wall_ac|system_dc",
                        help="what the --power-log meter measured: wall_ac (smart plug) or "
                             "system_dc (USB-C meter into the device); needed unless the log has "
                             "a '# scope: ...' line")
    parser.add_argument("--device-profile", metavar="ID",
                        help="hardware profile (estimate figures, cost verdict); default: exact "
                             "match of this CPU")
