r"""Bidirectional LSTM language model pretrained on the unlabeled questions and answers.

    python -m qamodels.lm raw_dir=../shared/data/amazon_qa categories=all valid_size=0.1 \
        train_size=0.6 epochs=3 out=~/.qatune/lm.pt

The forward stack predicts the next token, the backward stack the previous one; the encoder
(embedding + both stacks, qamodels.bilstm.BiLSTMEncoder) is saved with its vocabulary, for
classifiers to start from (`embedding=lm_finetune lm_checkpoint=...`). Perplexity on held-out
unlabeled text is reported each epoch.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from data_prep.cli import arg
from data_prep.store import PreparedData
from qamodels.bilstm import BiLSTMEncoder
from qamodels.embedding import make_embedding
from qamodels.pretrain import PretrainConfig, fit_language_model, run_cli


@dataclass(frozen=True)
class LMConfig(PretrainConfig):
    embedding_dim: int = arg(128, "embedding width", min=1)
    hidden: int = arg(256, "LSTM width per direction", min=1)
    layers: int = arg(1, "stacked LSTM layers", min=1)
    spatial_dropout: float = arg(0.1, "drops whole embedding channels", min=0)
    lstm_dropout: float = arg(0.1, "dropout between LSTM layers", min=0)


class BiLanguageModel(nn.Module):
    def __init__(self, vocab_size: int, config: LMConfig):
        super().__init__()
        embedding = make_embedding(vocab_size, config.embedding_dim, "random")
        self.encoder = BiLSTMEncoder(
            embedding, config.hidden, config.layers, config.spatial_dropout, config.lstm_dropout
        )
        self.next_token = nn.Linear(config.hidden, vocab_size)
        self.previous_token = nn.Linear(config.hidden, vocab_size)

    def loss(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Mean cross-entropy over both directions, and the number of predicted tokens."""
        states, _ = self.encoder(ids, mask)
        h = self.encoder.hidden
        forward = self.next_token(states[:, :-1, :h])[mask[:, 1:]]
        backward = self.previous_token(states[:, 1:, h:])[mask[:, :-1]]
        logits = torch.cat([forward, backward])
        targets = torch.cat([ids[:, 1:][mask[:, 1:]], ids[:, :-1][mask[:, :-1]]])
        return F.cross_entropy(logits, targets), len(targets)


def pretrain(data: PreparedData, config: LMConfig) -> dict:
    """Train the BiLSTM language model; save its encoder to config.out. Returns history."""
    torch.manual_seed(config.seed)
    model = BiLanguageModel(len(data.vocab), config)
    encoder_params = {"hidden": config.hidden, "layers": config.layers}
    return fit_language_model(model, data, config, "bilstm", encoder_params)


if __name__ == "__main__":
    sys.exit(run_cli(sys.argv[1:], LMConfig, pretrain))
