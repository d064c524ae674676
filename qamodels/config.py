"""The training config: plain values, overridable as `key=value` (qamodels.train, and for a
whole search: search.run, where it is the fixed base of every trial)."""

from __future__ import annotations

from dataclasses import dataclass

from data_prep.cli import arg
from qamodels.embedding import MODES

METRICS = ("valid_accuracy", "valid_macro_f1", "valid_loss")


@dataclass(frozen=True)
class TrainConfig:
    arch: str = arg("cnn_parallel", "the architecture (qamodels.registry)")
    epochs: int = arg(10, "epochs at most", min=1)
    batch_size: int = arg(256, "training batch size", min=1)
    optimizer: str = arg("adamw", "optimizer", choices=("adam", "adamw", "sgd"))
    lr: float = arg(2e-3, "peak learning rate of the top layers", above=0)
    weight_decay: float = arg(0.01, "weight decay", min=0)
    momentum: float = arg(0.9, "momentum (sgd only)", min=0)
    scheduler: str = arg(
        "onecycle",
        "learning-rate schedule, stepped per batch (plateau: per epoch on the metric)",
        choices=("none", "cosine", "onecycle", "warmup", "plateau"),
    )
    warmup_fraction: float = arg(0.1, "share of all steps spent warming up (warmup, onecycle)",
                                 min=0)  # fmt: skip
    grad_clip: float = arg(1.0, "gradient norm clip; 0: off", min=0)
    label_smoothing: float = arg(0.0, "share of each label spread over all classes", min=0, below=1)
    ema_epochs: float = arg(
        1.0,
        "score and keep a moving average of the weights over about this many epochs; 0: off",
        min=0,
    )
    patience: int = arg(3, "epochs without a better metric before stopping early", min=1)
    metric: str = arg("valid_accuracy", "what chooses the best epoch and model", choices=METRICS)
    bucket: bool = arg(True, "batches of questions of similar length")
    trim: bool = arg(True, "cut each batch to its longest question")
    seed: int = arg(0, "seed of weights, batch order, subsets (and of a search's sampler)", min=0)
    device: str = arg("auto", "auto, cpu, cuda or cuda:N")
    amp: bool = arg(True, "bf16 autocast on CUDA")
    compile: bool = arg(
        False,
        "torch.compile the training steps (CUDA graphs on a GPU), for launch-bound models; "
        "measure first: bench/train_bench.py compile=true",
    )
    embedding: str = arg("random", "embedding mode (qamodels.embedding)", choices=MODES)
    embedding_dim: int = arg(128, "width of a random embedding (pretrained modes take theirs)",
                             min=1, max=4096)  # fmt: skip
    vectors: str = arg(
        "glove-6b-50d", "pretrained vectors: a .vec/.vec.zip/.txt path or glove-6b-50d"
    )
    embedding_lr: float = arg(1e-4, "the fine-tuned embedding's own learning rate", above=0)
    lm_checkpoint: str = arg(
        "", "from qamodels.lm / qamodels.mlm (embedding=lm_*); several: comma-separated"
    )
    lr_decay: float = arg(1.0, "ULMFiT: lower layer groups learn at lr / lr_decay**depth",
                          above=0)  # fmt: skip
    gradual_unfreeze: bool = arg(False, "ULMFiT: unfreeze one layer group per epoch from the top")
    max_train_rows: int = arg(0, "0: all of train; else a seeded subset (quick runs, tests)", min=0)
    out_dir: str = arg("", "run directory; default ~/.qatune/runs/<arch>-<time>")
    progress: bool = arg(True, "progress bars (only ever drawn on a terminal)")

    @property
    def mode(self) -> str:
        return "min" if self.metric.endswith("loss") else "max"
