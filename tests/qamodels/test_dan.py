"""The DAN's TF-IDF wide path (wide=2): scikit-learn's idf, the baseline's normalisation,
padding that changes nothing, the table of the pairs seen, and the trainer fitting it from
the training split alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.feature_extraction.text import TfidfVectorizer

from qamodels.wide import PAIR_PRIME, Wide
from tests.qamodels.test_masking import LENGTHS, VOCAB, padded


def documents(rows: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(2, VOCAB, (rows, width))
    mask = np.arange(width)[None, :] < rng.integers(1, width + 1, rows)[:, None]
    return ids, mask


def test_the_idf_of_every_word_is_scikit_learns():
    ids, mask = documents(200, 9)
    wide = Wide(VOCAB, 97, 3, idf=True)
    wide.fit(ids, mask)
    texts = [" ".join(f"w{i}" for i in row[keep]) for row, keep in zip(ids, mask, strict=True)]
    vectorizer = TfidfVectorizer(token_pattern=r"\S+", smooth_idf=True).fit(texts)
    expected = {int(word[1:]): idf for word, idf in zip(vectorizer.get_feature_names_out(),
                                                        vectorizer.idf_, strict=True)}  # fmt: skip
    got = wide.word_weight.numpy()
    for word, idf in expected.items():
        assert abs(got[word] - idf) < 1e-5, word
    unseen = sorted(set(range(VOCAB)) - set(expected))
    assert unseen and np.all(got[unseen] == 0)  # outside the vocabulary: dropped, as sklearn does


def test_the_tfidf_path_is_a_linear_model_on_l2_normalised_tfidf_rows():
    ids, mask = documents(50, 6, seed=1)
    wide = Wide(VOCAB, 31, 3, idf=True)
    wide.fit(ids, mask)
    torch.nn.init.normal_(wide.words.weight)
    torch.nn.init.normal_(wide.pairs.weight)
    row, keep = ids[0], mask[0]
    features = np.zeros(VOCAB + 31)
    for position in np.flatnonzero(keep):
        features[row[position]] += wide.word_weight[row[position]].item()
        if position + 1 < len(row) and keep[position + 1]:
            bucket = (row[position] * PAIR_PRIME + row[position + 1]) % 31
            features[VOCAB + bucket] += wide.pair_weight[bucket].item()
    pair_weights = wide.pairs.weight[wide.pair_row]  # each bucket's row of the fitted table
    weights = torch.cat([wide.words.weight, pair_weights]).detach().numpy()
    expected = features @ weights / np.linalg.norm(features)
    sparse = wide.features(ids[:1], mask[:1]).toarray()[0]  # what wide_first's SVM fits on
    assert np.allclose(sparse @ torch.cat([wide.words.weight, wide.pairs.weight]).detach().numpy(),
                       expected, atol=1e-5)  # fmt: skip
    with torch.no_grad():
        got = wide(torch.from_numpy(ids[:1]), torch.from_numpy(mask[:1, :, None]).float())
    assert np.allclose(got.numpy()[0], expected, atol=1e-5)


def test_padding_changes_nothing_on_the_tfidf_path():
    from qamodels.embedding import make_embedding
    from qamodels.registry import build_model

    torch.manual_seed(0)
    model = build_model("dan", make_embedding(VOCAB, 16, "random"), 4, {"wide": 2, "ngrams": 2})
    ids, mask = documents(100, 8)
    model.fit_statistics(ids, mask)
    torch.nn.init.normal_(model.wide.words.weight)
    torch.nn.init.normal_(model.wide.pairs.weight)
    model.eval()
    gen = torch.Generator().manual_seed(2)
    tokens = [torch.randint(2, VOCAB, (n,), generator=gen) for n in LENGTHS]
    with torch.no_grad():
        tight = model(*[t.cpu() for t in padded(tokens, max(LENGTHS), gen)])
        loose = model(*[t.cpu() for t in padded(tokens, max(LENGTHS) + 5, gen)])
    torch.testing.assert_close(loose, tight, atol=1e-5, rtol=1e-5)
    seen = model.wide.word_weight[model.wide.word_weight > 0]
    assert seen.min() >= 1 and seen.max() > 1


def words_only(wide: Wide, first: int, second: int) -> torch.Tensor:
    """The wide path's logits of the two words `first`, `second` without their pair."""
    weights = wide.word_weight[[first, second]]
    both = wide.words.weight[first] * weights[0] + wide.words.weight[second] * weights[1]
    return (both / weights.norm()).detach()


@pytest.mark.parametrize("idf", [False, True])
def test_the_pair_table_holds_the_pairs_of_the_training_split_and_no_other(idf):
    """One row per pair bucket the split has (row 0 for the rest, never trained); a pair
    the split never had adds nothing, as a word outside TfidfVectorizer's vocabulary."""
    ids, mask = documents(40, 5, seed=3)
    wide = Wide(VOCAB, 1009, 3, idf=idf)
    wide.fit(ids, mask)
    pairs = {int(a * PAIR_PRIME + b) % 1009 for row, keep in zip(ids, mask, strict=True)
             for a, b, k in zip(row, row[1:], keep[1:], strict=False) if k}  # fmt: skip
    assert wide.pairs.num_embeddings == len(pairs) + 1
    assert set(torch.nonzero(wide.pair_row).squeeze(1).tolist()) == pairs
    torch.nn.init.normal_(wide.words.weight)
    torch.nn.init.normal_(wide.pairs.weight)
    first = int(ids[0, 0])
    seen = torch.nonzero(wide.word_weight).squeeze(1).tolist()
    second = next(w for w in seen if (first * PAIR_PRIME + w) % 1009 not in pairs)
    with torch.no_grad():
        unknown = wide(torch.tensor([[first, second]]), torch.ones(1, 2, 1))[0]
        known = wide(torch.from_numpy(ids[:1, :2]), torch.ones(1, 2, 1))[0]
    torch.testing.assert_close(unknown, words_only(wide, first, second))
    assert not torch.allclose(known, words_only(wide, first, int(ids[0, 1])))


def test_the_trainer_fits_the_idf_on_the_training_split_and_saves_it(prepared_sample, tmp_path):
    from qamodels.checkpoint import load_model
    from qamodels.config import TrainConfig
    from qamodels.trainer import Trainer, subset

    config = TrainConfig(arch="dan", epochs=1, max_train_rows=500, progress=False,
                         embedding="random", embedding_dim=16)  # fmt: skip
    trainer = Trainer(config, prepared_sample, {"wide": 2, "hidden": 16})
    train = subset(prepared_sample.train, 500, config.seed)
    reference = Wide(len(prepared_sample.vocab), trainer.model.wide.buckets, 2, idf=True)
    reference.fit(train.ids, train.mask)
    assert torch.equal(trainer.model.wide.word_weight.cpu(), reference.word_weight)
    assert trainer.model.wide.pairs.num_embeddings == reference.pairs.num_embeddings
    result = trainer.fit()
    trainer.save_run(tmp_path / "run", result)
    model, _ = load_model(tmp_path / "run", "cpu")
    assert torch.equal(model.wide.word_weight, reference.word_weight)  # predict weighs as training
    assert torch.equal(model.wide.pair_row, reference.pair_row)  # and finds each pair's row


def test_wide_first_starts_the_epochs_from_the_baselines_linear_model(prepared_sample):
    """wide_first=1: before the first epoch the wide path is the baseline's linear model
    (LinearSVC on the same features, the C of the best valid accuracy); the MLP's output is
    zero, so the model predicts as that SVM does."""
    from sklearn.svm import LinearSVC

    from qamodels.config import TrainConfig
    from qamodels.linear import SVC_C
    from qamodels.trainer import Trainer, subset

    config = TrainConfig(arch="dan", epochs=1, max_train_rows=800, progress=False,
                         embedding="random", embedding_dim=16, lr=0.01)  # fmt: skip
    trainer = Trainer(config, prepared_sample, {"wide": 2, "wide_first": 1, "hidden": 16})
    model = trainer.model.eval()
    split, rows = trainer.valid_split, torch.arange(64)
    batch = split.batch(rows, split.width(rows, False))
    with torch.no_grad():
        whole = model(batch.ids, batch.mask)
        linear = model.wide(batch.ids, batch.mask.unsqueeze(-1).float())
    torch.testing.assert_close(whole, linear + model.head.net[-1].bias)  # the MLP adds nothing
    train, valid = subset(prepared_sample.train, 800, config.seed), prepared_sample.valid
    x_train, x_valid = (model.wide.features(s.ids, s.mask) for s in (train, valid))
    svm = max((LinearSVC(C=c, random_state=0).fit(x_train, train.label) for c in SVC_C),
              key=lambda m: (m.predict(x_valid) == valid.label).mean())  # fmt: skip
    metrics, _ = trainer.evaluate()
    assert metrics["valid_accuracy"] == (svm.predict(x_valid) == valid.label).mean()
    assert metrics["valid_accuracy"] > 2.0 / len(prepared_sample.labels)  # far above chance
    result = trainer.fit()  # then the epochs train the whole model
    assert result.history and model.head.net[-1].weight.abs().sum() > 0


def test_a_model_saved_before_the_fitted_pair_table_still_loads():
    """Exports of earlier versions: idf buffers named word_idf/pair_idf, a table row per
    bucket, no pair_row; they load and score as they did."""
    ids, mask = documents(30, 6, seed=4)
    saved = Wide(VOCAB, 53, 3, idf=True)
    torch.nn.init.normal_(saved.words.weight)
    torch.nn.init.normal_(saved.pairs.weight)
    saved.word_weight.uniform_(1, 3)
    saved.pair_weight.uniform_(1, 3)
    state = saved.state_dict()
    old = {"words.weight": state["words.weight"], "pairs.weight": state["pairs.weight"],
           "word_idf": state["word_weight"], "pair_idf": state["pair_weight"]}  # fmt: skip
    loaded = Wide(VOCAB, 53, 3, idf=True)
    loaded.fit(ids, mask)  # a fitted table of another shape: the saved one replaces it
    loaded.load_state_dict(old)
    batch = torch.from_numpy(ids), torch.from_numpy(mask[..., None]).float()
    with torch.no_grad():
        torch.testing.assert_close(loaded(*batch), saved(*batch))


@pytest.mark.parametrize("classes", [2, 3])
def test_the_wide_paths_linear_fit_predicts_as_the_svm_on_its_features(classes):
    """Two classes give LinearSVC one margin: the path's logits are (0, margin), so its
    predictions are the SVM's there too; a class train lacks keeps zero weights."""
    from sklearn.svm import LinearSVC

    from data_prep.store import Split
    from qamodels.linear import SVC_C

    ids, mask = documents(300, 7, seed=5)
    label = (ids[:, 0] % classes).astype(np.int64)  # learnable from the first word
    split = Split(ids, mask.astype(np.uint8), mask.sum(1), label)
    train, valid = (Split(*(a[s] for a in (ids, mask, mask.sum(1), label)))
                    for s in (slice(0, 200), slice(200, 300)))  # fmt: skip
    wide = Wide(VOCAB, 211, classes + 1, idf=True)  # one class more than the labels hold
    wide.fit(train.ids, train.mask)
    bias = wide.fit_linear(train, valid)
    with torch.no_grad():
        logits = wide(torch.from_numpy(split.ids), torch.from_numpy(mask[..., None]).float())
    logits = logits.numpy() + bias
    x_train, x_valid = (wide.features(s.ids, s.mask) for s in (train, valid))
    svm = max((LinearSVC(C=c, random_state=0).fit(x_train, train.label) for c in SVC_C),
              key=lambda m: (m.predict(x_valid) == valid.label).mean())  # fmt: skip
    assert bias[classes] == 0 and np.all(logits[:, classes] == 0)  # never seen: no weights
    predicted = svm.predict(wide.features(split.ids, split.mask))
    assert np.array_equal(logits[:, :classes].argmax(1), predicted)
