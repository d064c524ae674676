"""Padding must never change a prediction: every architecture, in eval mode, on the tests'
device (tests/conftest.py); on a GPU also under bf16 autocast, within bf16's precision."""

from __future__ import annotations

import pytest
import torch

from qamodels.bilstm import reverse_padded
from qamodels.device import autocast
from qamodels.embedding import make_embedding
from qamodels.registry import ARCHITECTURES, build_model
from tests.conftest import test_device

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


DEVICE = torch.device(test_device())
# float32 on the CPU is exact to rounding; a GPU's convolutions and matmuls use TF32.
TOLERANCE = 1e-5 if DEVICE.type == "cpu" else 2e-3


def padded(tokens: list[torch.Tensor], width: int, generator: torch.Generator):
    """Items padded to `width`; pad positions hold random token ids, not PAD, so only the
    mask can keep them out."""
    ids = torch.randint(2, VOCAB, (len(tokens), width), generator=generator)
    mask = torch.zeros(len(tokens), width, dtype=torch.bool)
    for row, item in enumerate(tokens):
        ids[row, : len(item)] = item
        mask[row, : len(item)] = True
    return ids.to(DEVICE), mask.to(DEVICE)


def make(arch: str, **params) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(arch, make_embedding(VOCAB, 16, "random"), CLASSES, params)
    # Non-trivial BatchNorm statistics, so eval mode really uses them.
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
    return model.to(DEVICE).eval()


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


def assert_padding_invariant(model: torch.nn.Module, bf16: bool = False) -> None:
    gen = torch.Generator().manual_seed(1)
    tokens = [torch.randint(2, VOCAB, (n,), generator=gen).to(DEVICE) for n in LENGTHS]
    alone_mask = [torch.ones(1, len(t), dtype=torch.bool, device=DEVICE) for t in tokens]
    with torch.no_grad(), autocast(DEVICE, amp=bf16):
        tight = model(*padded(tokens, max(LENGTHS), gen)).float()
        loose = model(*padded(tokens, max(LENGTHS) + 9, gen)).float()
        alone = [model(t[None], m).float() for t, m in zip(tokens, alone_mask, strict=True)]
        alone = torch.cat(alone)
    tolerance = 3e-2 if bf16 else TOLERANCE  # bf16 keeps 8 bits of mantissa
    torch.testing.assert_close(loose, tight, atol=tolerance, rtol=tolerance)
    torch.testing.assert_close(alone, tight, atol=tolerance, rtol=tolerance)


@pytest.mark.parametrize(("arch", "pooling"), CASES)
def test_padding_never_changes_logits(arch, pooling):
    params = dict(SMALL[arch], **({"pooling": pooling} if pooling else {}))
    assert_padding_invariant(make(arch, **params))


@pytest.mark.gpu
@pytest.mark.parametrize(("arch", "pooling"), CASES)
def test_padding_never_changes_logits_on_a_gpu_in_bf16(arch, pooling):
    if DEVICE.type != "cuda":
        pytest.skip("run with --device=cuda")
    params = dict(SMALL[arch], **({"pooling": pooling} if pooling else {}))
    assert_padding_invariant(make(arch, **params), bf16=True)


def test_padding_never_changes_a_dan_with_word_pairs():
    model = make("dan", ngrams=2, buckets=97, **SMALL["dan"])
    assert_padding_invariant(model)
    one_word = torch.tensor([[5]], device=DEVICE), torch.ones(1, 1, dtype=torch.bool).to(DEVICE)
    swapped = [torch.tensor([[5, 9]], device=DEVICE), torch.tensor([[9, 5]], device=DEVICE)]
    with torch.no_grad():
        assert model(*one_word).isfinite().all()
        ones = torch.ones(1, 2, dtype=torch.bool, device=DEVICE)
        assert not torch.allclose(model(swapped[0], ones), model(swapped[1], ones))  # order


def test_the_wide_dan_starts_as_the_plain_one_and_keeps_padding_out():
    plain, wide = make("dan", **SMALL["dan"]), make("dan", wide=1, **SMALL["dan"])
    wide.load_state_dict(plain.state_dict(), strict=False)  # all but the wide path's tables
    gen = torch.Generator().manual_seed(2)
    ids, mask = padded([torch.randint(2, VOCAB, (n,), generator=gen) for n in LENGTHS], 9, gen)
    wide.fit_statistics(ids.cpu().numpy(), mask.cpu().numpy())  # these rows' words and pairs
    with torch.no_grad():
        torch.testing.assert_close(wide(ids, mask), plain(ids, mask))  # the wide path at zero
        for table in (wide.wide.words, wide.wide.pairs):
            table.weight.normal_(generator=gen.manual_seed(3))
        assert not torch.allclose(wide(ids, mask), plain(ids, mask))
    assert_padding_invariant(wide)


@pytest.mark.parametrize("packed", [False, True])
def test_bilstm_equals_each_sequence_alone(packed):
    """The masked path (the default) and the packed one give each item's own states."""
    model = make("bilstm", layers=2)
    encoder = model.encoder
    encoder.packed = packed
    gen = torch.Generator().manual_seed(2)
    tokens = [torch.randint(2, VOCAB, (n,), generator=gen).to(DEVICE) for n in LENGTHS]
    ids, mask = padded(tokens, 10, gen)
    with torch.no_grad():
        states, last = encoder(ids, mask)
        for row, item in enumerate(tokens):
            x = encoder.embedding(item[None])
            fwd, _ = encoder.forward_lstm(x)  # plain LSTM over the unpadded item
            bwd, _ = encoder.backward_lstm(x.flip(1))
            n, h = len(item), encoder.hidden
            close = dict(atol=TOLERANCE, rtol=TOLERANCE)
            torch.testing.assert_close(states[row, :n, :h], fwd[0], **close)
            torch.testing.assert_close(states[row, :n, h:], bwd[0].flip(0), **close)
            torch.testing.assert_close(last[row], torch.cat([fwd[0, -1], bwd[0, -1]]), **close)
            assert (states[row, n:] == 0).all()


def test_reverse_padded_is_an_involution_within_length():
    x = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]])
    length = torch.tensor([3, 2])
    assert reverse_padded(x, length).tolist() == [[3, 2, 1, 0], [5, 4, 0, 0]]
    assert torch.equal(reverse_padded(reverse_padded(x, length), length), x)


def test_the_transformer_layers_compute_what_torchs_encoder_does():
    """The SDPA layers (qamodels/transformer.py) load nn.TransformerEncoder's weights (a
    model saved before them) and give its outputs on every non-pad token."""
    from qamodels.transformer import EncoderStack

    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(16, 2, 32, 0.1, batch_first=True, norm_first=True)
    reference = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).eval()
    ours = EncoderStack((16, 2, 32, 0.1), 2).eval()
    ours.load_state_dict(reference.state_dict())  # strict: every name matches
    ids, mask = padded([torch.arange(n) for n in LENGTHS], max(LENGTHS) + 2, torch.Generator())
    x = torch.randn(*ids.shape, 16, device=DEVICE)
    reference, ours = reference.to(DEVICE), ours.to(DEVICE)
    with torch.no_grad():
        expected = reference(x, src_key_padding_mask=~mask)
        got = ours(x, mask)
    torch.testing.assert_close(got[mask], expected[mask], atol=TOLERANCE, rtol=TOLERANCE)
