"""Small fixtures for the fair-verdict tests: hand-made rents, devices, offers and offer models
(independent of the shipped profiles, so the arithmetic is checked by hand), and result rows of
one chat configuration with known speed and energy."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from bench.cost.offer_models import OfferModel
from bench.cost.profiles import CloudOffer, DeviceProfile
from bench.cost.rent import VmRent
from bench.results.schema import ResultRow
from tests import rowfactory

HERE = Path("test")


def vm_rent(id: str, vcpus: int, usd_per_hour: float) -> VmRent:
    provider, instance = id.split("/")
    return VmRent(id=id, provider=provider.upper(), instance=instance, region="r1", vcpus=vcpus,
                  ram_gib=4.0 * vcpus, usd_per_hour=usd_per_hour, path=HERE)


# three 2-vCPU instances (median 0.10) and two 4-vCPU ones (lower middle 0.20)
RENTS = (vm_rent("a/small", 2, 0.08), vm_rent("b/small", 2, 0.10), vm_rent("c/small", 2, 0.30),
         vm_rent("a/medium", 4, 0.20), vm_rent("b/medium", 4, 0.40))


def device(rent_usd_per_hour: float | None = None, **kw) -> DeviceProfile:
    return DeviceProfile(id="dev", name="dev", kind="server", path=HERE,
                         rent_usd_per_hour=rent_usd_per_hour, **kw)


def offer(id: str, model_id: str | None, input_usd: float, output_usd: float,
          tier: str = "open-small") -> CloudOffer:
    return CloudOffer(id=id, provider=id.split("/")[0], model=id, tier=tier,
                      model_class="test", path=HERE, input_usd_per_mtok=input_usd,
                      output_usd_per_mtok=output_usd, model_id=model_id)


def offer_model(id: str, parameters: int | None = None, **scores: float) -> OfferModel:
    """`scores` are published figures by benchmark ("humaneval"=0.5)."""
    published = tuple(SimpleNamespace(benchmark=b, score=s) for b, s in scores.items())
    return OfferModel(id=id, name=id, open_weights=True, tokenizer_family="t", path=HERE,
                      parameters=parameters, published=published)


def chat_rows(model_id: str, *, prefill_tok_s: float = 600.0, decode_tok_s: float = 40.0,
              prefill_j_per_tok: float = 0.1, decode_j_per_tok: float = 1.0, reps: int = 2,
              **overrides) -> list[ResultRow]:
    """A measured (rapl) chat configuration: identical reps, so the medians are these figures.

    The default cpu_model matches no device profile, so ownership is decided by the rows'
    virtualized / cloud_provider alone (2 logical cores)."""
    base = dict(model_id=model_id, variant="int4", test="chat", n_prompt=200, n_generated=128,
                config_id=f"{model_id}/int4/ort/cpu/t2/chat", prefill_tok_s=prefill_tok_s,
                decode_tok_s=decode_tok_s, energy_method="rapl", energy_scope="cpu_package",
                prefill_j_per_tok=prefill_j_per_tok, decode_j_per_tok=decode_j_per_tok,
                cpu_model="Test CPU 1000 (no profile)", cpu_cores_logical=2,
                virtualized=False, cloud_provider=None)
    return [rowfactory.make_row(**{**base, **overrides}, rep=rep) for rep in range(1, reps + 1)]
