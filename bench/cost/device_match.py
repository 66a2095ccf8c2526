"""Exact matching of a result's hardware fingerprint to a device profile (never fuzzy)."""

from __future__ import annotations

from typing import Iterable

from bench.cost.profiles import DeviceProfile, Profiles
from bench.errors import EdgebenchError


def split_accelerators(accelerators: str) -> tuple[str, ...]:
    """The fingerprint lists accelerators separated by ';' (',' also accepted)."""
    parts = accelerators.replace(",", ";").split(";")
    return tuple(p.strip() for p in parts if p.strip())


def match_device(
    cpu_model: str,
    accelerators: str,
    profiles: Profiles | Iterable[DeviceProfile],
    *,
    cpu_cores_logical: int | None = None,
) -> DeviceProfile | None:
    """Exact match only: a profile matches when every criterion it lists equals the fingerprint.

    Guessing a device from a similar name would price the wrong hardware, so there is no fuzzy
    matching. When several profiles match, the one with the most criteria wins (an accelerator
    plus CPU match beats a CPU-only match); a tie between different profiles returns None.
    Pass accelerators="" for CPU-only runs so a GPU profile is not picked for them.
    """
    devices = profiles.devices.values() if isinstance(profiles, Profiles) else profiles
    accs = set(split_accelerators(accelerators))
    best: list[tuple[int, DeviceProfile]] = []
    for d in devices:
        criteria = 0
        if d.match_cpu_model:
            if cpu_model not in d.match_cpu_model:
                continue
            criteria += 1
        if d.match_accelerators:
            if not accs & set(d.match_accelerators):
                continue
            criteria += 1
        if d.match_cpu_cores_logical is not None:
            if cpu_cores_logical != d.match_cpu_cores_logical:
                continue
            criteria += 1
        if criteria:
            best.append((criteria, d))
    if not best:
        return None
    top = max(c for c, _ in best)
    winners = [d for c, d in best if c == top]
    return winners[0] if len(winners) == 1 else None


def device_by_id(profiles: Profiles, profile_id: str) -> DeviceProfile:
    """A profile named with --device-profile; an unknown id is one line pointing at the list."""
    device = profiles.devices.get(profile_id)
    if device is None:
        raise EdgebenchError(f"unknown device profile '{profile_id}'; see `edgebench profiles list`")
    return device
