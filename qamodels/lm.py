r"""Bidirectional LSTM language model pretrained on the unlabeled questions and answers.

    python -m qamodels.lm raw_dir=../shared/data/amazon_qa categories=all valid_size=0.1 \
        train_size=0.6 epochs=4 out=~/.qatune/lm.pt

The forward stack predicts the next token, the backward stack the previous one; the encoder
(embedding + both stacks, qamodels.bilstm.BiLSTMEncoder) is saved with its vocabulary, for
classifiers to start from (`embedding=lm_finetune lm_checkpoint=...`). Perplexity on held-out
unlabeled text is reported each epoch. The stages and schedule: qamodels.pretrain.

An adaptive softmax (Grave et al. 2017) over the frequency-sorted vocabulary: the full
softmax over every word was 90% of an epoch on CPU. Dropout on the states before it, as
AWD-LSTM's output dropout.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import torch
from torch import nn

from data_prep.cli import arg
from data_prep.store import PreparedData
from qamodels.bilstm import BiLSTMEncoder
from qamodels.embedding import make_embedding
from qamodels.pretrain import PretrainConfig, fit_language_model, run_cli


@dataclass(frozen=True)
class LMConfig(PretrainConfig):
    embedding_dim: int = arg(128, "embedding width", min=1)
    hidden: int = arg(128, "LSTM width per direction (256+ on a GPU)", min=1)
    layers: int = arg(1, "stacked LSTM layers", min=1)
    spatial_dropout: float = arg(0.1, "drops whole embedding channels", min=0, below=1)
    lstm_dropout: float = arg(0.1, "dropout between LSTM layers", min=0, below=1)
    output_dropout: float = arg(0.2, "dropout on the states the softmax reads", min=0, below=1)


def adaptive_cutoffs(vocab_size: int) -> list[int]:
    """Head of the 2,000 most frequent words (the vocabulary is sorted by frequency), then
    two tails; fewer clusters for small vocabularies."""
    return sorted({c for c in (2000, 10000) if c < vocab_size - 1}) or [max(1, vocab_size // 2)]


def adaptive_softmax(hidden: int, vocab_size: int) -> nn.AdaptiveLogSoftmaxWithLoss:
    return nn.AdaptiveLogSoftmaxWithLoss(hidden, vocab_size, adaptive_cutoffs(vocab_size), 2.0)


class BiLanguageModel(nn.Module):
    def __init__(self, vocab_size: int, config: LMConfig):
        super().__init__()
        embedding = make_embedding(vocab_size, config.embedding_dim, "random")
        self.encoder = BiLSTMEncoder(
            embedding, config.hidden, config.layers, config.spatial_dropout, config.lstm_dropout
        )
        self.output_dropout = nn.Dropout(config.output_dropout)
        self.next_token = adaptive_softmax(config.hidden, vocab_size)
        self.previous_token = adaptive_softmax(config.hidden, vocab_size)

    def loss(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean cross-entropy over both directions, and the number of predicted tokens."""
        states, _ = self.encoder(ids, mask)
        states, h = self.output_dropout(states.float()), self.encoder.hidden
        fixed = states.is_cuda  # no host sync per step on a GPU
        forward = token_nll(self.next_token, states[:, :-1, :h], ids[:, 1:], mask[:, 1:], fixed)
        backward = token_nll(
            self.previous_token, states[:, 1:, h:], ids[:, :-1], mask[:, :-1], fixed
        )
        count = mask[:, 1:].sum() + mask[:, :-1].sum()
        return (forward + backward) / count.clamp(min=1), count


def token_nll(
    softmax: nn.AdaptiveLogSoftmaxWithLoss,
    states: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor,
    fixed_shapes: bool,
) -> torch.Tensor:
    """The summed negative log-likelihood of the real positions' targets. The adaptive
    softmax's own forward selects rows by boolean masks (a host sync per cluster): the CPU's
    fast path. With `fixed_shapes` every position's log-probabilities are computed and the
    real ones summed: more arithmetic, no sync (a GPU's path). Both give the same value."""
    if not fixed_shapes:
        return -softmax(states[mask], targets[mask]).output.sum()
    log_probs = softmax.log_prob(states.flatten(0, 1))
    picked = log_probs.gather(1, targets.flatten()[:, None]).squeeze(1)
    return -(picked * mask.flatten()).sum()


def pretrain(data: PreparedData, config: LMConfig) -> dict:
    """Train the BiLSTM language model; save its encoder to config.out. Returns history."""
    torch.manual_seed(config.seed)
    model = BiLanguageModel(len(data.vocab), config)
    encoder_params = {"hidden": config.hidden, "layers": config.layers}
    return fit_language_model(model, data, config, "bilstm", encoder_params)


if __name__ == "__main__":
    sys.exit(run_cli(sys.argv[1:], LMConfig, pretrain))
