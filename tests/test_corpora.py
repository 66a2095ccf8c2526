import dataclasses
import hashlib
import shutil

import pytest

from bench.errors import EdgebenchError
from bench.quality.corpora import CORPORA_DIR, get_corpus, load_corpora, read_text
from bench.toml_load import load_toml

SPDX_OR_PD = ("public-domain", "BSD-3-Clause", "BSD-2-Clause", "MIT", "Apache-2.0", "PSF-2.0")


def test_the_shipped_corpora_match_their_pins_and_are_large_enough():
    corpora = {c.id: c for c in load_corpora()}
    assert set(corpora) == {"prose-en", "code-py"}
    assert {c.kind for c in corpora.values()} == {"prose", "code"}
    for c in corpora.values():
        data = c.path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == c.sha256
        assert len(data) == c.size_bytes and 100_000 <= c.size_bytes <= 200_000
        assert b"\r" not in data and data.endswith(b"\n")
        text = read_text(c)
        assert len(text.encode("utf-8")) == c.size_bytes


def test_every_corpus_records_its_licence_and_source():
    raw = load_toml(CORPORA_DIR / "corpora.toml")["corpus"]
    for table, corpus in zip(raw, load_corpora()):
        assert corpus.licence in SPDX_OR_PD and len(table["licence_note"]) > 40
        assert corpus.source_url.startswith("https://")
        src = table["source"]
        assert src["package"] and src["version"] and src["path"] and src["archive"]
        assert table["retrieved"].year >= 2026
        if corpus.licence != "public-domain":  # a permissive licence's text ships beside it
            assert corpus.licence_file is not None and corpus.licence_file.is_file()
            assert "Redistribution" in corpus.licence_file.read_text()
    assert "Gutenberg" not in read_text(get_corpus("prose-en"))  # no PG header or trademark


def test_a_corrupted_copy_is_refused(tmp_path):
    good = get_corpus("code-py")
    bad = tmp_path / "code-py.txt"
    data = bytearray(good.path.read_bytes())
    data[1000] ^= 0x01  # one bit: same size, other hash
    bad.write_bytes(bytes(data))
    with pytest.raises(EdgebenchError, match=r"corpus code-py: .* is corrupt \(sha256 .*reinstall"):
        read_text(dataclasses.replace(good, path=bad))
    bad.write_bytes(bytes(data[:-1]))
    with pytest.raises(EdgebenchError, match=r"is corrupt \(178997 bytes, expected 178998\)"):
        read_text(dataclasses.replace(good, path=bad))
    with pytest.raises(EdgebenchError, match=r"is corrupt \(missing\)"):
        read_text(dataclasses.replace(good, path=tmp_path / "gone.txt"))


def test_an_unknown_corpus_lists_the_known_ones():
    with pytest.raises(EdgebenchError, match=r"unknown corpus 'wiki'; corpora: prose-en, code-py"):
        get_corpus("wiki")


def _edited_root(tmp_path, edit):
    for p in CORPORA_DIR.iterdir():
        if p.is_file():
            shutil.copy2(p, tmp_path / p.name)
    toml = tmp_path / "corpora.toml"
    toml.write_text(edit(toml.read_text()))
    return tmp_path


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace('licence = "public-domain"\n', ""),
     r"\[\[corpus\]\] 1: missing key 'licence'"),
    (lambda t: t.replace('kind = "code"', 'kind = "poetry"'), "'kind' must be one of prose, code"),
    (lambda t: t.replace('file = "prose-en.txt"', 'file = "../prose-en.txt"'),
     "'file' must be a plain file name"),
    (lambda t: t.replace('id = "code-py"', 'id = "prose-en"'), "'prose-en' appears twice"),
    (lambda t: t.replace("size_bytes = 178_998", "size_bytes = true"), "'size_bytes' must be an integer"),
    (lambda t: t.replace('url = "https://pypi', 'link = "https://pypi'),
     r"\[corpus.source\]: unknown key 'link'"),
    (lambda t: t.replace('sha256 = "a900', 'sha256 = "A900'), "'sha256' must be 64 lowercase hex"),
])
def test_bad_corpora_toml_names_file_and_key(tmp_path, edit, message):
    root = _edited_root(tmp_path, edit)
    with pytest.raises(EdgebenchError, match=message) as err:
        load_corpora(root)
    assert str(root / "corpora.toml") in str(err.value) and "\n" not in str(err.value)


def test_a_test_root_is_read_and_checked_like_the_packaged_one(tmp_path):
    root = _edited_root(tmp_path, lambda t: t)
    corpus = get_corpus("prose-en", root)
    assert corpus.path == root / "prose-en.txt"
    assert read_text(corpus) == read_text(get_corpus("prose-en"))
