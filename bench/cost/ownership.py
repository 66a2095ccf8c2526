"""Owned or rented: what a local token's marginal cost is.

An owned device's marginal cost is its electricity. A rented one (a cloud VM, a rented board)
is paid by the hour whether it computes or not, so a token costs the rent for the time it takes:
pricing a VM by its watts makes "local" look hundreds of times cheaper than it is. The decision,
in order: the user's --rent-usd-per-hour or --owned; the device profile's rent; a cloud named by
the machine's DMI (typical on-demand rent for its vCPU count, from that cloud's instances where
listed, labelled); a VM of unknown kind (a
hypervisor flag alone: also WSL2 and desktop VMs) priced as rented at that typical rent and
asking, in one line, for the real answer; otherwise owned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

S_PER_HOUR = 3600.0
ASK = "pass --rent-usd-per-hour X (what this machine costs per hour) or --owned"


@dataclass(frozen=True)
class Ownership:
    kind: str  # "owned" or "rented"
    rent_usd_per_hour: float | None  # rented: None when no figure could be found
    label: str  # printed beside every local price
    estimate: bool = False  # the rent is a typical figure, not this machine's
    ask: str | None = None  # one line asking the user to settle an unknown VM


def decide(*, rent_usd_per_hour: float | None, owned: bool, device: Any,
           cloud_provider: str | None, virtualized: bool | None, vcpus: int | None,
           rents: Sequence[Any]) -> Ownership:
    """`device` is the DeviceProfile or None; `rents` the VmRent records (bench.cost.rent)."""
    from bench.cost.rent import typical_rent

    if rent_usd_per_hour is not None:
        return Ownership("rented", rent_usd_per_hour,
                         f"rented at ${rent_usd_per_hour:g}/h (--rent-usd-per-hour)")
    if owned:
        return Ownership("owned", None, "owned (--owned): electricity only")
    device_rent = getattr(device, "rent_usd_per_hour", None) if device is not None else None
    if device_rent is not None:
        return Ownership("rented", device_rent,
                         f"rented at ${device_rent:g}/h (device profile {device.id})")
    if not cloud_provider and not virtualized:
        return Ownership("owned", None, "owned: electricity only")
    # a named cloud's own instances when the table lists some, else every provider's
    own = [r for r in rents if cloud_provider and r.provider == cloud_provider]
    typical = typical_rent(own or rents, vcpus) if vcpus else None
    where = f"a VM on {cloud_provider}" if cloud_provider else \
        "a VM of unknown kind (hypervisor flag, no cloud in its DMI)"
    if typical is None:
        return Ownership("rented", None, f"{where}: no typical rent for {vcpus} vCPUs",
                         ask=None if cloud_provider else ASK)
    label = f"{where}, priced at the {typical.label}"
    return Ownership("rented", typical.usd_per_hour, label, estimate=True,
                     ask=None if cloud_provider else ASK)



@dataclass(frozen=True)
class LocalPrice:
    """A configuration's marginal $/Mtok under its ownership, with an estimate's bounds."""

    ownership: Ownership
    usd_per_mtok: float | None
    low_usd_per_mtok: float | None
    high_usd_per_mtok: float | None
    basis: str  # "rent" or "electricity"

    @property
    def estimated(self) -> bool:
        return self.ownership.estimate or self.low_usd_per_mtok != self.high_usd_per_mtok


def local_price(ownership: Ownership, dc: Any) -> LocalPrice:
    """`dc` is the DeviceCost: rent for its busy seconds when rented, else its electricity."""
    from bench.cost.rent import rent_usd_per_mtok

    if ownership.kind == "rented":
        if ownership.rent_usd_per_hour is None:
            return LocalPrice(ownership, None, None, None, "rent")
        usd = rent_usd_per_mtok(ownership.rent_usd_per_hour, dc.device_s_per_mtok)
        return LocalPrice(ownership, usd, usd, usd, "rent")
    return LocalPrice(ownership, dc.marginal_usd_per_mtok, dc.marginal_usd_per_mtok_low,
                      dc.marginal_usd_per_mtok_high, "electricity")


def for_configuration(cfg: Any, device: Any, options: Any, rents: Sequence[Any]) -> Ownership:
    """The ownership of one configuration (a Configuration from scenarios.py)."""
    return decide(rent_usd_per_hour=options.rent_usd_per_hour, owned=options.owned,
                  device=device, cloud_provider=cfg.cloud_provider,
                  virtualized=cfg.virtualized, vcpus=cfg.cpu_cores_logical, rents=rents)
