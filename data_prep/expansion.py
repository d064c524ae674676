"""Step 4b: words train never saw, encoded as the train word nearest in pretrained vectors.

A vocabulary built from train leaves every other word UNK: on AG News two thirds of the test
items hold one (a new name, place or company), and neither the networks nor TF-IDF can read
it. With `expand_vocab=glove-6b-50d` (the default; or a .vec/.txt file, as vectors= takes),
every token outside the vocabulary that has a pretrained vector is encoded as the vocabulary
word whose vector is nearest to it (cosine): vocabulary expansion (Kiros et al. 2015, who
mapped with a linear regression; here the nearest neighbour). Valid, test, the unlabeled text
and new questions (search.predict) are encoded so; the models train as before. A word's
substitute depends on that word, the vocabulary and the vectors only, never on a label or on
another row, so held-out scores stay honest. Measured: BENCHMARKS.md, "Words train never saw".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from data_prep.embeddings import read_vectors

# Unknown words are compared with the vocabulary a block at a time: a block's similarities
# stay near this many floats (256 MB) whatever the vocabulary's size.
BLOCK_FLOATS = 1 << 26


def _unit(rows: list[np.ndarray]) -> np.ndarray:
    matrix = np.stack(rows).astype(np.float32)
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-9)


def nearest_known(words: Iterable[str], vocab: Sequence[str], vectors: str) -> dict[str, str]:
    """Each of `words` outside `vocab` that `vectors` has -> the vocabulary word (PAD and UNK
    aside) of the most similar vector; words without a vector are left out (they stay UNK).
    No `vectors`: nothing is substituted."""
    known = set(vocab)
    unknown = sorted({w for w in words if w not in known})
    if not vectors or not unknown:
        return {}
    index = {w: i for i, w in enumerate(vocab) if i >= 2}
    index.update({w: len(vocab) + j for j, w in enumerate(unknown)})
    found, _ = read_vectors(vectors, index)
    known_ids = sorted(i for i in found if i < len(vocab))
    new_ids = sorted(i for i in found if i >= len(vocab))
    if not known_ids or not new_ids:
        return {}
    targets = _unit([found[i] for i in known_ids])
    substitutes = {}
    rows = max(1, BLOCK_FLOATS // len(known_ids))
    for start in range(0, len(new_ids), rows):
        block = new_ids[start : start + rows]
        nearest = (_unit([found[i] for i in block]) @ targets.T).argmax(1)
        for i, row in zip(block, nearest, strict=True):
            substitutes[unknown[i - len(vocab)]] = vocab[known_ids[row]]
    return substitutes


def substitute(
    token_lists: Sequence[Sequence[str]], substitutes: dict[str, str]
) -> Sequence[Sequence[str]]:
    """The token lists with each word of `substitutes` replaced by its substitute."""
    if not substitutes:
        return token_lists
    return [[substitutes.get(t, t) for t in tokens] for tokens in token_lists]


def expanded(
    token_lists: Sequence[Sequence[str]], vocab: Sequence[str], vectors: str
) -> Sequence[Sequence[str]]:
    """New text's token lists with their unknown words substituted (nearest_known)."""
    words = (t for tokens in token_lists for t in tokens)
    return substitute(token_lists, nearest_known(words, vocab, vectors))
