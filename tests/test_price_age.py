"""Prices are checked against the data set's own as-of date (hardware_profiles/as_of.toml).

Never against today's date: the repository must not start failing on its own as time passes, only
when as_of is bumped without refreshing the prices it vouches for.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bench.cost.freshness import AS_OF_FILE, load_as_of, stale_figures
from bench.cost.profiles import load_profiles
from bench.errors import EdgebenchError
from bench.paths import profiles_dir


def _offer(offer_id: str, retrieved: dt.date) -> str:
    src = f'{{ url = "https://example.com/p", retrieved = {retrieved.isoformat()} }}'
    return f"""
[[offers]]
id = "{offer_id}"
provider = "x"
model = "m"
tier = "unclassified"
model_class = "unclassified"
input_usd_per_mtok = 0.1
output_usd_per_mtok = 0.2
sources.input_usd_per_mtok = {src}
sources.output_usd_per_mtok = {src}
"""


def _rental(rental_id: str, retrieved: dt.date) -> str:
    return f"""
[[gpu_rentals]]
id = "{rental_id}"
provider = "x"
gpu = "H100"
tier = "gpu-rental"
model_class = "H100"
usd_per_gpu_hour = 2.0
sources.usd_per_gpu_hour = {{ url = "https://example.com/g", retrieved = {retrieved.isoformat()} }}
"""


def _tree(tmp_path: Path, text: str, as_of: dt.date, max_age: int = 30) -> Path:
    root = tmp_path / "profiles"
    (root / "cloud").mkdir(parents=True)
    (root / "cloud" / "prices.toml").write_text(text)
    (root / AS_OF_FILE).write_text(f"as_of = {as_of.isoformat()}\nmax_price_age_days = {max_age}\n")
    return root


def _stale(root: Path) -> list[str]:
    a = load_as_of(root)
    return stale_figures(load_profiles(root), a.as_of, a.max_price_age_days)


def test_every_shipped_price_is_fresh_for_the_data_sets_as_of_date():
    a = load_as_of(profiles_dir())
    stale = stale_figures(load_profiles(), a.as_of, a.max_price_age_days)
    assert stale == [], "\n".join(stale)
    # every offer price was seen, so the check covers them all
    assert all("input_usd_per_mtok" in o.sources for o in load_profiles().offers.values())


def test_a_price_older_than_the_limit_is_flagged(tmp_path):
    as_of = dt.date(2024, 6, 30)
    text = (_offer("x/old", as_of - dt.timedelta(days=31)) + _offer("x/edge", as_of - dt.timedelta(days=30))
            + _rental("x/h100", as_of - dt.timedelta(days=400)))
    stale = _stale(_tree(tmp_path, text, as_of))
    assert len(stale) == 3, stale  # x/old input and output, x/h100; x/edge is exactly at the limit
    assert all("\n" not in s and "prices.toml" in s for s in stale)
    assert any("x/old input_usd_per_mtok retrieved 2024-05-30, 31 days before as_of 2024-06-30 "
               "(limit 30)" in s for s in stale)
    assert any("x/h100 usd_per_gpu_hour" in s for s in stale)
    assert not any("x/edge" in s for s in stale)


def test_a_price_retrieved_after_as_of_asks_for_a_bump(tmp_path):
    as_of = dt.date(2024, 6, 30)
    stale = _stale(_tree(tmp_path, _offer("x/new", as_of + dt.timedelta(days=1)), as_of))
    assert len(stale) == 2 and all("after as_of 2024-06-30: bump as_of" in s for s in stale)


def test_the_check_never_uses_todays_date(tmp_path):
    # years old against today, fresh against its own as_of: nothing to report
    as_of = dt.date(2020, 1, 10)
    assert _stale(_tree(tmp_path, _offer("x/fresh", dt.date(2020, 1, 1)), as_of)) == []


@pytest.mark.parametrize("text, fragment", [
    ("as_of = 2024-06-30\n", "missing required key 'max_price_age_days'"),
    ("as_of = 2024-06-30\nmax_price_age_days = 0\n", "at least 1"),
    ('as_of = "2024-06-30"\nmax_price_age_days = 30\n', "as_of must be a TOML date"),
    ("as_of = 2024-06-30\nmax_price_age_days = 30\nmax_age = 3\n", "unknown key 'max_age'"),
])
def test_a_bad_as_of_file_is_one_line_naming_it(tmp_path, text, fragment):
    (tmp_path / AS_OF_FILE).write_text(text)
    with pytest.raises(EdgebenchError) as info:
        load_as_of(tmp_path)
    msg = str(info.value)
    assert "\n" not in msg and AS_OF_FILE in msg and fragment in msg, msg
