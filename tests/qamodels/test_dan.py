"""The DAN's TF-IDF wide path (wide=2): scikit-learn's idf, the baseline's normalisation,
padding that changes nothing, the table of the pairs seen, and the trainer fitting it from
the training split alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.feature_extraction.text import TfidfVectorizer

from qamodels.wide import Wide, hashed_pairs
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
    """Exact pairs: each pair of the split a column of its own, as TfidfVectorizer's bigrams."""
    ids, mask = documents(50, 6, seed=1)
    wide = Wide(VOCAB, 0, 3, idf=True)
    wide.fit(ids, mask)
    torch.nn.init.normal_(wide.words.weight)
    torch.nn.init.normal_(wide.pairs.weight)
    pairs = {(int(a), int(b)) for row, keep in zip(ids, mask, strict=True)
             for a, b, k in zip(row, row[1:], keep[1:], strict=False) if k}  # fmt: skip
    assert wide.pairs.num_embeddings == len(pairs) + 1  # and row 0 for any other pair
    row, keep = ids[0], mask[0]
    features, pair_vectors = np.zeros(VOCAB), {}
    for position in np.flatnonzero(keep):
        features[row[position]] += wide.word_weight[row[position]].item()
        if position + 1 < len(row) and keep[position + 1]:
            key = int(row[position]) * VOCAB + int(row[position + 1])
            found = int(torch.searchsorted(wide.pair_keys, torch.tensor(key))) + 1
            weight = wide.pair_weight[found].item()
            total, _ = pair_vectors.get(key, (0.0, found))
            pair_vectors[key] = (total + weight, found)
    values = list(features) + [weight for weight, _ in pair_vectors.values()]
    logits = features @ wide.words.weight.detach().numpy() + sum(
        weight * wide.pairs.weight[found].detach().numpy()
        for weight, found in pair_vectors.values()
    )
    expected = logits / np.linalg.norm(values)
    sparse = wide.features(ids[:1], mask[:1]).toarray()[0]  # what wide_first's SVM fits on
    assert np.allclose(sparse @ torch.cat([wide.words.weight, wide.pairs.weight]).detach().numpy(),
                       expected, atol=1e-5)  # fmt: skip
    with torch.no_grad():
        got = wide(torch.from_numpy(ids[:1]), torch.from_numpy(mask[:1, :, None]).float())
    assert np.allclose(got.numpy()[0], expected, atol=1e-5)


def test_the_pairs_idf_is_scikit_learns_bigram_idf():
    ids, mask = documents(200, 9, seed=6)
    wide = Wide(VOCAB, 0, 3, idf=True)
    wide.fit(ids, mask)
    texts = [" ".join(f"w{i}" for i in row[keep]) for row, keep in zip(ids, mask, strict=True)]
    vectorizer = TfidfVectorizer(token_pattern=r"\S+", ngram_range=(2, 2)).fit(texts)
    names = vectorizer.get_feature_names_out()
    keys = [int(a[1:]) * VOCAB + int(b[1:]) for a, b in (name.split() for name in names)]
    rows = wide.pair_rows(np.array(keys))
    assert np.all(rows > 0)  # every bigram sklearn has, the table has
    assert np.allclose(wide.pair_weight.numpy()[rows], vectorizer.idf_, atol=1e-5)
    assert wide.pairs.num_embeddings == len(keys) + 1  # and no other


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
def test_a_pair_the_training_split_never_had_adds_nothing(idf):
    """As a word outside TfidfVectorizer's vocabulary: the two words weigh as without it."""
    ids, mask = documents(40, 5, seed=3)
    wide = Wide(VOCAB, 0, 3, idf=idf)
    wide.fit(ids, mask)
    pairs = {(int(a), int(b)) for row, keep in zip(ids, mask, strict=True)
             for a, b, k in zip(row, row[1:], keep[1:], strict=False) if k}  # fmt: skip
    torch.nn.init.normal_(wide.words.weight)
    torch.nn.init.normal_(wide.pairs.weight)
    first = int(ids[0, 0])
    seen = torch.nonzero(wide.word_weight).squeeze(1).tolist()
    second = next(w for w in seen if (first, w) not in pairs)
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
    reference = Wide(len(prepared_sample.vocab), 0, 2, idf=True)
    reference.fit(train.ids, train.mask)
    assert torch.equal(trainer.model.wide.word_weight.cpu(), reference.word_weight)
    assert trainer.model.wide.pairs.num_embeddings == reference.pairs.num_embeddings
    result = trainer.fit()
    trainer.save_run(tmp_path / "run", result)
    model, _ = load_model(tmp_path / "run", "cpu")
    assert torch.equal(model.wide.word_weight, reference.word_weight)  # predict weighs as training
    assert torch.equal(model.wide.pair_keys, reference.pair_keys)  # and finds each pair's row


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


def hashed_forward(state: dict, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The wide path as versions before exact pairs computed it, from their saved state."""
    word_weight = state.get("word_weight", state.get("word_idf"))
    pair_weight = state.get("pair_weight", state.get("pair_idf"))
    buckets = hashed_pairs(ids, len(pair_weight))
    rows = state["pair_row"][buckets] if "pair_row" in state else buckets
    weight = word_weight[ids].unsqueeze(-1) * mask
    pair = pair_weight[buckets].unsqueeze(-1) * mask[:, :-1] * mask[:, 1:]
    total = (state["words.weight"][ids] * weight).sum(1)
    total = total + (state["pairs.weight"][rows] * pair).sum(1)
    return total / ((weight**2).sum(1) + (pair**2).sum(1)).sqrt()


def saved_before_exact_pairs(fitted: bool, buckets: int = 53) -> dict:
    """A state of an earlier version: a hash bucket -> row map and weights named as now
    (`fitted`), or the version before it (a table row per bucket, word_idf/pair_idf)."""
    gen = torch.Generator().manual_seed(7)
    words = torch.randn(VOCAB, 3, generator=gen)
    if not fitted:
        return {"words.weight": words, "pairs.weight": torch.randn(buckets, 3, generator=gen),
                "word_idf": 1 + 2 * torch.rand(VOCAB, generator=gen),
                "pair_idf": 1 + 2 * torch.rand(buckets, generator=gen)}  # fmt: skip
    seen = torch.rand(buckets, generator=gen) < 0.5
    pair_row = torch.zeros(buckets, dtype=torch.long)
    pair_row[seen] = torch.arange(1, int(seen.sum()) + 1)
    table = torch.randn(int(seen.sum()) + 1, 3, generator=gen)
    return {"words.weight": words, "pairs.weight": table,
            "word_weight": 1 + 2 * torch.rand(VOCAB, generator=gen),
            "pair_weight": torch.where(seen, 1 + 2 * torch.rand(buckets, generator=gen), 0.0),
            "pair_row": pair_row}  # fmt: skip


@pytest.mark.parametrize("fitted", [False, True])
def test_a_model_saved_with_hashed_pairs_still_loads_and_scores_as_it_did(fitted):
    """Exports of earlier versions (hashed pairs; before that, no fitted table) load into
    today's path, their buckets as keys, and score exactly as they did."""
    ids, mask = documents(30, 6, seed=4)
    old = saved_before_exact_pairs(fitted)
    loaded = Wide(VOCAB, 0, 3, idf=True)
    loaded.fit(ids, mask)  # a fitted table of another shape: the saved one replaces it
    loaded.load_state_dict(dict(old))
    batch = torch.from_numpy(ids), torch.from_numpy(mask[..., None]).float()
    with torch.no_grad():
        torch.testing.assert_close(loaded(*batch), hashed_forward(old, *batch))
    again = Wide(VOCAB, 0, 3, idf=True)
    again.load_state_dict(loaded.state_dict())  # and saved again, in today's format
    with torch.no_grad():
        torch.testing.assert_close(again(*batch), loaded(*batch))


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
    wide = Wide(VOCAB, 0, classes + 1, idf=True)  # one class more than the labels hold
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
