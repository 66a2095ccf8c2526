import numpy as np
import pytest

from bench.results import stats


@pytest.mark.parametrize("q", [0, 10, 50, 90, 99, 100])
def test_percentile_matches_numpy_linear(q):
    values = [5.0, 1.0, 9.5, 3.25, 7.0, 2.0, 8.0]
    assert stats.percentile(values, q) == pytest.approx(np.percentile(values, q))


def test_median_of_even_count_interpolates():
    assert stats.median([1.0, 2.0, 3.0, 10.0]) == 2.5


def test_rel_spread_is_half_range_over_median():
    assert stats.rel_spread([90.0, 100.0, 110.0]) == pytest.approx(0.1)


def test_percentile_rejects_empty_and_bad_q():
    with pytest.raises(ValueError):
        stats.percentile([], 50)
    with pytest.raises(ValueError):
        stats.percentile([1.0], 101)
