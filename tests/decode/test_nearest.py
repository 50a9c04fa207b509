import numpy as np
import pytest

from storekit import build_store, random_docs
from nextvec.decode.base import round_trip_cosine
from nextvec.decode.nearest import RetrievalDecoder
from nextvec.errors import NextvecError


def test_encoded_chunk_decodes_to_its_own_text(tiny_store):
    dec = RetrievalDecoder(tiny_store)
    ids = [0, 7, len(tiny_store) - 1]
    out = dec.decode(tiny_store.get(ids), k=3)
    assert [c[0][0] for c in out] == tiny_store.texts(ids)
    for cands in out:
        assert cands[0][1] == pytest.approx(1.0, abs=1e-5)
        assert len(cands) == 3 and cands[0][1] >= cands[1][1] >= cands[2][1]


def test_scores_are_cosines_not_raw_inner_products(tmp_path):
    eye = np.eye(8, dtype=np.float32)
    store = build_store(tmp_path / "s", [eye[:4], eye[4:]], texts=[["a0", "a1", "a2", "a3"], ["b4", "b5", "b6", "b7"]])
    q = 5.0 * (0.9 * eye[2] + 0.1 * eye[6])  # a long, unnormalised prediction, like y_dec
    (cands,) = RetrievalDecoder(store).decode(q[None], k=2)
    norm = np.sqrt(0.81 + 0.01)
    assert cands[0] == ("a2", pytest.approx(0.9 / norm, abs=1e-5))
    assert cands[1] == ("b6", pytest.approx(0.1 / norm, abs=1e-5))


def test_split_restricts_the_candidates(tiny_store):
    dec = RetrievalDecoder(tiny_store, split="test")
    test_ids = set(tiny_store.split_chunks("test").tolist())
    train_id = int(tiny_store.split_chunks("train")[0])
    scores, ids = dec.search(tiny_store.get([train_id]), k=5)
    assert train_id not in ids[0] and set(ids[0].tolist()) <= test_ids
    assert len(dec) == len(test_ids)


def test_k_larger_than_store_returns_what_exists(tmp_path):
    store = build_store(tmp_path / "s", random_docs(n_docs=2, min_len=2, max_len=2), fractions=(1.0, 0.0, 0.0))
    v = store.get(np.arange(4))
    (cands,) = RetrievalDecoder(store).decode(v[:1], k=10)
    # all 4 chunks once, best first, each scored by its cosine with chunk 0 (unit rows: the dot product)
    assert sorted(t for t, _ in cands) == sorted(store.texts(range(4)))
    assert cands[0] == (store.texts([0])[0], pytest.approx(1.0, abs=1e-5))
    cos = dict(zip(store.texts(range(4)), v @ v[0]))
    assert [s for _, s in cands] == pytest.approx([cos[t] for t, _ in cands], abs=1e-5)
    assert [s for _, s in cands] == sorted((s for _, s in cands), reverse=True)


def test_approximate_index_kinds_still_find_exact_matches(tiny_store):
    ids = [3, 11]
    for kind in ("hnsw", "ivf"):
        out = RetrievalDecoder(tiny_store, index_kind=kind).decode(tiny_store.get(ids))
        assert [c[0][0] for c in out] == tiny_store.texts(ids)


@pytest.mark.parametrize("bad, msg", [
    (np.zeros((2, 7), np.float32), "shape"),
    (np.full((1, 8), np.nan, np.float32), "NaN"),
    (np.full((1, 8), np.inf, np.float32), "NaN or inf"),
])
def test_refuses_wrong_dimension_and_non_finite(tiny_store, bad, msg):
    with pytest.raises(NextvecError, match=msg):
        RetrievalDecoder(tiny_store).decode(bad)


def test_refuses_k_below_one(tiny_store):
    with pytest.raises(NextvecError, match="k must be"):
        RetrievalDecoder(tiny_store).decode(tiny_store.get([0]), k=0)


def test_round_trip_cosine_is_one_for_exact_texts_and_lower_otherwise(tmp_path):
    from fake_encoder import HashEncoder

    enc = HashEncoder(dim=16)
    texts = [["the cat sat", "on the mat", "dogs bark loudly"], ["rain falls", "birds sing at dawn"]]
    store = build_store(tmp_path / "s", [enc.encode(t) for t in texts], texts=texts, fingerprint=enc.fingerprint())
    v = enc.encode(["the cat sat", "birds sing at dawn"])
    np.testing.assert_allclose(round_trip_cosine(enc, v, ["the cat sat", "birds sing at dawn"]), [1.0, 1.0], atol=1e-5)
    assert round_trip_cosine(enc, v, ["rain falls", "the cat sat"]).max() < 0.9
    texts = [c[0][0] for c in RetrievalDecoder(store).decode(v)]
    assert texts == ["the cat sat", "birds sing at dawn"]
    np.testing.assert_allclose(round_trip_cosine(enc, v, texts), [1.0, 1.0], atol=1e-5)
    with pytest.raises(NextvecError, match="one text per vector"):
        round_trip_cosine(enc, v, ["only one"])


@pytest.mark.slow
def test_real_encoder_sentence_decodes_to_itself(tmp_path):
    from nextvec.encode import load_encoder

    enc = load_encoder("minilm")
    docs = [["The cat sat on the mat.", "It purred quietly.", "Then it slept."],
            ["Stock markets fell sharply today.", "Investors were nervous.", "Bonds rallied."]]
    store = build_store(tmp_path / "s", [enc.encode(d) for d in docs], texts=docs, fingerprint=enc.fingerprint())
    dec = RetrievalDecoder(store)
    out = dec.decode(enc.encode(["Investors were nervous."]), k=2)
    assert out[0][0] == ("Investors were nervous.", pytest.approx(1.0, abs=1e-4))
    v = enc.encode(["It purred quietly."])
    assert round_trip_cosine(enc, v, [dec.decode(v)[0][0][0]])[0] == pytest.approx(1.0, abs=1e-4)
