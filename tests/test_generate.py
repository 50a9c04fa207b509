import numpy as np
import pytest
import torch

from storekit import build_store
from fake_encoder import HashEncoder, OneHotEncoder
from nextvec.errors import FingerprintMismatch, NextvecError
from nextvec.generate import GenerateOptions, checked_options, generate, split_prompt
from nextvec.models.base import Prediction
from nextvec.session import Session


def session(model, store, enc, context_length=None, decoder=None):
    """The model as an opened run (the encoder checked against the store), with an optional decoder."""
    from nextvec.decode.spec import attach_decoder

    s = Session.assemble(model, {"context_length": context_length} if context_length else None, store, encoder=enc)
    if decoder is not None:
        attach_decoder(s, decoder)
    return s

D = 8


class Roll(torch.nn.Module):
    """Predicts the last context vector shifted by one dimension: e_i -> e_{i+1}. Records context lengths."""

    name = "roll"

    def __init__(self):
        super().__init__()
        self.seen: list[int] = []

    def predict(self, context, mask):
        self.seen.append(int(mask.sum()))
        y = torch.roll(context[:, -1], 1, dims=-1)
        return Prediction(y, torch.nn.functional.normalize(y, dim=-1))


class Constant(torch.nn.Module):
    """Always the same vector (plus a tiny drift) — a model that has stopped moving."""

    name = "constant"

    def predict(self, context, mask):
        y = torch.zeros(context.shape[0], context.shape[-1])
        y[:, 3] = 1.0
        y[:, 4] = 0.01 * context.shape[1]
        return Prediction(y, torch.nn.functional.normalize(y, dim=-1))


@pytest.fixture
def onehot_store(tmp_path):
    enc = OneHotEncoder(dim=D)
    texts = [[f"Sentence e{i}." for i in range(4)], [f"Sentence e{i}." for i in range(4, 8)]]
    store = build_store(tmp_path / "s", [enc.encode(t) for t in texts], texts=texts, fingerprint=enc.fingerprint())
    return store, enc


def test_rollout_appends_each_prediction(onehot_store):
    store, enc = onehot_store
    model = Roll()
    out = generate(session(model, store, enc), "Sentence e0. Sentence e1.", GenerateOptions(steps=3))
    assert out["prompt_sentences"] == ["Sentence e0.", "Sentence e1."]
    # e1 -> e2 -> e3 -> e4 only if each prediction becomes the next step's last context vector.
    assert out["continuation"] == ["Sentence e2.", "Sentence e3.", "Sentence e4."]
    assert out["text"] == "Sentence e2. Sentence e3. Sentence e4."
    assert out["stop_reason"] == "max_steps" and out["steps_run"] == 3
    assert model.seen == [2, 3, 4]
    assert [s["cos_prev"] for s in out["steps"]] == [None, 0.0, 0.0]
    assert all(s["score"] == pytest.approx(1.0) and s["kept"] for s in out["steps"])


def test_context_length_keeps_only_the_latest_vectors(onehot_store):
    store, enc = onehot_store
    model = Roll()
    generate(session(model, store, enc, context_length=2), "Sentence e0. Sentence e1. Sentence e2.", GenerateOptions(steps=3))
    assert model.seen == [2, 2, 2]


def test_stops_when_the_prediction_stops_moving(onehot_store):
    store, enc = onehot_store
    out = generate(session(Constant(), store, enc), "Sentence e0.", GenerateOptions(steps=5, stop_cos=0.9))
    # step 2 has cosine ~1 with step 1: stop there and drop it as a repeat
    assert out["stop_reason"] == "similar_to_previous" and out["steps_run"] == 2
    assert out["steps"][1]["cos_prev"] > 0.9 and out["steps"][1]["kept"] is False
    assert out["continuation"] == ["Sentence e3."]


def test_threshold_of_one_never_stops_early(onehot_store):
    store, enc = onehot_store
    out = generate(session(Constant(), store, enc), "Sentence e0.", GenerateOptions(steps=4, stop_cos=1.0))
    assert out["stop_reason"] == "max_steps" and out["steps_run"] == 4 and len(out["continuation"]) == 4


def test_candidates_and_custom_decoder(onehot_store):
    store, enc = onehot_store

    class Echo:
        dim = D

        def decode(self, vectors, k=1):
            return [[(f"dim{int(np.argmax(v))}", 0.5)] * k for v in vectors]

    out = generate(session(Roll(), store, enc, decoder=Echo()), "Sentence e5.", GenerateOptions(steps=2, k=2))
    assert out["continuation"] == ["dim6", "dim7"]
    assert len(out["steps"][0]["candidates"]) == 2


def test_refuses_mismatched_encoder_and_empty_prompt(onehot_store):
    store, enc = onehot_store
    with pytest.raises(FingerprintMismatch):
        generate(session(Roll(), store, HashEncoder(dim=D)), "Sentence e0.")
    with pytest.raises(NextvecError, match="empty"):
        generate(session(Roll(), store, enc), "   ")
    with pytest.raises(NextvecError, match="steps"):
        checked_options(GenerateOptions, steps=0)


def test_refuses_a_model_of_another_dimension(onehot_store):
    store, enc = onehot_store

    class Wide(torch.nn.Module):
        name = "wide"

        def predict(self, context, mask):
            y = torch.ones(context.shape[0], D + 1)
            return Prediction(y, y)

    with pytest.raises(NextvecError, match="9-d"):
        generate(session(Wide(), store, enc), "Sentence e0.")


def test_split_prompt_uses_a_real_sentence_splitter():
    assert split_prompt("Dr. Smith went home. It rained!") == ["Dr. Smith went home.", "It rained!"]


def test_encoder_spec_for_rebuilds_the_store_encoder():
    from nextvec.encode import encoder_spec_for

    assert encoder_spec_for({"name": "sentence-transformers/all-MiniLM-L6-v2"}) == "minilm"
    assert encoder_spec_for({"name": "gtr-t5-vec2text:gtr-t5-base", "normalized": False}) == "gtr"
    assert encoder_spec_for({"name": "gtr-t5-vec2text:mygtr", "normalized": True}) == "gtr-l2:mygtr"
    assert encoder_spec_for({"name": "/models/e5"}) == "st:/models/e5"


def test_default_context_length_comes_from_the_model_config(onehot_store):
    store, enc = onehot_store
    model = Roll()
    model.config = type("C", (), {"context_length": 2})()
    generate(session(model, store, enc), "Sentence e0. Sentence e1. Sentence e2.", GenerateOptions(steps=2))
    assert model.seen == [2, 2]


def test_prompts_are_split_by_the_splitter_the_store_was_made_with():
    from nextvec.generate import store_splitter

    class Recorded:
        manifest = {"params": {"splitter": {"name": "nupunkt", "version": "nupunkt 0.8"}}}

    class Older:  # stores from before the splitter was recorded were split by blingfire
        manifest = {"params": {"max_chars": 400}}

    assert store_splitter(Recorded()) == "nupunkt" and store_splitter(Older()) == "blingfire"
    text = "He was so happy. Mr. Knightley had come to call. It rained."
    assert split_prompt(text, splitter="blingfire+repair") == ["He was so happy.", "Mr. Knightley had come to call.",
                                                              "It rained."]
    assert split_prompt(text, splitter="blingfire") != split_prompt(text, splitter="blingfire+repair")


class Deck(torch.nn.Module):
    """Draws without replacement from e_1..e_7 in a random order (as the successor memory and the kNN sampler
    draw): n draws for one context are n distinct sentences."""

    name = "deck"

    def predict(self, context, mask):
        return Roll().predict(context, mask)

    def sample(self, context, mask, n, generator=None, **options):
        order = torch.rand(context.shape[0], D - 1, generator=generator).argsort(1)[:, :n] + 1  # (B, n)
        return torch.nn.functional.one_hot(order, D).float()


def test_sampled_continuations_open_with_distinct_draws(onehot_store):
    """N continuations draw their first steps together, so a sampler without replacement gives N openings."""
    store, enc = onehot_store
    out = generate(session(Deck(), store, enc), "Sentence e0.", GenerateOptions(steps=3, samples=4, seed=1))
    firsts = [r["steps"][0]["text"] for r in out["rollouts"]]
    assert len(set(firsts)) == 4 and out["text"] == out["rollouts"][0]["text"]
    assert all(len(r["steps"]) == 3 and "retention" in r["steps"][0] for r in out["rollouts"])
    again = generate(session(Deck(), store, enc), "Sentence e0.", GenerateOptions(steps=3, samples=4, seed=1))
    assert [r["text"] for r in again["rollouts"]] == [r["text"] for r in out["rollouts"]]  # the seed repeats them


def test_default_generation_is_a_10_step_sampled_continuation():
    o = GenerateOptions()
    assert (o.steps, o.samples) == (10, 1)


class Fixed:
    """A decoder whose candidates for every vector are the same ranked list."""

    dim = D
    spec = "fixed"

    def decode(self, vectors, k=1):
        ranked = [("Sentence e0.", 0.9), ("hub", 0.8), ("second", 0.7), ("third", 0.6)]
        return [ranked[:k] for _ in vectors]


def test_no_repeat_decoding_skips_what_was_already_said(onehot_store):
    store, enc = onehot_store
    o = GenerateOptions(steps=4, samples=0, stop_cos=1.0)
    out = generate(session(Roll(), store, enc, decoder=Fixed()), "Sentence e0.", o)
    # the prompt's own sentence is never repeated; each step takes the next unsaid candidate, then the nearest
    assert out["continuation"] == ["hub", "second", "third", "Sentence e0."]
    assert [s["score"] for s in out["steps"]] == [0.8, 0.7, 0.6, 0.9] and len(out["steps"][0]["candidates"]) == 1
    plain = generate(session(Roll(), store, enc, decoder=Fixed()), "Sentence e0.", o.model_copy(update={"no_repeat": False}))
    assert plain["continuation"] == ["Sentence e0."] * 4
