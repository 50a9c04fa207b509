"""Text metrics for decoders: token F1, exact match, BLEU (sacrebleu) and round-trip cosine.

Text comparisons are case-insensitive and work on word/punctuation tokens, because the MiniLM WordPiece
vocabulary is uncased and its detokenizer re-spaces punctuation ("it's" -> "it ' s"); neither is an error
of the decoder.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

_TOKEN = re.compile(r"\w+|[^\w\s]")


# lower-cased word and punctuation tokens: the unit of token F1 and exact match
def words(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def token_f1(hypothesis: str, reference: str) -> float:
    """Bag-of-tokens F1 (SQuAD style); 1.0 when both are empty."""
    h, r = words(hypothesis), words(reference)
    if not h and not r:
        return 1.0
    common = sum((Counter(h) & Counter(r)).values())
    if common == 0:
        return 0.0
    p, rec = common / len(h), common / len(r)
    return 2 * p * rec / (p + rec)


def exact_match(hypothesis: str, reference: str) -> float:
    return float(words(hypothesis) == words(reference))


def bleu(hypotheses: list[str], references: list[str]) -> float:
    """Corpus BLEU (0-100) on the normalised token sequences."""
    from nextvec.extras import require

    sacrebleu = require("sacrebleu", "decoder-eval", "BLEU")

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses vs {len(references)} references")
    if not hypotheses:
        return 0.0
    hyp = [" ".join(words(t)) for t in hypotheses]
    ref = [" ".join(words(t)) for t in references]
    return float(sacrebleu.corpus_bleu(hyp, [ref], tokenize="none", force=True).score)


def text_metrics(hypotheses: list[str], references: list[str]) -> dict:
    """token_f1, exact_match (means over pairs) and corpus bleu."""
    n = len(references)
    return {
        "token_f1": float(np.mean([token_f1(h, r) for h, r in zip(hypotheses, references)])) if n else 0.0,
        "exact_match": float(np.mean([exact_match(h, r) for h, r in zip(hypotheses, references)])) if n else 0.0,
        "bleu": bleu(hypotheses, references),
    }
