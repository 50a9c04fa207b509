"""Round-trip cosine can be gamed: a gradient-guided token search against the encoder raises it far more
than it raises token F1 (CPU).

    python bench/decoder_search.py --decoder DECODER [--store /work/stores/wiki] [--split val] [--n 40] [--rounds 10]

Starts from the learned decoder's greedy text for `n` held-out chunks, then runs `rounds` rounds of a
HotFlip / GCG-style search: one backward pass through the encoder ranks, per position, substitutions and
insertions of whole-word tokens (tokens of the decoder's training texts, no '##' pieces) by the first-order
change of cos(encode(text), target); `candidates` edits (drawn from the top-`topk` per position, plus
deletions) are re-encoded exactly and the best is kept if it raises the cosine. Prints, per round, the mean
round-trip cosine (exact re-encoding) beside token F1. nextvec does not ship this search as a decoder.
"""

from __future__ import annotations

import argparse
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--decoder", required=True)
    ap.add_argument("--store", default="/work/stores/wiki")
    ap.add_argument("--split", default="val")
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--candidates", type=int, default=32)
    ap.add_argument("--topk", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)

    import numpy as np
    import torch

    from nextvec.decode.learned import LearnedDecoder
    from nextvec.decode.metrics import token_f1
    from nextvec.encode import load_encoder
    from nextvec.store import open_store

    torch.set_num_threads(a.threads)
    store = open_store(a.store)
    ids = store.split_chunks(a.split)
    ids = np.sort(np.random.default_rng(a.seed).choice(ids, min(a.n, len(ids)), replace=False))
    target, refs = store.get(ids), store.texts(ids)
    enc = load_encoder("minilm")
    dec = LearnedDecoder.load(a.decoder, encoder=enc)
    dec.check_store(store)
    tok = dec.tokenizer
    torch.set_num_threads(a.threads)
    hyps = dec.decode_steps(target, 0)[0]["texts"]

    bert = enc.model[0].auto_model.eval()  # all-MiniLM-L6-v2: BertModel -> mean pooling -> L2 normalisation
    emb = bert.embeddings.word_embeddings.weight.detach()
    allowed = torch.tensor(sorted(i for i in dec.model.out_vocab.tolist()
                                  if not tok.convert_ids_to_tokens(i).startswith("##") and i not in tok.all_special_ids))
    cls_, sep = tok.cls_token_id, tok.sep_token_id

    def batch(rows):
        L = max(len(r) for r in rows) + 2
        x = torch.zeros(len(rows), L, dtype=torch.long)
        m = torch.zeros(len(rows), L, dtype=torch.long)
        for i, r in enumerate(rows):
            x[i, : len(r) + 2] = torch.tensor([cls_, *r, sep])
            m[i, : len(r) + 2] = 1
        return x, m

    def pooled(h, m):
        return torch.nn.functional.normalize((h * m[..., None]).sum(1) / m.sum(1, keepdim=True), dim=-1)

    def cosines(rows, tg):
        out = []
        with torch.inference_mode():
            for s in range(0, len(rows), 256):
                x, m = batch(rows[s : s + 256])
                out.append((pooled(bert(input_ids=x, attention_mask=m).last_hidden_state, m) * tg[s : s + 256]).sum(1))
        return torch.cat(out)

    tg = torch.from_numpy(target)
    rows = [tok(h, add_special_tokens=False)["input_ids"] for h in hyps]
    cur = cosines(rows, tg)
    rng = np.random.default_rng(a.seed + 1)

    def report(label, secs=0.0):
        texts = [tok.decode(r) for r in rows]
        rt = float(np.mean(np.sum(enc.encode(texts) * target, axis=1)))
        f1 = float(np.mean([token_f1(h, r) for h, r in zip(texts, refs)]))
        print(f"| {label} | {rt:.3f} | {f1:.3f} | {secs:.0f} |", flush=True)
        return texts

    print(f"decoder {a.decoder}; {len(ids)} {a.split} chunks of {a.store}; {a.candidates} candidates per round\n")
    print("| text | round-trip cos | token F1 | s |\n|---|---|---|---|")
    report("decoder, greedy")
    for rd in range(a.rounds):
        t0 = time.time()
        x, m = batch(rows)
        e = bert.embeddings.word_embeddings(x).detach().requires_grad_()
        (pooled(bert(inputs_embeds=e, attention_mask=m).last_hidden_state, m) * tg).sum().backward()
        g = e.grad
        cands, owner = [], []
        for b, r in enumerate(rows):
            n = len(r)
            ins = (g[b, 1 : n + 2] @ emb[allowed].T).topk(a.topk, dim=1).indices  # token before position j
            sub = None
            if n:
                gb = g[b, 1 : n + 1]
                sub = (gb @ emb[allowed].T - (gb * emb[torch.tensor(r)]).sum(1, keepdim=True)).topk(a.topk, dim=1).indices
            seen = set()
            for _ in range(20 * a.candidates):
                if len(seen) >= a.candidates:
                    break
                u = rng.random()
                if n and u < 0.5:
                    i = int(rng.integers(n))
                    c = r[:i] + [int(allowed[sub[i, rng.integers(a.topk)]])] + r[i + 1 :]
                elif u < 0.85 or n <= 1:
                    j = int(rng.integers(n + 1))
                    c = r[:j] + [int(allowed[ins[j, rng.integers(a.topk)]])] + r[j:]
                else:
                    i = int(rng.integers(n))
                    c = r[:i] + r[i + 1 :]
                seen.add(tuple(c))
            cands += [list(c) for c in seen]
            owner += [b] * len(seen)
        owner = np.array(owner)
        sc = cosines(cands, tg[owner])
        for b in range(len(rows)):
            idx = np.where(owner == b)[0]
            j = idx[int(sc[idx].argmax())]
            if sc[j] > cur[b]:
                rows[b], cur[b] = cands[j], sc[j]
        texts = report(f"search, round {rd + 1}", time.time() - t0)
    print("\nexamples (reference / after the search)")
    for r, t in list(zip(refs, texts))[:5]:
        print(f"  ref:    {r}\n  search: {t}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
