"""Crash consistency: SIGKILL real `nextvec ingest` / `nextvec train` subprocesses at random moments.

bench/reliability.py runs 20 ingest kills and 10 training kills; here a few, to fit CI.
"""

import random

import pytest

from attacks import (crash_ingest_trial, crash_train_trial, info_is_clear, ingest_args, make_corpus, nextvec,
                     timed_run, train_args)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted ingest and an uninterrupted training run, and how long their work takes."""
    root = tmp_path_factory.mktemp("crash")
    corpus = make_corpus(root / "corpus.jsonl", n_docs=300)
    ref = root / "ref_store"
    ingest_window = timed_run(ingest_args(corpus, ref), lambda: ref.exists())
    run = root / "ref_run"
    train_window = timed_run(train_args(ref, run), lambda: (run / "metrics.jsonl").exists())
    return root, corpus, ref, ingest_window, run, train_window


@pytest.mark.slow
def test_killed_ingest_reruns_to_the_same_store(reference):
    root, corpus, ref, window, _, _ = reference
    rng = random.Random(1)
    results = [crash_ingest_trial(corpus, ref, root / f"kill{i}", window * 1.1, rng, check_info_cli=(i == 0))
               for i in range(2)]
    for r in results:
        assert r["diffs"] == [], r
        assert r["info_ok"], r
    assert any(r["killed"] for r in results), "no run was killed before it finished"


def test_info_refuses_a_half_written_store_without_traceback(reference):
    root, corpus, ref, _, _, _ = reference
    from attacks import run_and_kill, store_differences
    from nextvec.store.format import read_manifest

    out = root / "half"

    # Kill as soon as the first shard is listed in the manifest: the store is certainly half-written.
    def first_shard_listed():
        try:
            m = read_manifest(out)
        except Exception:
            return False
        return bool(m and m["shards"])

    assert run_and_kill(ingest_args(corpus, out, shard_chunks=10), first_shard_listed, 0.0)
    ok, msg = info_is_clear(out)
    assert ok and "incomplete" in msg and "rerun the same ingest" in msg, msg
    r = nextvec(*ingest_args(corpus, out, shard_chunks=10))
    assert r.returncode == 0 and "resuming" in r.stderr, r.stderr[-500:]
    assert store_differences(ref, out) == []


@pytest.mark.slow
def test_killed_training_resumes_with_identical_losses(reference):
    root, _, ref, _, run, window = reference
    rng = random.Random(3)
    # kills drawn from the first 35% of the run, so 50 steps follow the checkpoint (100 steps, one every 4)
    results = [crash_train_trial(ref, run, root / f"run{i}", window * 0.35, rng) for i in range(1)]
    for r in results:
        assert r["mismatch"] == [] and r["final_equal"], r
        assert r["compared"] == 50 or r["resumed_from"] is None or r["resumed_from"] > 50, r
