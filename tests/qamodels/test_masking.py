"""Padding must never change a prediction: every architecture, in eval mode."""

from __future__ import annotations

import pytest
import torch

from qamodels.bilstm import reverse_padded
from qamodels.embedding import make_embedding
from qamodels.registry import ARCHITECTURES, build_model

VOCAB, CLASSES = 60, 4
LENGTHS = [5, 3, 7, 1, 6]
SMALL = {
    "dan": dict(hidden_layers=2, norm="batch"),
    "bilstm": dict(layers=2, pooling="meanmax", head_layers=1),
    "cnn_parallel": dict(windows=(2, 3, 4, 5), filters=8),
    "cnn_stacked": dict(layers=3, window=4, filters=8),
    "cnn_residual": dict(windows=(2, 3), blocks=3, filters=8),
    "transformer": dict(d_model=16, heads=2, layers=2, ff_mult=2),
}


def padded(tokens: list[torch.Tensor], width: int, generator: torch.Generator):
    """Items padded to `width`; pad positions hold random token ids, not PAD, so only the
    mask can keep them out."""
    ids = torch.randint(2, VOCAB, (len(tokens), width), generator=generator)
    mask = torch.zeros(len(tokens), width, dtype=torch.bool)
    for row, item in enumerate(tokens):
        ids[row, : len(item)] = item
        mask[row, : len(item)] = True
    return ids, mask


def make(arch: str, **params) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(arch, make_embedding(VOCAB, 16, "random"), CLASSES, params)
    # Non-trivial BatchNorm statistics, so eval mode really uses them.
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
    return model.eval()


CASES = [(arch, None) for arch in ARCHITECTURES] + [
    ("bilstm", "mean"),
    ("bilstm", "max"),
    ("bilstm", "last"),
    ("bilstm", "concat"),
    ("cnn_parallel", "mean"),
    ("cnn_parallel", "max"),
    ("cnn_residual", "max"),
    ("transformer", "meanmax"),
]


def assert_padding_invariant(model: torch.nn.Module) -> None:
    gen = torch.Generator().manual_seed(1)
    tokens = [torch.randint(2, VOCAB, (n,), generator=gen) for n in LENGTHS]
    with torch.no_grad():
        tight = model(*padded(tokens, max(LENGTHS), gen))
        loose = model(*padded(tokens, max(LENGTHS) + 9, gen))
        alone = torch.cat([model(t[None], torch.ones(1, len(t), dtype=torch.bool)) for t in tokens])
    torch.testing.assert_close(loose, tight, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(alone, tight, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("arch", "pooling"), CASES)
def test_padding_never_changes_logits(arch, pooling):
    params = dict(SMALL[arch], **({"pooling": pooling} if pooling else {}))
    assert_padding_invariant(make(arch, **params))


def test_padding_never_changes_a_dan_with_word_pairs():
    model = make("dan", ngrams=2, buckets=97, **SMALL["dan"])
    assert_padding_invariant(model)
    one_word = torch.tensor([[5]]), torch.ones(1, 1, dtype=torch.bool)
    swapped = [torch.tensor([[5, 9]]), torch.tensor([[9, 5]])]
    with torch.no_grad():
        assert model(*one_word).isfinite().all()
        ones = torch.ones(1, 2, dtype=torch.bool)
        assert not torch.allclose(model(swapped[0], ones), model(swapped[1], ones))  # order


def test_packed_bilstm_equals_each_sequence_alone():
    model = make("bilstm", layers=2)
    encoder = model.encoder
    gen = torch.Generator().manual_seed(2)
    tokens = [torch.randint(2, VOCAB, (n,), generator=gen) for n in LENGTHS]
    ids, mask = padded(tokens, 10, gen)
    with torch.no_grad():
        states, last = encoder(ids, mask)
        for row, item in enumerate(tokens):
            x = encoder.embedding(item[None])
            fwd, _ = encoder.forward_lstm(x)  # plain LSTM over the unpadded item
            bwd, _ = encoder.backward_lstm(x.flip(1))
            n, h = len(item), encoder.hidden
            torch.testing.assert_close(states[row, :n, :h], fwd[0], atol=1e-6, rtol=1e-5)
            torch.testing.assert_close(states[row, :n, h:], bwd[0].flip(0), atol=1e-6, rtol=1e-5)
            torch.testing.assert_close(last[row], torch.cat([fwd[0, -1], bwd[0, -1]]))
            assert (states[row, n:] == 0).all()


def test_reverse_padded_is_an_involution_within_length():
    x = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]])
    length = torch.tensor([3, 2])
    assert reverse_padded(x, length).tolist() == [[3, 2, 1, 0], [5, 4, 0, 0]]
    assert torch.equal(reverse_padded(reverse_padded(x, length), length), x)
