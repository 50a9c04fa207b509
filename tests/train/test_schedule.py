import math

import pytest

from nextvec.train.schedule import EarlyStopping, get_lr


def test_warmup_then_cosine_to_the_floor():
    lr = lambda s: get_lr(s, 1.0, warmup_steps=4, max_steps=104, min_lr_ratio=0.1)  # noqa: E731
    assert [lr(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr(4) == 1.0  # cosine starts at the peak
    assert math.isclose(lr(54), 0.55)  # half way: floor + half the range
    assert math.isclose(lr(104), 0.1) and math.isclose(lr(500), 0.1)
    lrs = [lr(s) for s in range(4, 105)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_no_warmup():
    assert get_lr(0, 2.0, 0, 10, 0.0) == 2.0 and get_lr(10, 2.0, 0, 10, 0.0) == 0.0


def test_time_budget_drives_the_decay_when_it_is_further_than_the_steps():
    # no step budget (max_steps 0): the share of the time budget used after warmup decides
    assert get_lr(0, 1e-3, 10, 0, 0.1) == pytest.approx(1e-4)  # (0 + 1) / 10 of the peak
    assert get_lr(10, 1e-3, 10, 0, 0.1, time_frac=0.0) == pytest.approx(1e-3)
    assert get_lr(50, 1e-3, 10, 0, 0.1, time_frac=0.5) == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5))  # cosine midpoint
    assert get_lr(90, 1e-3, 10, 0, 0.1, time_frac=1.0) == pytest.approx(1e-4)
    assert get_lr(99, 1e-3, 10, 0, 0.1, time_frac=2.0) == pytest.approx(1e-4)  # clamped past the budget
    # with both budgets, whichever is further along: steps (half way) here, time there
    assert get_lr(60, 1.0, 10, 110, 0.0, time_frac=0.1) == pytest.approx(0.5)
    assert get_lr(20, 1.0, 10, 110, 0.0, time_frac=0.5) == pytest.approx(0.5)


def test_early_stopping_counts_validations_without_improvement():
    es = EarlyStopping("max", patience=2)
    assert [es.update(v) for v in (0.1, 0.9, 0.5, 0.9)] == [True, True, False, False]  # equal is no improvement
    assert es.best == 0.9 and es.bad_evals == 2 and es.should_stop
    es = EarlyStopping("min", patience=0, min_delta=0.5)
    assert [es.update(v) for v in (3.0, 2.6, 2.4, 1.0)] == [True, False, True, True]
    assert es.best == 1.0 and not es.should_stop  # patience 0: never stops
