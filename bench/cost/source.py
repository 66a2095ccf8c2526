"""Where one figure comes from: every price, spec and constant carries one."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Source:
    """Where one figure comes from; `note` says how it was read or derived."""

    url: str
    retrieved: dt.date
    note: str | None = None
