"""BiLSTM over masked sequences: a forward and a backward LSTM stack, spatial dropout on the
input, masked mean / max / last-state pooling.

The two directions are separate stacks (as in ULMFiT) so that the same encoder serves the
bidirectional language model (qamodels.lm) without the backward states leaking the next
token into the forward direction; a classifier can then start from the pretrained encoder.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from data_prep.cli import arg
from qamodels.layers import (
    NORMS,
    POOLINGS,
    ClassifierHead,
    SpatialDropout,
    pool,
    pooled_width,
    zero_pads,
)


@dataclass(frozen=True)
class BiLSTMConfig:
    hidden: int = arg(128, "LSTM width per direction", min=1)
    layers: int = arg(1, "stacked LSTM layers", min=1)
    spatial_dropout: float = arg(0.2, "drops whole embedding channels", min=0, below=1)
    lstm_dropout: float = arg(0.0, "dropout between LSTM layers", min=0, below=1)
    pooling: str = arg(
        "max",
        "over time; last: the final states; concat: last, max and mean (ULMFiT)",
        choices=(*POOLINGS, "last", "concat"),
    )
    head_hidden: int = arg(128, "width of the head's hidden layers", min=1)
    head_layers: int = arg(0, "hidden layers of the head", min=0)
    dropout: float = arg(0.3, "dropout in the head", min=0, below=1)
    norm: str = arg("none", "normalization in the head", choices=NORMS)


def reverse_padded(x: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence within its own length; pads stay where they are."""
    pos = torch.arange(x.shape[1], device=x.device)
    index = torch.where(pos < length[:, None], length[:, None] - 1 - pos, pos)
    if x.dim() == 3:
        index = index.unsqueeze(-1).expand_as(x)
    return x.gather(1, index)


def _run_packed(lstm: nn.LSTM, x: torch.Tensor, length: torch.Tensor):
    packed = pack_padded_sequence(x, length.cpu(), batch_first=True, enforce_sorted=False)
    out, (h, _) = lstm(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out, h[-1]


def _run_masked(lstm: nn.LSTM, x: torch.Tensor, length: torch.Tensor):
    """The LSTM over the padded batch as it is: pads only follow a row's real tokens, so the
    states at real positions (and the last real state, gathered) never see them; no packing,
    so no host sync for the lengths and one cuDNN call per batch on a GPU."""
    out, _ = lstm(x)
    last = (length - 1).clamp(min=0)[:, None, None].expand(-1, 1, out.shape[-1])
    return out, out.gather(1, last).squeeze(1)


class BiLSTMEncoder(nn.Module):
    def __init__(
        self,
        embedding: nn.Embedding,
        hidden: int,
        layers: int,
        spatial_dropout: float,
        lstm_dropout: float,
    ):
        super().__init__()
        self.embedding = embedding
        self.dropout = SpatialDropout(spatial_dropout)
        dim, drop = embedding.embedding_dim, lstm_dropout if layers > 1 else 0.0
        self.forward_lstm = nn.LSTM(dim, hidden, layers, batch_first=True, dropout=drop)
        self.backward_lstm = nn.LSTM(dim, hidden, layers, batch_first=True, dropout=drop)
        self.hidden, self.layers = hidden, layers
        # Masked, not packed: the same states (tested), measured faster (BENCHMARKS.md,
        # bench/train_bench.py) and free of the packed path's host sync for the lengths.
        self.packed = False

    def forward(self, ids: torch.Tensor, mask: torch.Tensor):
        """Per-position states (b, t, 2h) [forward | backward] and last states (b, 2h)."""
        length = mask.sum(1)
        x = self.dropout(self.embedding(ids))
        run = _run_packed if self.packed else _run_masked
        fwd, fwd_last = run(self.forward_lstm, x, length)
        bwd, bwd_last = run(self.backward_lstm, reverse_padded(x, length), length)
        states = zero_pads(torch.cat([fwd, reverse_padded(bwd, length)], dim=-1), mask)
        return states, torch.cat([fwd_last, bwd_last], dim=-1)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Embedding, then LSTM layer 0..n-1 (both directions): bottom to top."""
        groups = [list(self.embedding.parameters())]
        for i in range(self.layers):
            groups.append(
                [
                    p
                    for lstm in (self.forward_lstm, self.backward_lstm)
                    for name, p in lstm.named_parameters()
                    if name.endswith(f"_l{i}")
                ]
            )
        return groups


class BiLSTM(nn.Module):
    def __init__(self, embedding: nn.Embedding, classes: int, **params):
        super().__init__()
        p = BiLSTMConfig(**params)
        self.encoder = BiLSTMEncoder(
            embedding, p.hidden, p.layers, p.spatial_dropout, p.lstm_dropout
        )
        self.embedding = embedding
        self.pooling = p.pooling
        widths = {"last": 2 * p.hidden, "concat": 6 * p.hidden}
        width = widths.get(self.pooling) or pooled_width(2 * p.hidden, self.pooling)
        self.head = ClassifierHead(width, classes, p.head_hidden, p.head_layers, p.dropout, p.norm)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        states, last = self.encoder(ids, mask)
        if self.pooling == "last":
            return self.head(last)
        if self.pooling == "concat":
            return self.head(torch.cat([last, pool(states, mask, "meanmax")], dim=-1))
        return self.head(pool(states, mask, self.pooling))

    def layer_groups(self) -> list[list[nn.Parameter]]:
        return self.encoder.layer_groups() + [list(self.head.parameters())]
