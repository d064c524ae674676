r"""Masked language model for the Transformer, pretrained on the unlabeled questions and answers.

    python -m qamodels.mlm raw_dir=../shared/data/amazon_qa categories=all valid_size=0.1 \
        train_size=0.6 epochs=3 d_model=128 layers=2 out=~/.qatune/mlm.pt
    python -m qamodels.train arch=transformer embedding=lm_finetune \
        lm_checkpoint=~/.qatune/mlm.pt ...

15% of the real tokens of each row are chosen; of those 80% become UNK (the vocabulary has
no mask token of its own, and UNK already means "unknown word"), 10% a random token, 10%
stay; the encoder (qamodels.transformer.TransformerEncoder) learns to predict the originals.
Held-out perplexity is over the chosen tokens, with the same choices every evaluation.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from data_prep.cli import arg
from data_prep.store import PreparedData
from data_prep.tokenize import UNK
from qamodels.embedding import make_embedding
from qamodels.pretrain import PretrainConfig, fit_language_model, run_cli
from qamodels.transformer import ENCODER_KEYS, TransformerEncoder


@dataclass(frozen=True)
class MLMConfig(PretrainConfig):
    embedding_dim: int = arg(128, "embedding width", min=1)
    d_model: int = arg(128, "width of the encoder", min=1)
    heads: int = arg(4, "attention heads", min=1)
    layers: int = arg(2, "encoder layers", min=1)
    ff_mult: int = arg(2, "feed-forward width as a multiple of d_model", min=1)
    attn_dropout: float = arg(0.1, "dropout inside the encoder", min=0, below=1)
    max_positions: int = arg(512, "longest sequence the position table holds", min=1)
    mask_share: float = arg(0.15, "share of real tokens to predict", above=0)
    lr: float = arg(1e-3, "AdamW learning rate", above=0)
    out: str = arg("~/.qatune/mlm.pt", "where the encoder checkpoint is saved")


class MaskedLanguageModel(nn.Module):
    def __init__(self, vocab_size: int, config: MLMConfig):
        super().__init__()
        embedding = make_embedding(vocab_size, config.embedding_dim, "random")
        self.encoder = TransformerEncoder(
            embedding, **{k: getattr(config, k) for k in ENCODER_KEYS}
        )
        self.predict = nn.Linear(config.d_model, vocab_size)
        self.mask_share = config.mask_share

    def corrupt(self, ids: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | None):
        """BERT's 80/10/10 recipe over ceil(mask_share * length) real tokens of each row, at
        fixed shapes (no host sync on a GPU): (corrupted ids, chosen positions (b, k), which
        of them count (b, k), the original tokens there (b, k)); k covers the longest row."""
        rows, width = ids.shape
        k = max(1, math.ceil(self.mask_share * width))

        def draw(*shape):
            return torch.rand(shape, generator=generator, device=ids.device)

        position = draw(rows, width).masked_fill(~mask, -1.0).topk(k, dim=1).indices
        length = mask.sum(1, keepdim=True)
        chosen = torch.arange(k, device=ids.device) < torch.ceil(self.mask_share * length)
        original = ids.gather(1, position)
        how = draw(rows, k)
        random_ids = (draw(rows, k) * (self.predict.out_features - 2)).long() + 2
        replaced = torch.where(how < 0.8, UNK, torch.where(how < 0.9, random_ids, original))
        corrupted = ids.scatter(1, position, torch.where(chosen, replaced, original))
        return corrupted, position, chosen, original

    def loss(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean cross-entropy over the chosen tokens, and their count (both on the device)."""
        # Evaluation draws the same choices every time, so perplexities are comparable.
        generator = None
        if not self.training:
            generator = torch.Generator(ids.device).manual_seed(ids.shape[1])
        corrupted, position, chosen, original = self.corrupt(ids, mask, generator)
        states = self.encoder(corrupted, mask)
        states = states.gather(1, position[..., None].expand(-1, -1, states.shape[-1]))
        logits = self.predict(states).float()
        nll = F.cross_entropy(logits.flatten(0, 1), original.flatten(), reduction="none")
        count = chosen.sum()
        return (nll * chosen.flatten()).sum() / count.clamp(min=1), count


def pretrain(data: PreparedData, config: MLMConfig) -> dict:
    """Train the masked LM; save its encoder to config.out. Returns history."""
    torch.manual_seed(config.seed)
    model = MaskedLanguageModel(len(data.vocab), config)
    encoder_params = {k: getattr(config, k) for k in ENCODER_KEYS}
    return fit_language_model(model, data, config, "transformer", encoder_params)


if __name__ == "__main__":
    sys.exit(run_cli(sys.argv[1:], MLMConfig, pretrain))
