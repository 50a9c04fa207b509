import math

from nextvec.config import TrainConfig
from nextvec.train.schedule import get_lr


def test_warmup_then_cosine_to_the_floor():
    cfg = TrainConfig(lr=1.0, warmup_steps=4, max_steps=104, min_lr_ratio=0.1)
    assert [get_lr(s, cfg) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert get_lr(4, cfg) == 1.0  # cosine starts at the peak
    assert math.isclose(get_lr(54, cfg), 0.55)  # half way: floor + half the range
    assert math.isclose(get_lr(104, cfg), 0.1) and math.isclose(get_lr(500, cfg), 0.1)
    lrs = [get_lr(s, cfg) for s in range(4, 105)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_no_warmup():
    cfg = TrainConfig(lr=2.0, warmup_steps=0, max_steps=10, min_lr_ratio=0.0)
    assert get_lr(0, cfg) == 2.0 and get_lr(10, cfg) == 0.0
