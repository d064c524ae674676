"""The DAN's TF-IDF wide path (wide=2): scikit-learn's idf, the baseline's normalisation,
padding that changes nothing, and the trainer fitting it from the training split alone."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.feature_extraction.text import TfidfVectorizer

from qamodels.dan import PAIR_PRIME, Wide
from tests.qamodels.test_masking import LENGTHS, VOCAB, padded


def documents(rows: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(2, VOCAB, (rows, width))
    mask = np.arange(width)[None, :] < rng.integers(1, width + 1, rows)[:, None]
    return ids, mask


def test_the_idf_of_every_word_is_scikit_learns():
    ids, mask = documents(200, 9)
    wide = Wide(VOCAB, 97, 3, idf=True)
    wide.fit_idf(ids, mask)
    texts = [" ".join(f"w{i}" for i in row[keep]) for row, keep in zip(ids, mask, strict=True)]
    vectorizer = TfidfVectorizer(token_pattern=r"\S+", smooth_idf=True).fit(texts)
    expected = {int(word[1:]): idf for word, idf in zip(vectorizer.get_feature_names_out(),
                                                        vectorizer.idf_, strict=True)}  # fmt: skip
    got = wide.word_idf.numpy()
    for word, idf in expected.items():
        assert abs(got[word] - idf) < 1e-5, word
    unseen = sorted(set(range(VOCAB)) - set(expected))
    assert np.allclose(got[unseen], 1 + np.log(201 / 1))  # no document: the largest idf


def test_the_tfidf_path_is_a_linear_model_on_l2_normalised_tfidf_rows():
    ids, mask = documents(50, 6, seed=1)
    wide = Wide(VOCAB, 31, 3, idf=True)
    wide.fit_idf(ids, mask)
    torch.nn.init.normal_(wide.words.weight)
    torch.nn.init.normal_(wide.pairs.weight)
    row, keep = ids[0], mask[0]
    features = np.zeros(VOCAB + 31)
    for position in np.flatnonzero(keep):
        features[row[position]] += wide.word_idf[row[position]].item()
        if position + 1 < len(row) and keep[position + 1]:
            bucket = (row[position] * PAIR_PRIME + row[position + 1]) % 31
            features[VOCAB + bucket] += wide.pair_idf[bucket].item()
    weights = torch.cat([wide.words.weight, wide.pairs.weight]).detach().numpy()
    expected = features @ weights / np.linalg.norm(features)
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
    assert model.wide.word_idf.min() >= 1 and model.wide.word_idf.max() > 1


def test_the_trainer_fits_the_idf_on_the_training_split_and_saves_it(prepared_sample, tmp_path):
    from qamodels.checkpoint import load_model
    from qamodels.config import TrainConfig
    from qamodels.trainer import Trainer, subset

    config = TrainConfig(arch="dan", epochs=1, max_train_rows=500, progress=False,
                         embedding="random", embedding_dim=16)  # fmt: skip
    trainer = Trainer(config, prepared_sample, {"wide": 2, "hidden": 16})
    train = subset(prepared_sample.train, 500, config.seed)
    reference = Wide(len(prepared_sample.vocab), trainer.model.wide.pair_idf.numel(), 2, idf=True)
    reference.fit_idf(train.ids, train.mask)
    assert torch.equal(trainer.model.wide.word_idf.cpu(), reference.word_idf)
    result = trainer.fit()
    trainer.save_run(tmp_path / "run", result)
    model, _ = load_model(tmp_path / "run", "cpu")
    assert torch.equal(model.wide.word_idf, reference.word_idf)  # predict weighs as training


def test_wide_first_starts_the_epochs_from_the_fitted_linear_model(prepared_sample):
    """wide_first=1: before the first epoch the trainer has fitted the wide path alone; the
    MLP's output is still zero, so the model is that linear model, and it is a fitted one."""
    from qamodels.config import TrainConfig
    from qamodels.trainer import Trainer

    config = TrainConfig(arch="dan", epochs=1, max_train_rows=800, progress=False,
                         embedding="random", embedding_dim=16, lr=0.01)  # fmt: skip
    trainer = Trainer(config, prepared_sample, {"wide": 2, "wide_first": 1, "hidden": 16})
    model = trainer.model.eval()
    assert model.wide.words.weight.abs().sum() > 0, "the linear part was not fitted"
    split, rows = trainer.valid_split, torch.arange(64)
    batch = split.batch(rows, split.width(rows, False))
    ids, mask = batch.ids, batch.mask
    with torch.no_grad():
        whole = model(ids, mask)
        linear = model.wide(ids, mask.unsqueeze(-1).float())
    torch.testing.assert_close(whole, linear)  # the MLP adds exactly nothing yet
    metrics, _ = trainer.evaluate()
    assert metrics["valid_accuracy"] > 2.0 / len(prepared_sample.labels)  # far above chance
    result = trainer.fit()  # then the epochs train the whole model
    assert result.history and model.head.net[-1].weight.abs().sum() > 0
