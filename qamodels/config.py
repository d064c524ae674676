"""The training config: plain values, overridable as `key=value` (qamodels.train, search)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainConfig:
    arch: str = "cnn_parallel"
    epochs: int = 10
    batch_size: int = 256
    optimizer: str = "adamw"  # adam | adamw | sgd
    lr: float = 2e-3
    weight_decay: float = 0.01
    momentum: float = 0.9  # sgd only
    scheduler: str = "onecycle"  # none | cosine | onecycle | warmup | plateau
    warmup_fraction: float = 0.1  # of all steps, for warmup and onecycle
    grad_clip: float = 1.0  # 0: off
    patience: int = 3  # epochs without improvement before stopping early
    metric: str = "valid_accuracy"  # valid_accuracy | valid_macro_f1 | valid_micro_f1 | valid_loss
    bucket: bool = True  # batches of similar lengths
    trim: bool = True  # cut each batch to its longest item
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = True  # bf16 autocast on CUDA
    # Embeddings: random | frozen | finetune (pretrained vectors) | lm_frozen | lm_finetune.
    embedding: str = "random"
    embedding_dim: int = 128  # random mode; pretrained modes take the vectors' width
    vectors: str = "glove-6b-50d"  # a .vec/.vec.zip/.txt path, or glove-6b-50d
    embedding_lr: float = 1e-4  # finetune modes: the embedding's own learning rate
    lm_checkpoint: str = ""  # from `python -m qamodels.lm`; bilstm also takes its encoder
    # Transfer (ULMFiT): lower layer groups learn at lr / lr_decay**depth; unfreeze one group
    # per epoch from the top.
    lr_decay: float = 1.0
    gradual_unfreeze: bool = False
    max_train_rows: int = 0  # 0: all; else a seeded subset (quick runs, tests)
    out_dir: str = ""  # run directory; default ~/.qatune/runs/<arch>-<time>
    progress: bool = True

    @property
    def mode(self) -> str:
        return "min" if self.metric.endswith("loss") else "max"
