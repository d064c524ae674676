"""The wide path's character n-grams (wide_chars=1): scikit-learn's char_wb n-grams and idf,
features that are what the forward computes, padding that changes nothing, the SVM start on
them, and a trained model that predicts the same after saving and loading."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.feature_extraction.text import TfidfVectorizer

from data_prep.store import Split
from qamodels.subwords import CharGrams, word_grams
from qamodels.wide import Wide

WORDS = ["<pad>", "<unk>", "charger", "chargers", "iphone", "iphones", "case", "a", "fits",
         "cable", "usb", "usbc", "to", "of", "phone"]  # fmt: skip


def documents(rows: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(2, len(WORDS), (rows, width))
    mask = np.arange(width)[None, :] < rng.integers(1, width + 1, rows)[:, None]
    return ids, mask


def texts(ids: np.ndarray, mask: np.ndarray) -> list[str]:
    return [" ".join(WORDS[i] for i in row[kept]) for row, kept in zip(ids, mask, strict=True)]


def test_the_ngrams_of_a_word_are_char_wbs():
    analyzer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5)).build_analyzer()
    for word in ["a", "ab", "abc", "usb", "chargers", "iphone"]:
        assert sorted(word_grams(word)) == sorted(analyzer(word))


def test_the_idf_of_every_ngram_is_scikit_learns():
    ids, mask = documents(60, 6)
    block = CharGrams(len(WORDS), 3, idf=True)
    block.fit(ids, mask, WORDS)
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), lowercase=False)
    vectorizer.fit(texts(ids, mask))
    table = block.table.numpy()
    for word in WORDS[2:]:
        row = table[WORDS.index(word)]
        for gram, column in zip(word_grams(word), row, strict=False):
            expected = vectorizer.idf_[vectorizer.vocabulary_[gram]]
            assert np.isclose(block.gram_weight[column].item(), expected, atol=1e-5), gram
    assert not block.table[:2].any()  # <pad> and <unk> have no n-grams


def test_the_idf_is_the_same_counted_in_chunks_of_rows(monkeypatch):
    from qamodels import subwords

    ids, mask = documents(60, 6, seed=3)
    whole = CharGrams(len(WORDS), 3, idf=True)
    whole.fit(ids, mask, WORDS)
    monkeypatch.setattr(subwords, "DF_CHUNK", 7)  # 60 rows in 9 chunks, the last one short
    chunked = CharGrams(len(WORDS), 3, idf=True)
    chunked.fit(ids, mask, WORDS)
    torch.testing.assert_close(chunked.gram_weight, whole.gram_weight)


def test_the_features_are_what_the_path_computes_and_padding_changes_nothing():
    ids, mask = documents(40, 5, seed=1)
    wide = Wide(len(WORDS), 0, 3, idf=True, chars=True)
    wide.fit(ids, mask, WORDS)
    for table in (wide.words, wide.pairs, wide.chars.grams):
        torch.nn.init.normal_(table.weight)
    weights = torch.cat([wide.words.weight, wide.pairs.weight, wide.chars.grams.weight])
    expected = wide.features(ids, mask) @ weights.detach().numpy()
    longer = np.concatenate([ids * mask, np.zeros((40, 4), np.int64)], 1)  # more padding
    with torch.no_grad():
        for rows, keep in ((ids * mask, mask), (longer, longer > 0)):
            got = wide(torch.from_numpy(rows), torch.from_numpy(keep[..., None]).float())
            np.testing.assert_allclose(got.numpy(), expected, rtol=1e-4, atol=1e-5)
    without = Wide(len(WORDS), 0, 3, idf=True)
    without.fit(ids, mask)
    assert wide.features(ids, mask).shape[1] > without.features(ids, mask).shape[1]


def test_the_svm_start_uses_the_ngrams_and_predicts_as_the_svm():
    """Labels that only the n-grams tell apart from a word never seen in train: the word
    block alone cannot place it, the n-gram block can."""
    from sklearn.svm import LinearSVC

    from qamodels.linear import SVC_C

    ids, mask = documents(300, 4, seed=2)
    label = np.isin(ids[:, 0], [WORDS.index(w) for w in ("charger", "chargers", "cable")])
    label = label.astype(np.int64)
    train, valid = (Split(*(a[s] for a in (ids, mask, mask.sum(1), label)))
                    for s in (slice(0, 200), slice(200, 300)))  # fmt: skip
    wide = Wide(len(WORDS), 0, 2, idf=True, chars=True)
    wide.fit(train.ids, train.mask, WORDS)
    bias = wide.fit_linear(train, valid)
    x_train, x_valid = (wide.features(s.ids, s.mask) for s in (train, valid))
    svm = max((LinearSVC(C=c, random_state=0).fit(x_train, train.label) for c in SVC_C),
              key=lambda m: (m.predict(x_valid) == valid.label).mean())  # fmt: skip
    with torch.no_grad():
        logits = wide(torch.from_numpy(valid.ids), torch.from_numpy(valid.mask[..., None]).float())
    assert np.array_equal((logits.numpy() + bias).argmax(1), svm.predict(x_valid))
    assert wide.chars.grams.weight.abs().sum() > 0  # the start put weight on the n-grams


def test_a_trained_model_predicts_the_same_after_loading(prepared_sample, tmp_path):
    from qamodels.batches import DeviceSplit
    from qamodels.checkpoint import load_model
    from qamodels.config import TrainConfig
    from qamodels.trainer import Trainer, predict_logits

    config = TrainConfig(arch="dan", epochs=1, max_train_rows=500, progress=False,
                         embedding="random", embedding_dim=16)  # fmt: skip
    params = {"wide": 2, "wide_first": 1, "wide_chars": 1, "hidden": 16}
    trainer = Trainer(config, prepared_sample, params)
    assert trainer.model.wide.chars.grams.num_embeddings > 1000  # the sample's words' n-grams
    result = trainer.fit()
    run_dir = trainer.save_run(tmp_path / "run", result)
    model, _ = load_model(run_dir, "cpu")
    valid = DeviceSplit.from_split(prepared_sample.valid, "cpu")
    torch.testing.assert_close(predict_logits(model, valid),
                               predict_logits(trainer.scored_model.cpu(), valid))  # fmt: skip
