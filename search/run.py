r"""The main job: search architectures and hyperparameters with Ray Tune, Optuna and ASHA.

    python -m search.run arch=all raw_dir=../shared/data/amazon_qa categories=all \
        valid_size=0.1 train_size=0.6
    python -m search.run arch=dan,cnn_residual gpus_per_trial=0.25 max_concurrent=4
    python -m search.run ... grad_clip=0.5 amp=false   # training keys fixed for every trial
    python -m search.run ... resume=true              # continue an interrupted search
    python -m search.run resume=~/qatune_results/qatune   # the same, by experiment directory
    python -m search.run --help                       # every key, its type, default and help
    tensorboard --logdir ~/qatune_results/qatune      # compare the trials

Keys go to the data config (data_prep.PrepConfig), the search config
(search.config.SearchConfig) or the training config every trial starts from
(qamodels.TrainConfig). The data is prepared once; the trials run (recipes first, on GPU
shares when the cluster has GPUs: search/resources.py) on the data without its test split,
which reaches them through Ray's object store, while the TF-IDF baseline fits beside them.
At the end, in <storage_path>/<name>: report.md, leaderboard.md/.csv, final.csv, trials.csv,
best_model/ and best_ensemble/; the last line is the test result.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pickle
import sys
from collections.abc import Iterator
from pathlib import Path

import ray
import torch

from data_prep import PreparedData, PrepConfig, prepared_data
from data_prep.cli import configure_logging, fail, help_text, split_overrides, typed_keys
from data_prep.embeddings import load_embeddings
from data_prep.errors import QatuneError
from data_prep.interrupt import GUARD, Interrupted
from qamodels.config import TrainConfig
from qamodels.embedding import PRETRAINED_MODES
from qamodels.spaces import SEARCHED_TRAINING
from search import budget
from search.autoscaler import autoscaling
from search.baseline import cancel_baseline, start_baseline
from search.budget import BudgetStopper
from search.checkpoints import (
    refill_deleted_checkpoints,
    remove_empty_checkpoints,
)
from search.cluster import check_shared_storage, connect
from search.conclude import conclude
from search.config import (
    SearchConfig,
    SearchConfigError,
    SearchInterrupted,
    validate,
    with_absolute_paths,
)
from search.console import BASELINE, Console
from search.experiment import (
    CONFIG_FILE,
    ignored_on_resume,
    mark_partial,
    open_experiment,
    resume_command,
)
from search.fused_trials import (
    LeaveOnEnd,
    describe_fused,
    fused_placement,
    run_fused_trial,
    start_executor,
)
from search.interrupt import (
    EndedTrials,
    StorageWatch,
    stop_tune,
    tune_phase,
)
from search.nodes import NodeWatch
from search.pretraining import with_pretrained_lm
from search.publish import PUBLISHED
from search.resources import Placement, place
from search.searcher import make_searcher
from search.storage import write_failure
from search.trainable import run_trial, trial_dirname


def make_tuner(config: SearchConfig, data: PreparedData, placement: Placement, executor=None):
    from ray import tune
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search import ConcurrencyLimiter

    from search.schedulers import FirstRungByArchitecture, SchedulerState

    # Our own TensorBoard writer replaces Ray's (see search/tensorboard.py); read by the Tuner.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    # search/console.py says what a user needs: a line per ended or failed trial (the whole
    # traceback stays in the trial's error.txt). Ray's own output engine prints a box per
    # failed attempt at every verbosity; its older one is silent at verbose=0.
    os.environ.setdefault("TUNE_PRINT_ALL_TRIAL_ERRORS", "0")
    os.environ["RAY_AIR_NEW_OUTPUT"] = "1" if config.progress_table else "0"
    # A checkpoint with num_to_keep=1 forces a snapshot of the experiment state (a small JSON
    # and the searcher): cheap on a filesystem, so Ray's "may become a bottleneck" warning is
    # noise here.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")

    # The test split stays in the driver: no trial, scheduler or searcher ever receives it.
    if executor is not None:  # fuse=N: trials wait on the executor, which holds the device
        placement = fused_placement(config)
    trainable = tune.with_resources(
        tune.with_parameters(run_fused_trial if executor is not None else run_trial,
                             data=data.without_test(), search_config=config),
        placement.resources,
    )  # fmt: skip
    if config.resuming:
        try:
            return tune.Tuner.restore(
                config.location.fs_path, trainable, resume_unfinished=True,
                resume_errored=True, storage_filesystem=config.location.fs,
            )  # fmt: skip
        except (AttributeError, ModuleNotFoundError) as err:  # unpickling tuner.pkl
            raise SearchConfigError(
                f"resume={config.experiment_path}: its saved search state names code this "
                f"version of qatune does not have ({err}); resume it with the version that "
                "started it, or start a new experiment"
            ) from None
        except (EOFError, pickle.UnpicklingError, ValueError, KeyError, OSError) as err:
            raise SearchConfigError(
                f"resume={config.experiment_path}: its saved search state (tuner.pkl, "
                f"experiment_state-*.json) is damaged ({str(err).splitlines()[0][:120]}); "
                "start a new experiment (another name=)"
            ) from None
    searcher = make_searcher(config, gpu=placement.on_gpu)
    rungs = {"max_t": config.max_epochs, "grace_period": config.grace_period,
             "reduction_factor": config.reduction_factor}  # fmt: skip
    if config.trial_scheduler == "asha_by_arch":
        scheduler = FirstRungByArchitecture(**rungs)
    elif config.trial_scheduler == "asha":
        scheduler = ASHAScheduler(time_attr="training_iteration", **rungs)
    else:
        scheduler = FIFOScheduler()
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            metric=config.metric,
            mode=config.mode,
            search_alg=ConcurrencyLimiter(searcher, max_concurrent=placement.max_concurrent),
            scheduler=scheduler,
            num_samples=config.num_samples,
            trial_name_creator=trial_dirname,
            trial_dirname_creator=trial_dirname,
            # One actor per concurrent slot for the whole search (Ray's default starts a
            # process per trial: a fresh Python with torch to import, seconds each time).
            reuse_actors=config.reuse_actors,
        ),
        run_config=tune.RunConfig(
            name=config.name,
            # Through search/storage.py: a URI's filesystem, or local files written whole.
            storage_path=config.location.root,
            storage_filesystem=config.location.fs,
            # One resumable state per trial, the newest: the best weights are the trial's
            # best_model/ (search/trainable.py), so no older state is kept for them.
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            stop=BudgetStopper(),  # time_budget=: each trial ends at its next report after it
            failure_config=tune.FailureConfig(max_failures=config.max_failures),
            # Cloud storage: trials' own files (events, best model) travel as artifacts.
            sync_config=tune.SyncConfig(sync_artifacts=config.location.remote),
            callbacks=[
                CSVLoggerCallback(),
                JsonLoggerCallback(),
                StorageWatch(config.location),  # before EndedTrials: its trial did not end
                EndedTrials(),
                NodeWatch(config.node_wait, stop_tune),
                SchedulerState(scheduler),  # Ray Tune does not save schedulers
                Console(config.num_samples, config.metric, config.mode),
                *([LeaveOnEnd()] if executor is not None else []),
            ],  # fmt: skip
            verbose=1 if config.progress_table else 0,  # Ray's own table, when asked for
        ),
    )


def run_search(config: SearchConfig, data: PreparedData):
    """Run (or resume) the search on the Ray instance this process is connected to; write
    the leaderboard, the TensorBoard experiment and the best model. Returns (results, board).
    The caller holds the experiment (search.experiment.open_experiment)."""
    scaling = autoscaling() if config.address else None  # a local Ray has no autoscaler
    placement = place(config, ray.cluster_resources(), scaling)
    print(describe_fused(config, placement) if config.fuse else placement.describe())
    baseline = start_baseline(config, data)  # beside the trials, on a CPU they leave free
    BASELINE[:] = [baseline]  # the progress line shows its score once it is there
    try:
        if set(config.embedding_modes()) & set(PRETRAINED_MODES):
            load_embeddings(data, config.train.vectors)  # built once here, not by each trial
        config = with_pretrained_lm(config, data)
        if config.resuming and not config.location.remote:
            refill_deleted_checkpoints(config.experiment_path)
        executor = (
            start_executor(config, data.without_test(), placement.on_gpu) if config.fuse else None
        )
        tuner = make_tuner(config, data, placement, executor)
        budget.start(budget.parse_duration(config.time_budget))
        try:
            with tune_phase():  # a signal now stops the trials the way Ray Tune does
                results = tuner.fit()
        finally:
            if executor is not None:
                ray.kill(executor)
        remove_empty_checkpoints(config.experiment_path)
        return conclude(config, data, results, baseline, placement)
    finally:
        BASELINE.clear()
        cancel_baseline(baseline)


def parse_args(argv: list[str]) -> tuple[PrepConfig, SearchConfig]:
    """Data keys, search keys, and training keys that fix a value for every trial: each
    searched training key typed is fixed, whatever its value (search.config fixed_keys)."""
    prep, config, train = split_overrides(argv, PrepConfig, SearchConfig, TrainConfig)
    typed = typed_keys(argv)
    fixed = sorted(set(config.fixed_keys) | (typed & set(SEARCHED_TRAINING)))
    config = dataclasses.replace(config, train=train, fixed_keys=tuple(fixed))
    config = with_absolute_paths(config)
    validate(config, torch.cuda.device_count(), typed)
    return prep.with_absolute_paths(), config


def main(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        print(help_text(SearchConfig, "search keys:"))
        print(
            help_text(TrainConfig, "training keys (fixed for every trial; the searched ones vary):")
        )
        print(help_text(PrepConfig, "data keys:"))
        return 0
    configure_logging()
    with GUARD.handling():
        return run_command(argv)


def run_command(argv: list[str]) -> int:
    config, callers_ray = None, ray.is_initialized()  # a caller's Ray is left to the caller
    PUBLISHED.clear()  # a command run again in the same process publishes afresh
    try:
        given = parse_args(argv)
        with open_experiment(given[1], given[0]) as (config, prep):  # locked before any write
            warn_ignored(typed_keys(argv), given, (prep, config))
            data = prepared_data(prep)
            # From where the command started: Ray puts the driver's working directory on its
            # workers' import path (a checkout run without `pip install` imports from there).
            connect(config.address, config.ray_cpus)  # the guard's handlers back after it
            # Every path is absolute by now; the working directory may not last: `ray job
            # stop` removes a job's working_dir while the driver still stops, and Ray Tune's
            # last listing of the experiment then failed on os.getcwd().
            with working_directory(config.experiment_path):
                check_shared_storage(os.path.expanduser(config.storage_path))
                run_search(config, data)
    except Interrupted as stop:
        return stopped(stop, config)
    except QatuneError as err:
        return fail(err)
    except OSError as err:
        why = write_failure(err)
        if config is None or why is None:
            raise
        return fail(SearchInterrupted(
            f"{config.location} is {why} (writing {err.filename or 'a file'}); make room there "
            f"(or writable), then resume: {resume_command(config.location)}"
        ))  # fmt: skip
    finally:  # also a Ray a signal stopped half-way through its start
        if not callers_ray and ray.is_initialized():
            disconnect()
    return 0


@contextlib.contextmanager
def working_directory(path: Path) -> Iterator[None]:
    """Inside `path`, back where the command started after (a caller's process keeps its own)."""
    start = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.chdir(start)


def warn_ignored(typed: set[str], given, saved) -> None:
    """A resume runs with the experiment's own settings: say which typed keys it ignored."""
    ignored = ignored_on_resume(typed, given, saved) if given[1].resuming else []
    if ignored:
        print(f"resume keeps the experiment's settings; ignored: {', '.join(ignored)} (a new "
              "name= starts a new experiment with them)", file=sys.stderr)  # fmt: skip


def disconnect() -> None:
    """Stop this command's Ray here, under the signal guard, not at exit: that takes seconds,
    and after main Python restores SIG_DFL, so a signal in them killed the driver (exit -2).
    Everything is written and said by now: a signal here ends the process at once."""
    with GUARD.ending():
        ray.shutdown()


def stopped(stop: Interrupted, config: SearchConfig | None) -> int:
    """A signal ended the search: say how far it came; the resume command is the last line."""
    name = stop.name
    experiment = config.experiment_path if config else None
    if experiment is None or not (experiment / CONFIG_FILE).is_file():
        print(f"stopped by {name} before the search started: nothing was written",
              file=sys.stderr)  # fmt: skip
        return stop.exit_code
    if config.experiment_path in PUBLISHED:  # the signal came after the end was published
        print(f"stopped by {name} after the search had ended: its results are complete",
              file=sys.stderr)  # fmt: skip
        return stop.exit_code
    mark_partial(config.location)
    detail = f" ({stop.detail})" if stop.detail else ""
    print(f"stopped by {name}{detail}: nothing final was written, the experiment is marked "
          f"PARTIAL", file=sys.stderr)  # fmt: skip
    print(f"resume: {resume_command(config.location)}", file=sys.stderr)
    return stop.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
