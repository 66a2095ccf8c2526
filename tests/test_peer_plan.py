"""A peer sweep runs through: each backend gets the model records it can run, every other
(model, variant, backend) is skipped with one line, and the summary names the peers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.errors import EdgebenchError
from bench.run.plan import Shape, make_plan, runnable_pairs, tokenizer_folder


@dataclass(frozen=True)
class Rec:
    model_id: str
    variant: str
    runtime: str
    path: Path = Path("/nonexistent")
    context_length: int = 2048
    tokenizer_dir: Path | None = None


RECORDS = [Rec("m", "int4", "onnx"), Rec("m", "fp32", "onnx"), Rec("m", "fp32", "hf"),
           Rec("m", "gguf", "gguf")]


def test_each_backend_gets_only_what_it_runs():
    pairs, skipped = runnable_pairs(RECORDS, ["ort", "torch", "llamacpp"])
    got = {(f.variant, f.runtime, b) for f, b in pairs}
    assert got == {("int4", "onnx", "ort"), ("fp32", "onnx", "ort"), ("fp32", "hf", "torch"),
                   ("gguf", "gguf", "llamacpp")}
    # one line per (model, variant, backend) with no record, never for cross-kind records
    assert sorted(skipped) == sorted([
        "m/int4 skipped on torch: torch runs fp32 or bf16 of the Hugging Face folder",
        "m/int4 skipped on llamacpp: llamacpp runs the recipe's original GGUF (variant gguf)",
        "m/fp32 skipped on llamacpp: llamacpp runs the recipe's original GGUF (variant gguf)",
        "m/gguf skipped on ort: ort runs the ONNX variants (int4, int8, fp32)",
        "m/gguf skipped on torch: torch runs fp32 or bf16 of the Hugging Face folder",
    ])


def test_a_plan_with_nothing_runnable_is_one_line():
    with pytest.raises(EdgebenchError, match="no backend in --backend runs"):
        make_plan([Rec("m", "gguf", "gguf")], [Shape.tg(8)], backends=["ort"], eps=["cpu"],
                  threads=[1], reps=1, warmup=0, cooldown_s=0, interleave=False)


def test_a_gguf_record_takes_its_tokenizer_from_the_named_folder(tmp_path):
    assert tokenizer_folder(Rec("m", "gguf", "gguf", tokenizer_dir=tmp_path)) == tmp_path
    assert tokenizer_folder(Rec("m", "gguf", "gguf")) is None
    assert tokenizer_folder(Rec("m", "int4", "onnx", path=tmp_path)) == tmp_path


def test_the_peers_line_names_the_fastest_and_the_most_frugal():
    from bench.run.summary import peers
    from tests.rowfactory import make_row

    def rows(backend, variant, decode, joules):
        return [make_row(backend=backend, variant=variant, test="tg128", n_prompt=1,
                         config_id=f"m/{variant}/{backend}/tg128", rep=r, decode_tok_s=decode,
                         decode_j_per_tok=joules, energy_method="estimate:class")
                for r in (1, 2)]

    text = peers(rows("ort", "int4", 120.0, 0.04) + rows("llamacpp", "gguf", 100.0, 0.03))
    assert text.startswith("peers of ")
    assert "fastest decode ort/int4" in text and "120 tok/s" in text
    assert "least energy llamacpp/gguf" in text and "(estimate)" in text
    assert peers(rows("ort", "int4", 120.0, 0.04)) == ""  # one configuration: no peers
