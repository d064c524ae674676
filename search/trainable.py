"""One Ray Tune trial: decode the sampled config, train, report every epoch (with a checkpoint
on a new best epoch, at ASHA's rungs and at the end).

The prepared data arrives through Ray's object store (`tune.with_parameters`): numpy arrays
read zero-copy, never re-tokenized. A restarted trial resumes from its last checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
import time
from pathlib import Path

import ray
import torch
from ray import tune

from data_prep.atomic import write_text
from data_prep.cli import check_fields
from data_prep.store import PreparedData
from qamodels import plots
from qamodels.config import TrainConfig
from qamodels.spaces import decode
from qamodels.trainer import EpochEnd, Trainer, TrainResult
from search.config import SearchConfig
from search.searcher import FINISHED
from search.tensorboard import TrialWriter, flatten

BEST_MODEL_DIR = "best_model"
# The config a trial really ran (an LM checkpoint sets the encoder's shape), written once in
# its directory beside its results; the driver reads it for the HParams experiment.
RESOLVED_CONFIG = "resolved_config.json"


def train_config(config: SearchConfig, arch: str, overrides: dict, use_gpu: bool) -> TrainConfig:
    """The search's TrainConfig (its fixed keys) with the trial's sampled values laid over."""
    device = "cuda" if use_gpu else "cpu"
    return check_fields(
        dataclasses.replace(
            config.train, **overrides, arch=arch, epochs=config.max_epochs, device=device
        )  # fmt: skip
    )


def trial_name(arch: str, trial_id: str) -> str:
    """`<arch>_<trial id>`: the trial's name in the progress table and its directory (Ray's
    own is 200 characters of parameters); the trial finds its directory by it."""
    return f"{arch}_{trial_id}"


def trial_dirname(trial) -> str:
    """Ray's trial_name_creator / trial_dirname_creator."""
    return trial_name(trial.config.get("arch", "trial"), trial.trial_id)


def resolved_config(trial_path: str | Path, config: dict) -> dict:
    """What a trial ran (its RESOLVED_CONFIG), or the sampled config if it never started."""
    path = Path(trial_path) / RESOLVED_CONFIG
    return json.loads(path.read_text()) if path.is_file() else config


def trial_output_dir(config: SearchConfig, arch: str) -> Path:
    """Where a trial writes its TensorBoard events and best model: straight into its
    directory under storage_path when that is a filesystem path (shared by every node on a
    cluster), so nothing depends on a later sync from the node it ran on; for cloud storage,
    the trial's working directory, which Ray uploads as artifacts (see search.run)."""
    if config.location.remote:
        return Path(tune.get_context().get_trial_dir())
    path = config.experiment_path / trial_name(arch, tune.get_context().get_trial_id())
    path.mkdir(parents=True, exist_ok=True)
    return path


def real_config(config: dict, transferred: dict) -> dict:
    """What really ran: an lm_* trial's encoder shape comes from the checkpoint, not the
    search space (which does not sample it)."""
    arch = config.get("arch", "")
    return {**config, arch: {**config.get(arch, {}), **transferred}} if transferred else config


def model_summary(params: dict) -> str:
    """The model's parameters in one cell: `hidden=128 layers=1 windows=3,4,5 ...`."""
    return " ".join(f"{k}={v}" for k, v in flatten(params).items())


def rungs(config: SearchConfig) -> set[int]:
    """The epochs at which ASHA compares trials (grace * reduction**k up to max_epochs)."""
    if config.trial_scheduler == "none":
        return set()
    epochs, epoch = set(), config.grace_period
    while epoch < config.max_epochs:
        epochs.add(epoch)
        epoch *= config.reduction_factor
    return epochs


def checkpoint_due(end: EpochEnd, config: SearchConfig) -> bool:
    """A resumable state on a new best epoch, at ASHA's rungs and at the end; not every
    epoch: each state is the model with its optimizer (3x the weights), written to storage
    every node shares. A failed or interrupted trial redoes the epochs since its last one."""
    return end.improved or end.last or end.metrics["epoch"] in rungs(config)


def startup_seconds() -> float:
    """Seconds since this worker process started (Ray's worker start and the imports, for the
    first trial an actor runs; bench/packing_bench.py shows it beside a plain process); NaN
    without psutil (Ray's dashboard extra and the dev extra bring it)."""
    try:
        import psutil
    except ImportError:
        return math.nan
    return time.time() - psutil.Process().create_time()


def run_trial(config: dict, data: PreparedData, search_config: SearchConfig) -> None:
    entered, startup = time.perf_counter(), startup_seconds()
    arch, params, overrides = decode(config)
    use_gpu = bool(ray.get_gpu_ids()) and torch.cuda.is_available()  # a share was granted
    torch.set_num_threads(max(1, int(search_config.cpus_per_trial)))
    trainer = Trainer(train_config(search_config, arch, overrides, use_gpu), data, params)
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            trainer.restore(Path(directory))
    setup = time.perf_counter() - entered  # the data on the device, the model built
    trial_dir = trial_output_dir(search_config, arch)
    resolved = real_config(config, trainer.transferred)
    writer = TrialWriter(trial_dir, resolved)
    if checkpoint is None:
        write_text(trial_dir / RESOLVED_CONFIG, json.dumps(resolved))
        writer.start()

    def on_epoch(end: EpochEnd) -> None:
        metrics = end.metrics
        epoch, image = metrics["epoch"], None
        if end.improved:  # a new best epoch: keep the model and its confusion matrix
            partial = TrainResult(metrics, list(trainer.history), "in progress")
            trainer.save_run(trial_dir / BEST_MODEL_DIR, partial, plot=False)
            image = plots.confusion_image(trainer.best_confusion)
        writer.epoch(metrics, epoch, image)
        report = {
            **metrics,
            "arch": arch,
            "parameters": trainer.parameter_count,
            "model": model_summary(trainer.params),
            "node_id": ray.get_runtime_context().get_node_id(),  # the node, not just its IP
            "device": str(trainer.device),
            "resources": ray.get_runtime_context().get_assigned_resources(),
            "startup_s": startup,  # where the trial's time went before its first batch
            "setup_s": setup,
            FINISHED: end.last,  # the trainer ended it, not the scheduler (search/searcher.py)
        }
        if not checkpoint_due(end, search_config):
            tune.report(report)
            return
        with tempfile.TemporaryDirectory() as directory:
            end.save_state(Path(directory))
            tune.report(report, checkpoint=tune.Checkpoint.from_directory(directory))

    try:
        result = trainer.fit(on_epoch=on_epoch)
    finally:  # also when the scheduler stops the trial (Ray ends its thread in tune.report)
        writer.close()
    if result.history and result.stopped.startswith("non-finite"):
        raise RuntimeError(result.stopped)
