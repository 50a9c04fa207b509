"""A full disk (ENOSPC) or a read-only folder during ingest: a clear error, a store that is either intact or
clearly refused as incomplete, and a rerun that finishes to the same store as an uninterrupted ingest."""

import errno
import os

import pytest

from attacks import (count_writes, failing_disk_trial, ingest_inprocess, make_corpus, read_only_trial,
                     real_full_disk_trial)


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    root = tmp_path_factory.mktemp("disk")
    corpus = make_corpus(root / "corpus.jsonl", n_docs=150)
    ingest_inprocess(corpus, root / "ref")
    return root, corpus, root / "ref", count_writes(corpus, root / "count")


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EROFS])
def test_every_write_failing_gives_a_clear_error_and_a_resumable_store(ref, err):
    root, corpus, reference, n_writes = ref
    assert n_writes > 10  # shards (2 files + manifest each) and the finalize files
    # the first write, one in the middle of the shards, and every write of finalize (the last 9)
    for k in sorted({1, 2, n_writes // 2, *range(n_writes - 8, n_writes + 1)}):
        r = failing_disk_trial(corpus, reference, root / f"{errno.errorcode[err]}{k}", k, err)
        assert r["clear"], r
        assert "rerun" in r["error"] or "resumes" in r["error"], r
        assert r["state"] == "refused" and ("incomplete" in r["state_msg"] or "no manifest" in r["state_msg"]), r
        assert r["rerun_diffs"] == [], r


def _can_mount() -> bool:
    return os.geteuid() == 0


@pytest.mark.skipif(not _can_mount(), reason="a real full disk needs a tmpfs mount (root)")
def test_real_full_tmpfs(ref, tmp_path):
    root, corpus, reference, _ = ref
    store_k = sum(p.stat().st_size for p in reference.rglob("*") if p.is_file()) // 1024
    r = real_full_disk_trial(corpus, reference, tmp_path / "mnt", size_k=store_k // 2)  # the store does not fit
    if r is None:
        pytest.skip("mount is not permitted here (no CAP_SYS_ADMIN); the ENOSPC case is covered by the test above")
    assert r["clear"], r
    assert r["info_ok"] and "incomplete" in r["info"], r
    assert r["rerun_diffs"] == [], r


def test_read_only_folder(ref, tmp_path):
    """As root chmod does not stop writes, so this needs a read-only bind mount (EROFS via monkeypatching is
    covered by the test above)."""
    root, corpus, reference, _ = ref
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        from attacks import ingest_args, nextvec

        r = nextvec(*ingest_args(corpus, ro / "new"))
        assert r.returncode == 2 and "Permission denied" in r.stderr and "Traceback" not in r.stderr
        return
    r = read_only_trial(corpus, reference, tmp_path)
    if r is None:
        pytest.skip("running as root without mount permission: chmod cannot make a folder read-only for root")
    assert r["clear"], r
    assert r["info_ok"] and r["diffs"] == [], r
