"""Which cloud offers a local model x variant is fairly compared with, in labelled groups.

First the offers of the *same model* (speed, energy and cost compare directly; quality is the
publisher's figure). Then the cheapest offers whose published score on the benchmark the local
variant was measured on is at least the measured one. Then frontier offers, for context only.
A variant without a quality measurement is matched by identity only, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

SAME = "same model"
AS_GOOD = "at least as good"
FRONTIER = "frontier, for context"
MAX_AS_GOOD = 3
MAX_FRONTIER = 2


@dataclass(frozen=True)
class MeasuredQuality:
    benchmark: str  # "humaneval"
    score: float  # pass@1 as a fraction
    n_items: int
    partial: bool


@dataclass(frozen=True)
class OfferGroup:
    name: str  # SAME, AS_GOOD or FRONTIER
    offers: tuple[Any, ...]  # CloudOffer, cheapest first
    note: str  # why these, printed under the group's heading


def hf_id(homepage: str | None) -> str | None:
    """A recipe's model identity: its Hugging Face id, read from its homepage URL."""
    prefix = "https://huggingface.co/"
    if homepage and homepage.startswith(prefix):
        return homepage[len(prefix):].strip("/") or None
    return None


def published(model: Any, benchmark: str) -> float | None:
    """An offer model's published score on `benchmark` (first match), or None."""
    for score in getattr(model, "published", ()):
        if score.benchmark == benchmark:
            return float(score.score)
    return None


def match_offers(local_model: str | None, quality: MeasuredQuality | None,
                 offers: Sequence[Any], models: Any,
                 price: Callable[[Any], float]) -> list[OfferGroup]:
    """`offers` are CloudOffer, `models` maps offer model ids to OfferModel, `price` gives an
    offer's $/Mtok at the mix in use (the order within a group)."""
    ranked = sorted(offers, key=lambda o: (price(o), o.id))
    groups = []
    same = [o for o in ranked if local_model is not None and o.model_id == local_model]
    groups.append(OfferGroup(SAME, tuple(same), f"offers of {local_model}" if same else
                             f"no hosted offer of this model ({local_model or 'no identity'})"))
    if quality is None:
        groups.append(OfferGroup(AS_GOOD, (), "no quality measurement of this variant: matched "
                                              "by identity only (run edgebench quality)"))
    else:
        good = [o for o in ranked if o.model_id != local_model and o.tier != "frontier"
                and (s := published(models.get(o.model_id), quality.benchmark)) is not None
                and s >= quality.score][:MAX_AS_GOOD]
        partial = ", partial" if quality.partial else ""
        groups.append(OfferGroup(AS_GOOD, tuple(good), (
            f"cheapest non-frontier offers whose published {quality.benchmark} is at least the "
            f"measured {100 * quality.score:.1f}% ({quality.n_items} problems{partial})")
            if good else f"no non-frontier offer publishes {quality.benchmark} at least "
                         f"{100 * quality.score:.1f}%"))
    frontier = [o for o in ranked if o.tier == "frontier"][:MAX_FRONTIER]
    groups.append(OfferGroup(FRONTIER, tuple(frontier), "the cheapest frontier offers"))
    return groups
