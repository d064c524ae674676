"""Step 4: tokenize with nltk's wordpunct_tokenize, build the vocabulary, encode to ids.

PAD = 0 and UNK = 1. The vocabulary comes from train (optionally train + unlabeled), keeps
tokens seen at least `min_freq` times, at most `max_size` of them. `max_length` is fixed or the
`length_percentile` of train lengths; longer questions are truncated.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from data_prep.expansion import expanded

PAD, UNK = 0, 1
SPECIALS = ("<pad>", "<unk>")


def words(text: str) -> list[str]:
    """nltk's wordpunct_tokenize, the project's one tokenizer."""
    return _wordpunct()(text)


@functools.cache
def _wordpunct():
    # Imported on first use: importing nltk takes ~1.5 s (it loads scipy.stats and regex),
    # which every trial's worker would pay without ever tokenizing (trials read ids).
    from nltk.tokenize import wordpunct_tokenize

    return wordpunct_tokenize


def tokenize_all(texts: Iterable[str], desc: str = "tokenize") -> list[list[str]]:
    bar = tqdm(texts, desc=desc, unit="text", mininterval=1, disable=None)  # a terminal only
    return [words(t) for t in bar]


def build_vocab(token_lists: Iterable[Sequence[str]], min_freq: int, max_size: int) -> list[str]:
    counts = Counter(tok for tokens in token_lists for tok in tokens)
    # Ties broken by the token itself, so the vocabulary is deterministic.
    kept = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
    return list(SPECIALS) + kept[:max_size]


@dataclass(frozen=True)
class Encoded:
    ids: np.ndarray  # (n, max_length) int32, PAD after the tokens
    length: np.ndarray  # (n,) int32, tokens kept (>= 1: an empty text becomes one UNK)
    unk_tokens: int
    total_tokens: int

    @property
    def mask(self) -> np.ndarray:
        return (np.arange(self.ids.shape[1]) < self.length[:, None]).astype(np.uint8)


def encode(token_lists: Sequence[Sequence[str]], vocab: Sequence[str], max_length: int) -> Encoded:
    """Ids of every token list, truncated to max_length and padded with PAD, no per-row loop
    over positions: all tokens are looked up at once and scattered into the matrix."""
    index = {tok: i for i, tok in enumerate(vocab)}
    full = np.fromiter((len(t) for t in token_lists), dtype=np.int64, count=len(token_lists))
    flat = np.fromiter(
        (index.get(tok, UNK) for tokens in token_lists for tok in tokens),
        dtype=np.int32,
        count=int(full.sum()),
    )
    length = np.minimum(full, max_length)
    row = np.repeat(np.arange(len(full)), full)
    pos = np.arange(len(flat)) - np.repeat(np.cumsum(full) - full, full)
    keep = pos < max_length
    ids = np.zeros((len(full), max_length), dtype=np.int32)
    ids[row[keep], pos[keep]] = flat[keep]
    empty = length == 0
    ids[empty, 0] = UNK
    length[empty] = 1
    return Encoded(ids, length.astype(np.int32), int((flat == UNK).sum()), len(flat))


def encode_texts(
    texts: Sequence[str], vocab: Sequence[str], max_length: int, expand_vocab: str = ""
) -> Encoded:
    """New text as the prepared splits hold it: lowercased (as parse and sources do),
    tokenized, words outside the vocabulary read as their nearest word in `expand_vocab`'s
    vectors (data_prep/expansion.py) and encoded with the dataset's vocabulary."""
    tokens = tokenize_all([t.lower() for t in texts], desc="encode")
    return encode(expanded(tokens, vocab, expand_vocab), vocab, max_length)


def choose_max_length(lengths: np.ndarray, max_length: int, percentile: float) -> int:
    if max_length > 0:
        return max_length
    return max(1, int(np.ceil(np.percentile(lengths, percentile))))


def length_stats(lengths: np.ndarray, max_length: int) -> dict[str, float]:
    stats = {f"p{p}": float(np.percentile(lengths, p)) for p in (50, 90, 95, 99)}
    return {
        "min": int(lengths.min()),
        "mean": float(lengths.mean()),
        **stats,
        "max": int(lengths.max()),
        "max_length": max_length,
        "truncated_share": float((lengths > max_length).mean()),
    }
