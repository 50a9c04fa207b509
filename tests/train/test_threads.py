"""Training threads: as many as the cores other programs leave idle (train.threads = 0)."""

import torch

from nextvec.train.threads import cpu_jiffies, idle_core_threads, threads_for

STAT = """cpu  100 0 50 800 50 0 0 0 0 0
cpu0 50 0 25 400 25 0 0 0 0 0
cpu1 50 0 25 400 25 0 0 0 0 0
intr 12345
"""


def test_proc_stat_is_read_as_busy_and_total_jiffies_over_all_cpus():
    assert cpu_jiffies(STAT) == (150.0, 1000.0, 2)


def test_threads_leave_the_cores_of_other_programs_alone():
    assert threads_for(0.0, 2) == 2  # idle: every core
    assert threads_for(1.0, 2) == 1  # one busy neighbour: one thread
    assert threads_for(2.0, 2) == 1  # never fewer than one
    assert threads_for(0.1, 2) == 2 and threads_for(0.5, 2) == 1  # a core 75% free still counts as idle
    assert threads_for(0.0, 16) == 16


def test_the_probe_answers_a_count_of_this_machine():
    n = idle_core_threads(0.05)
    assert n is None or 1 <= n <= torch.get_num_threads() * 64
