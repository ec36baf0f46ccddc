import numpy as np
import pytest

from hrpqct.classify.stats import youden_threshold


def test_youden_brute_force():
    rng = np.random.default_rng(3)
    for _ in range(20):
        y = rng.integers(0, 2, 40)
        y[:2] = [0, 1]
        p = np.clip(y * 0.3 + rng.uniform(size=40) * 0.7, 0, 1).round(2)
        t = youden_threshold(y, p)
        js = {c: ((p >= c) & (y == 1)).sum() / (y == 1).sum() + ((p < c) & (y == 0)).sum() / (y == 0).sum() - 1
              for c in np.unique(p)}
        assert js[t] == pytest.approx(max(js.values()))


def test_youden_tie_goes_to_half_and_errors():
    assert youden_threshold([0, 0, 1, 1], [.1, .4, .35, .8]) == 0.35
    with pytest.raises(ValueError, match="both classes"):
        youden_threshold([1, 1], [.2, .3])
