"""Token embeddings in every mode the architectures share.

random       trained from scratch with the model
frozen       pretrained vectors (data_prep.embeddings), never updated
finetune     pretrained vectors updated jointly, with their own learning rate
lm_frozen    the embedding of a language model pretrained on the unlabeled text, frozen
lm_finetune  the same, fine-tuned with its own learning rate
"""

from __future__ import annotations

import torch
from torch import nn

from data_prep.cli import ConfigError

MODES = ("random", "frozen", "finetune", "lm_frozen", "lm_finetune")
PRETRAINED_MODES = ("frozen", "finetune")
LM_MODES = ("lm_frozen", "lm_finetune")


def make_embedding(
    vocab_size: int, dim: int, mode: str, weights: torch.Tensor | None = None
) -> nn.Embedding:
    if mode not in MODES:
        raise ConfigError(f"embedding={mode!r}: use one of {', '.join(MODES)}")
    if mode == "random":
        return nn.Embedding(vocab_size, dim, padding_idx=0)
    if weights is None:
        raise ConfigError(f"embedding={mode} needs pretrained weights (vectors= or lm_checkpoint=)")
    if weights.shape[0] != vocab_size:
        raise ConfigError(
            f"pretrained embedding has {weights.shape[0]} rows but the vocabulary has "
            f"{vocab_size}: was it built for another prepared dataset?"
        )
    frozen = mode in ("frozen", "lm_frozen")
    return nn.Embedding.from_pretrained(weights.float(), freeze=frozen, padding_idx=0)


class WordDropout(nn.Module):
    """Drops whole tokens (from the mask) while training; every item keeps at least one."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, mask: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return mask
        kept = mask & (torch.rand(mask.shape, device=mask.device) >= self.p)
        empty = ~kept.any(1)
        return torch.where(empty[:, None], mask, kept)
