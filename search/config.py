"""The search config and its checks, all done before Ray starts."""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from data_prep.cli import ConfigError, arg
from data_prep.embeddings import GLOVE_PACKAGE, vectors_missing
from data_prep.errors import QatuneError
from qamodels.config import TrainConfig
from qamodels.embedding import LM_MODES, MODES
from qamodels.registry import ARCHITECTURES
from qamodels.spaces import SEARCHED_TRAINING
from search import budget
from search.storage import Location, check_reachable, is_uri, split_experiment_uri


class SearchConfigError(ConfigError):
    """A search setting that cannot work here (checked before Ray starts)."""


class SearchError(QatuneError):
    """A search that produced nothing to report (every trial failed)."""


class SearchInterrupted(QatuneError):
    """A search stopped before its trials ended; what it wrote is marked partial."""


@dataclass(frozen=True)
class SearchConfig:
    """The search; `train` is the fixed base of every trial (every TrainConfig key can be set
    for a whole search, e.g. grad_clip=0.5 amp=false), the sampled values laid over it."""

    arch: str = arg("all", "all, one architecture, or a comma list: dan,cnn_residual")
    # 40, not 32: a larger library for the ensemble; on the sample's three splits 40 trials
    # gave +1.99 / +1.20 points over the baseline (ensemble / single) against +1.90 / +1.18,
    # at about 11 minutes on 2 cores (BENCHMARKS.md, "The trial budget").
    num_samples: int = arg(40, "trials", min=1)
    family_share: float = arg(
        0.25,
        "the trials one architecture may take, as a share of num_samples (never below an "
        "even split), past which it gets more only while its trials cost no more than the "
        "average trial; 1: no cap (search/searcher.py)",
        above=0,
        max=1,
    )
    max_epochs: int = arg(15, "epochs per trial at most (ASHA's max_t)", min=1)
    grace_period: int = arg(2, "epochs every trial gets before ASHA may stop it", min=1)
    reduction_factor: int = arg(3, "ASHA keeps the top 1/reduction_factor at each rung", min=2)
    max_concurrent: int = arg(
        0, "trials running at once; 0: as many as the GPUs hold at that share (CPUs only: 2)", min=0
    )
    cpus_per_trial: float = arg(1.0, "CPUs each trial reserves", above=0)
    gpus_per_trial: str = arg(
        "auto",
        "GPU share per trial: auto (a quarter when the Ray cluster has GPUs, "
        "search/resources.py; else 0), 0 (CPUs only), or e.g. 0.5 (2 trials per GPU)",
    )
    searcher: str = arg(
        "optuna", "optuna: TPE; random: random search", choices=("optuna", "random")
    )
    trial_scheduler: str = arg(
        "asha_by_arch",
        "asha_by_arch: ASHA whose first rung compares each architecture's trials among "
        "themselves, later rungs all trials, each architecture's first trial (its recipe) "
        "never stopped (search/schedulers.py); asha: all trials at "
        "every rung; none: every trial runs max_epochs",
        choices=("asha_by_arch", "asha", "none"),
    )
    storage_path: str = arg(
        "~/qatune_results",
        "experiments land in <storage_path>/<name>: a directory all nodes of a cluster share, "
        "or a storage URI (s3://bucket/prefix, gs://...; pyarrow's query keys such as "
        "endpoint_override=host:port&scheme=http; search/storage.py)",
    )
    name: str = arg("qatune", "the experiment's directory name")
    address: str = arg("", "a running Ray cluster (e.g. auto); empty: start Ray locally")
    resume: str = arg(
        "", "true: continue <storage_path>/<name>; or the experiment's directory or URI"
    )
    overwrite: bool = arg(False, "replace an existing experiment of this name (deletes it)")
    max_failures: int = arg(2, "retries of a failed trial, from its last checkpoint", min=0)
    time_budget: str = arg(
        "",
        "wall-clock budget of the trials, e.g. 90m, 2h, 5400 (s): no trial starts after it, "
        "running ones end at their next epoch, the end still runs (search/budget.py); "
        "empty: none",
    )
    progress_table: bool = arg(
        False,
        "Ray Tune's own progress table (its scheduler's internals) besides the search's "
        "lines: a line per ended trial and a progress line every 30 s",
    )
    keep_checkpoints: bool = arg(
        False,
        "keep each trial's resumable state (checkpoint_*/: weights, optimizer) after the search "
        "has ended; by default they go, as nothing can resume a finished trial",
    )
    node_wait: float = arg(
        300.0,
        "seconds trials may wait for a node with none running (an autoscaler starting "
        "workers) before the search stops, resumable, with one line",
        above=0,
    )
    embeddings: tuple[str, ...] = arg(
        ("random", "frozen", "finetune"), "embedding modes to search", choices=MODES
    )
    ray_cpus: int = arg(0, "CPUs of a local Ray; 0: all cores", min=0)
    reuse_actors: bool = arg(True, "run trial after trial in the same worker processes")
    recipes: bool = arg(True, "each architecture's published configuration runs first")
    pretrain: str = arg(
        "auto",
        "pretrain language models before the trials (search/pretraining.py), then lm_frozen/"
        "lm_finetune join the search; auto: when the unlabeled split holds >= 1,000,000 tokens "
        "of questions and answers and no lm_checkpoint= is given",
        choices=("auto", "true", "false"),
    )
    pretrain_epochs: int = arg(4, "passes of the language model over the task's text", min=1)
    pretrain_rows: int = arg(0, "0: all the text; else a seeded subset (quick runs)", min=0)
    baseline: bool = arg(True, "TF-IDF + linear model before the trials: the bar to beat")
    ensemble_top: int = arg(
        8, "top trials (on valid) whose best checkpoints the ensemble may use", min=1
    )
    refit: bool = arg(
        True,
        "after selection, train the best single model again on train + valid for the epochs "
        "its trial chose, where its family gains from it (the CNNs; search/refit.py): "
        "best_model/ is then that model",
    )
    fixed_keys: tuple[str, ...] = arg(
        (),
        "searched training keys every trial takes from the command line instead of sampling; "
        "typing one (batch_size=512, or lr=0.002, its default) adds it",
        choices=SEARCHED_TRAINING,
    )
    fuse: int = arg(
        0,
        "trials of one architecture and shape trained together as one batched model, this "
        "many per group, in one actor holding one device (search/fused_trials.py; for a GPU "
        "that small trials leave idle); 0: every trial alone",
        min=0,
    )
    train: TrainConfig = field(default_factory=TrainConfig)

    @property
    def metric(self) -> str:
        return self.train.metric

    @property
    def seed(self) -> int:
        return self.train.seed

    @property
    def archs(self) -> list[str]:
        return list(ARCHITECTURES) if self.arch == "all" else self.arch.split(",")

    @property
    def resuming(self) -> bool:
        return self.resume.lower() not in ("", "false", "0", "no")

    @property
    def mode(self) -> str:
        return self.train.mode

    @property
    def location(self) -> Location:
        return Location(self.storage_path, self.name)

    @property
    def experiment_path(self) -> Path:
        """Where the driver works: the experiment directory (for a URI, its local copy)."""
        return self.location.local

    def embedding_modes(self) -> list[str]:
        modes = list(self.embeddings)
        if self.train.lm_checkpoint:
            modes += [m for m in LM_MODES if m not in modes]
        return modes


def with_absolute_paths(config: SearchConfig) -> SearchConfig:
    """Trials run in their own working directories: make the file paths they read absolute."""

    def absolute(path: str) -> str:
        return str(Path(os.path.expanduser(path)).absolute()) if path else path

    train = config.train
    vectors = train.vectors if train.vectors == GLOVE_PACKAGE else absolute(train.vectors)
    lm_checkpoint = ",".join(absolute(p) for p in train.lm_checkpoint.split(",") if p)
    train = dataclasses.replace(train, vectors=vectors, lm_checkpoint=lm_checkpoint)
    config = dataclasses.replace(config, train=train)
    if config.resuming and config.resume.lower() not in ("true", "1", "yes"):
        if is_uri(config.resume):  # resume=<experiment URI>
            storage_path, name = split_experiment_uri(config.resume)
        else:  # resume=<experiment dir>
            experiment = Path(absolute(config.resume))
            storage_path, name = str(experiment.parent), experiment.name
        config = dataclasses.replace(config, storage_path=storage_path, name=name, resume="true")
    return config


def check_storage(config: SearchConfig) -> None:
    """A URI that answers and takes a file; or an absolute directory this user can write."""
    if is_uri(config.storage_path):
        if set(config.name) & set("?#%"):
            raise SearchConfigError(f"name={config.name!r}: no ?, # or % in a name on a URI")
        check_reachable(config.location)
        return
    storage = os.path.expanduser(config.storage_path)
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


def check_vectors(vectors: str) -> None:
    """The pretrained vectors that the frozen / finetune embedding modes need are there."""
    if why := vectors_missing(vectors):
        raise SearchConfigError(
            f"vectors={vectors}: {why}; the embeddings frozen/finetune read them: use "
            "vectors=<a .vec/.txt file>, vectors=glove-6b-50d or embeddings=random"
        )


def parse_gpus_per_trial(value: str) -> float | None:
    """None for auto, else the share (a one-line error for anything else)."""
    if value == "auto":
        return None
    try:
        share = float(value)
    except ValueError:
        share = -1.0
    if not 0 <= share < math.inf:
        raise SearchConfigError(
            f"gpus_per_trial={value}: use auto, 0 (CPUs only) or a share such as 0.25 or 1"
        )
    return share


# Training keys a search sets per trial itself: given on a search's command line they would
# be ignored, so they are refused with the key that does the job.
PER_TRIAL_KEYS = {
    "embedding": "embeddings= (the modes the search samples from, e.g. embeddings=frozen)",
    "epochs": "max_epochs=",
    "device": "gpus_per_trial= (each trial's device follows its GPU share)",
    "out_dir": "storage_path= and name=",
    "progress": "nothing: trials draw no progress bars",
}


def refuse_per_trial_keys(typed: set[str], train: TrainConfig) -> None:
    """Training keys a search sets per trial, typed (at any value) or differing from the
    default (a config built in code): one line naming the key to use instead."""
    default = TrainConfig()
    for key, instead in PER_TRIAL_KEYS.items():
        if key in typed or getattr(train, key) != getattr(default, key):
            raise SearchConfigError(
                f"{key}={getattr(train, key)}: a search sets this per trial; use {instead}"
            )


def validate(config: SearchConfig, gpus_available: int, typed: set[str] = frozenset()) -> None:
    """One-line errors that say what to do; raised before Ray or any trial starts. `typed`:
    the keys the command line gave."""
    refuse_per_trial_keys(typed, config.train)
    budget.parse_duration(config.time_budget)
    name = config.name
    plain = name.isprintable() and name == name.strip() and "/" not in name and "\\" not in name
    if not name or name in (".", "..") or not plain:
        raise SearchConfigError(
            f"name={name!r}: the experiment's directory under storage_path must be one plain "
            "printable name (no /, no line break, not empty, not . or ..), e.g. name=qatune"
        )
    if config.trial_scheduler != "none" and config.grace_period > config.max_epochs:
        raise SearchConfigError(
            f"max_epochs={config.max_epochs} is below grace_period={config.grace_period} (the "
            f"epochs ASHA grants every trial): set grace_period={config.max_epochs} or "
            f"max_epochs>={config.grace_period}"
        )
    unknown = [a for a in config.archs if a not in ARCHITECTURES]
    if unknown:
        raise SearchConfigError(
            f"unknown arch {', '.join(unknown)}: use all or some of {', '.join(ARCHITECTURES)}"
        )
    check_storage(config)
    share = parse_gpus_per_trial(config.gpus_per_trial)
    if share and not config.address and gpus_available == 0:
        raise SearchConfigError(
            f"gpus_per_trial={config.gpus_per_trial} but this machine has no GPU: "
            "set gpus_per_trial=auto or 0, or address= a Ray cluster with GPU nodes"
        )
    if share and share > max(1, gpus_available) and not config.address:
        raise SearchConfigError(f"gpus_per_trial={config.gpus_per_trial}: at most 1 here")
    if set(config.embedding_modes()) & {"frozen", "finetune"}:
        check_vectors(config.train.vectors)
    for lm_checkpoint in filter(None, config.train.lm_checkpoint.split(",")):
        if not Path(lm_checkpoint).is_file():
            raise SearchConfigError(
                f"lm_checkpoint={lm_checkpoint}: no such file; pretrain one with "
                "`python -m qamodels.lm ...`, or leave lm_checkpoint empty (pretrain=true)"
            )
