"""Bad input to `python -m search.run`: a one-line error before Ray or any trial starts."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from data_prep import PrepConfig
from tests.conftest import REPO, SHARED_DATA


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "search.run", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["arch=dan,lstm"], "unknown arch lstm: use all or some of dan, bilstm"),
        (["num_trials=3"], "unknown key or not key=value: 'num_trials=3'; valid keys: data_dir"),
        (["max_epochs=two"], "max_epochs='two': expected int"),
        (["storage_path=results"], "storage_path=results is relative: Ray needs an absolute path"),
        (["gpus_per_trial=0.5"], "gpus_per_trial=0.5 but this machine has no GPU"),
        (["resume=true", "name=never_ran"], "holds no experiment to restore"),
        (["vectors=/no/such.vec"], "vectors=/no/such.vec: no such file"),
        (["lm_checkpoint=/no/lm.pt"], "lm_checkpoint=/no/lm.pt: no such file"),
        (["max_epochs=-1"], "max_epochs=-1: must be >= 1"),
        (["num_samples=0"], "num_samples=0: must be >= 1"),
        (["max_concurrent=-1"], "max_concurrent=-1: must be >= 0"),
        (["metric=nonsense"], "metric='nonsense': use one of valid_accuracy, valid_macro_f1"),
        (["embeddings=random,bogus"], "embeddings='bogus': use one of random, frozen"),
        (["lr=-1"], "lr=-1.0: must be > 0"),
        (["grad_clip=abc"], "grad_clip='abc': expected float"),
        (["amp=maybe"], "amp='maybe': expected a bool (true/false)"),
        (["valid_size=-2"], "valid_size=-2.0: must be >= 0"),
        (["valid_size=1.5"], "valid_size=1.5: must be a whole count >= 1 or a fraction"),
        (["encoding=bogus"], "encoding=bogus: unknown encoding; use e.g. utf-8"),
        (["source=/no/such.csv"], "source=/no/such.csv: no such file; give a .csv"),
        (["source={tmp}"], "a directory; give a .csv, .jsonl or .parquet file"),
        (["data_dir={tmp}/a_file"], "not a writable directory (Not a directory)"),
        (["name="], "name='': the experiment's directory under storage_path must be one"),
        (["name=../escape"], "name='../escape': the experiment's directory"),
        (["name=a/b", "overwrite=true"], "name='a/b': the experiment's directory"),
        (["max_epochs=1"], "max_epochs=1 is below grace_period=2 (the epochs ASHA grants"),
        (["gpus_per_trial=half"], "gpus_per_trial=half: use auto, 0 (CPUs only) or a share"),
        (["cpus_per_trial=100"], "cpus_per_trial=100 but the Ray cluster has 2 CPUs"),
        (["epochs=5"], "epochs=5: a search sets this per trial; use max_epochs="),
        (["device=cuda:1"], "device=cuda:1: a search sets this per trial; use gpus_per_trial="),
        (["out_dir=/tmp/x"], "out_dir=/tmp/x: a search sets this per trial; use storage_path="),
        # values the parser once let through into tracebacks (or a NaN model)
        (["cpus_per_trial=nan"], "cpus_per_trial=nan: must be a finite number"),
        (["valid_size=nan"], "valid_size=nan: must be a finite number"),
        (["lr=nan"], "lr=nan: must be a finite number"),
        (["lr=inf"], "lr=inf: must be a finite number"),
        (["label_smoothing=1.5"], "label_smoothing=1.5: must be < 1"),
        (["length_percentile=101"], "length_percentile=101.0: must be <= 100"),
        (["seed=-1"], "seed=-1: must be >= 0"),
        (["split_seed=-1"], "split_seed=-1: must be >= 0"),
        (["embedding_dim=100000000"], "embedding_dim=100000000: must be <= 4096"),
        (["time_budget=soon"], "time_budget=soon: use a positive duration"),
        (["min_chars=600", "max_chars=10"], "min_chars=600 is above max_chars=10"),
        (["storage_path=nosuch://bucket/results"], "not a storage URI pyarrow can open"),
        (["source={tmp}/q.csv", "max_chars=100"], "max_chars=100: the length filters apply to"),
    ],
)
def test_bad_input_is_one_clear_line(args, message, tmp_path, capsys, local_ray, prepared_sample):
    import torch

    if "gpus_per_trial=0.5" in args and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    (tmp_path / "a_file").write_text("not a directory")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if not any(a.startswith("storage_path") for a in args):
        args = [*args, f"storage_path={tmp_path}"]
    if not any(a.startswith(("source", "data_dir")) for a in args):  # the prepared sample
        given = {a.split("=")[0] for a in args}
        args += [k for k in sample_keys(prepared_sample) if k.split("=")[0] not in given]
    code, _out, err = main_of(args, capsys)
    assert code == 2
    lines = [x for x in err.strip().splitlines() if not x.startswith("INFO ")]  # progress notes
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert message in lines[0]
    assert not list(tmp_path.glob("*/tuner.pkl"))  # nothing started


def sample_keys(prepared_sample) -> list[str]:
    """The keys that find the session's prepared sample (no preparation in the test)."""
    data_dir = Path(prepared_sample.path).parents[1]
    return [
        f"raw_dir={SHARED_DATA}",
        "categories=all",
        "valid_size=0.1",
        "train_size=0.6",
        f"data_dir={data_dir}",
        "num_samples=1",
        "max_epochs=2",
        "max_train_rows=200",
        "baseline=false",
    ]  # a case that fails to fail ends fast


def main_of(args: list[str], capsys) -> tuple[int, str, str]:
    """search.run's own main in this process (a subprocess per case only adds imports)."""
    from search.run import main

    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.e2e
def test_unreachable_cluster_is_one_line_not_endless_retries(tmp_path):
    out = run_cli("address=127.0.0.1:9", f"storage_path={tmp_path}", "embeddings=random",
                  f"raw_dir={SHARED_DATA}", "categories=all", "valid_size=0.1",
                  "train_size=0.6", f"data_dir={tmp_path}")  # fmt: skip
    assert out.returncode == 2, out.stderr[-2000:]
    assert (
        out.stderr.strip()
        .splitlines()[-1]
        .startswith("error: address=127.0.0.1:9: no Ray cluster answers there")
    )


def test_unwritable_storage_path(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    code, _out, err = main_of([f"storage_path={blocker / 'results'}"], capsys)
    assert code == 2
    assert "is not writable" in err and "choose a directory" in err


@pytest.mark.e2e
def test_help_lists_every_key_with_its_default():
    out = run_cli("--help")  # the real command once: the module docstring and every table
    assert out.returncode == 0
    for key in ("num_samples", "grace_period", "gpus_per_trial", "storage_path", "categories"):
        assert key in out.stdout
    assert "categories=all \\\n" in out.stdout  # the docstring's line continuation


def test_data_errors_are_reported_before_ray_starts(tmp_path, shared_data, capsys):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "single_qa_Appliances.json.gz").symlink_to(shared_data / "single_qa_Appliances.json.gz")
    args = [f"raw_dir={raw}", "categories=all", f"data_dir={tmp_path}", f"storage_path={tmp_path}"]
    code, _out, err = main_of(args, capsys)
    assert code == 1
    assert "1 classes (found: appliances" in err and "categories=all" in err


def test_an_existing_experiment_is_refused_unless_resumed_or_overwritten(tmp_path, capsys):
    experiment = tmp_path / "taken"
    experiment.mkdir()
    (experiment / "qatune_config.json").write_text("{}")
    (experiment / "tuner.pkl").write_text("")  # its trials began
    code, _out, err = main_of([f"storage_path={tmp_path}", "name=taken"], capsys)
    assert code == 2
    assert "already holds an experiment: resume=true to continue it, overwrite=true" in err
    assert (experiment / "qatune_config.json").read_text() == "{}"  # untouched


@pytest.mark.e2e
def test_a_running_experiment_is_locked(tmp_path):
    from search.config import SearchConfigError
    from search.experiment import claim

    with claim(tmp_path / "busy"):
        child = subprocess.run(
            [sys.executable, "-c", "import sys; from pathlib import Path; "
             "from search.experiment import claim; "
             "claim(Path(sys.argv[1])).__enter__()", str(tmp_path / "busy")],
            capture_output=True, text=True, cwd=REPO,
        )  # fmt: skip
        assert child.returncode != 0 and "is being run by another search (pid" in child.stderr
    with claim(tmp_path / "busy"):  # released: free again
        pass
    with pytest.raises(SearchConfigError, match="being run by another search"):
        with claim(tmp_path / "busy"), claim(tmp_path / "busy"):
            pass


def test_overwrite_deletes_only_a_qatune_experiment_of_that_name(tmp_path, capsys):
    """name= (empty) with overwrite=true once removed the whole storage_path."""
    other = tmp_path / "other_experiment"
    other.mkdir()
    (other / "qatune_config.json").write_text("{}")
    (other / "tuner.pkl").write_text("")
    mine = tmp_path / "not_qatune"
    mine.mkdir()
    (mine / "notes.txt").write_text("a user's own file")
    for name in ("", ".", "not_qatune"):
        code, _out, err = main_of([f"storage_path={tmp_path}", f"name={name}",
                                   "overwrite=true"], capsys)  # fmt: skip
        assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert "is not a qatune experiment" in err
    assert (other / "tuner.pkl").exists() and (mine / "notes.txt").read_text()


def test_an_experiment_stopped_before_its_trials_is_started_again(tmp_path):
    """Only the saved settings (a signal or an error came before the trials): neither the
    same command nor resume=true is refused, and resume starts it with those settings."""
    from search.config import SearchConfig
    from search.experiment import CONFIG_FILE, check_new, not_started, open_experiment

    search = SearchConfig(storage_path=str(tmp_path), name="early", num_samples=5)
    prep = PrepConfig(categories=("all",))
    with open_experiment(search, prep):
        pass
    assert not_started(tmp_path / "early") and (tmp_path / "early" / CONFIG_FILE).is_file()
    check_new(search, overwrite=False)  # the same command: reused
    resuming = dataclasses.replace(search, resume="true", num_samples=99)
    with open_experiment(resuming, prep) as (again, _prep):
        assert again.num_samples == 5 and not again.resuming  # its own settings, fresh start


def test_an_experiment_saved_before_a_data_key_resumes_on_its_own_data(tmp_path):
    """expand_vocab= came after experiments that read unseen words as UNK: resuming one
    keeps that data (its default now would prepare other tensors mid-search)."""
    import json

    from search.config import SearchConfig
    from search.experiment import CONFIG_FILE, open_experiment

    search = SearchConfig(storage_path=str(tmp_path), name="old", num_samples=5)
    with open_experiment(search, PrepConfig(categories=("all",))):
        pass
    saved = json.loads((tmp_path / "old" / CONFIG_FILE).read_text())
    assert saved["data"].pop("expand_vocab") == "glove-6b-50d"
    (tmp_path / "old" / CONFIG_FILE).write_text(json.dumps(saved))
    with open_experiment(dataclasses.replace(search, resume="true"), PrepConfig()) as (_, prep):
        assert prep.expand_vocab == "" and prep.categories == ("all",)


def test_a_stray_settings_file_beside_a_users_files_is_not_an_experiment(tmp_path, capsys):
    """A directory with a qatune_config.json beside the user's thesis was adopted as an
    experiment, and overwrite=true then deleted the thesis."""
    mine = tmp_path / "thesis"
    (mine / "src").mkdir(parents=True)
    (mine / "thesis.tex").write_text("chapter 1")
    (mine / "qatune_config.json").write_text("{}")
    (mine / "tuner.pkl").write_text("")
    before = sorted(p.name for p in mine.rglob("*"))
    for extra in ([], ["overwrite=true"], ["resume=true"]):
        code, _out, err = main_of([f"storage_path={tmp_path}", "name=thesis", *extra], capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert "thesis.tex" in err and "which no search writes" in err
    assert sorted(p.name for p in mine.rglob("*")) == before
    assert (mine / "qatune_config.json").read_text() == "{}"


def test_overwrite_deletes_what_the_search_wrote_and_nothing_added_beside_it(tmp_path, capsys):
    from search.config import SearchConfig
    from search.experiment import MARKER_FILE, open_experiment

    search = SearchConfig(storage_path=str(tmp_path), name="exp")
    with open_experiment(search, PrepConfig()):
        pass
    experiment = tmp_path / "exp"
    (experiment / "tuner.pkl").write_text("")  # its trials began
    (experiment / "dan_1a2b3c4d").mkdir()
    (experiment / "leaderboard.md").write_text("| arch |")
    (experiment / "my_notes.txt").write_text("the user's")
    code, _out, err = main_of([f"storage_path={tmp_path}", "name=exp", "overwrite=true"], capsys)
    assert code == 2 and "my_notes.txt" in err and (experiment / "tuner.pkl").exists()

    (experiment / "my_notes.txt").unlink()
    overwrite = dataclasses.replace(search, overwrite=True, num_samples=7)
    with open_experiment(overwrite, PrepConfig()) as (config, _prep):
        assert config.num_samples == 7
        left = {p.name for p in experiment.iterdir()}
        assert left == {MARKER_FILE, ".qatune.lock", "qatune_config.json"}


@pytest.mark.e2e
def test_a_refused_driver_writes_nothing(tmp_path):
    """The second driver on a name once rewrote qatune_config.json before the lock refused
    it: the winner's experiment then held the loser's settings."""
    from search.config import SearchConfig
    from search.experiment import CONFIG_FILE, open_experiment

    search = SearchConfig(storage_path=str(tmp_path), name="busy", num_samples=3)
    with open_experiment(search, PrepConfig()):
        saved = (tmp_path / "busy" / CONFIG_FILE).read_text()
        child = run_cli(f"storage_path={tmp_path}", "name=busy", "num_samples=9")
        assert child.returncode == 2 and "is being run by another search (pid" in child.stderr
        assert (tmp_path / "busy" / CONFIG_FILE).read_text() == saved


def test_training_keys_of_the_command_line_fix_every_trial(tmp_path):
    from search.run import parse_args
    from search.trainable import train_config

    _prep, search = parse_args(["grad_clip=0.5", "amp=false", "bucket=false", "patience=5",
                                f"storage_path={tmp_path}", "embeddings=random"])  # fmt: skip
    trial = train_config(search, "dan", {"lr": 0.003, "batch_size": 64}, use_gpu=False)
    assert (trial.grad_clip, trial.amp, trial.bucket, trial.patience) == (0.5, False, False, 5)
    assert (trial.lr, trial.batch_size, trial.arch, trial.epochs) == (0.003, 64, "dan", 15)


def test_a_searched_key_typed_at_its_default_is_fixed_and_embedding_is_refused(tmp_path):
    """`batch_size=256 lr=0.002` (their defaults) were searched anyway, and embedding=frozen,
    embedding_dim=300 were taken and overwritten by every trial's sample."""
    import optuna

    from search.config import SearchConfigError
    from search.run import parse_args
    from search.searcher import make_searcher

    keys = [f"storage_path={tmp_path}", "embeddings=random"]
    _prep, search = parse_args([*keys, "batch_size=256", "lr=0.002", "embedding_dim=300"])
    assert search.fixed_keys == ("batch_size", "embedding_dim", "lr")
    searcher = make_searcher(search)
    for _ in range(5):
        trial = searcher.study.ask()
        searcher._space(trial)
        assert not {"train/batch_size", "train/lr", "train/embedding_dim"} & set(trial.params)
        searcher.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    _prep, search = parse_args(keys)
    assert search.fixed_keys == ()
    with pytest.raises(SearchConfigError, match="embedding=frozen: a search sets this per "
                       "trial; use embeddings="):  # fmt: skip
        parse_args([*keys, "embedding=frozen"])
    with pytest.raises(SearchConfigError, match="epochs=15: a search sets this per trial"):
        parse_args([*keys, "epochs=15"])  # typed at its default, still refused


def test_an_experiment_saved_by_other_code_is_refused_in_one_line(
    local_ray, prepared_sample, tmp_path
):
    """tuner.pkl names the searcher's class: one this version lacks is a one-line error."""
    from search.config import SearchConfig, SearchConfigError
    from search.resources import place
    from search.run import make_tuner

    experiment = tmp_path / "old"
    experiment.mkdir()
    (experiment / "tuner.pkl").write_bytes(b"csearch.searcher\nPrunedAwareOptunaSearch\n.")
    search = SearchConfig(storage_path=str(tmp_path), name="old", resume=str(experiment))
    placement = place(search, local_ray.cluster_resources())
    with pytest.raises(SearchConfigError, match="resume it with the version that started it"):
        make_tuner(search, prepared_sample, placement)


@pytest.mark.parametrize("content", [b"\x80\x04\x95", b"", b"not a pickle"])
def test_a_damaged_search_state_is_one_line(local_ray, prepared_sample, tmp_path, content):
    from search.config import SearchConfig, SearchConfigError
    from search.resources import place
    from search.run import make_tuner

    experiment = tmp_path / "damaged"
    experiment.mkdir()
    (experiment / "tuner.pkl").write_bytes(content)
    search = SearchConfig(storage_path=str(tmp_path), name="damaged", resume=str(experiment))
    placement = place(search, local_ray.cluster_resources())
    with pytest.raises(SearchConfigError, match="is damaged") as err:
        make_tuner(search, prepared_sample, placement)
    assert len(str(err.value).splitlines()) == 1


@pytest.mark.parametrize("content", ["{", '{"search": {}}', '{"search": {"lr": 1}, "data": {}}'])
def test_damaged_saved_settings_are_one_line(tmp_path, capsys, content):
    from search.config import SearchConfig
    from search.experiment import CONFIG_FILE, open_experiment

    with open_experiment(SearchConfig(storage_path=str(tmp_path), name="exp"), PrepConfig()):
        pass
    (tmp_path / "exp" / "tuner.pkl").write_bytes(b"")  # its trials began
    (tmp_path / "exp" / CONFIG_FILE).write_text(content)
    code, _out, err = main_of([f"resume={tmp_path / 'exp'}"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "qatune_config.json: the experiment's saved settings are damaged" in err


def test_data_paths_are_kept_absolute_for_a_resume_from_anywhere(tmp_path, monkeypatch):
    """The experiment saves its data keys; a relative raw_dir broke a resume started in
    another working directory."""
    from search.run import parse_args

    monkeypatch.chdir(tmp_path)
    prep, _search = parse_args(["raw_dir=raw", "data_dir=~/d", "source=q.csv", "test_source="])
    assert prep.raw_dir == str(tmp_path / "raw") and prep.source == str(tmp_path / "q.csv")
    assert prep.data_dir == str(Path("~/d").expanduser()) and prep.test_source == ""


def test_a_resume_names_the_typed_keys_it_ignores():
    """resume=true with changed keys once ignored them without a word."""
    from search.config import SearchConfig
    from search.experiment import ignored_on_resume

    saved = (PrepConfig(), SearchConfig(num_samples=40))
    given = (PrepConfig(valid_size=0.2), SearchConfig(num_samples=99, resume="true",
                                                      address="auto"))  # fmt: skip
    typed = {"num_samples", "valid_size", "resume", "address", "lr"}
    assert ignored_on_resume(typed, given, saved) == [
        "num_samples=99 (it has 40)",
        "valid_size=0.2 (it has 0.0)",
    ]


def test_an_address_where_something_else_listens_is_one_line(tmp_path, monkeypatch):
    """A port that answers TCP but is not Ray: Ray retried for ever, signals waited for it."""
    import http.server
    import threading

    from search import cluster
    from search.config import SearchConfigError

    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(cluster, "GCS_TIMEOUT_S", 3.0)  # the wait, shortened for the test
    address = f"127.0.0.1:{server.server_address[1]}"
    try:
        with pytest.raises(SearchConfigError, match="no Ray cluster answered within 3 s"):
            cluster.check_gcs_answers(address)
    finally:
        server.shutdown()


@pytest.mark.parametrize("damaged", ["experiment_state-2026-01-01_00-00-00.json",
                                     "search_gen_state-2026-01-01_00-00-00.json",
                                     "searcher-state-2026-01-01_00-00-00.pkl"])  # fmt: skip
def test_a_resume_of_a_damaged_saved_state_is_one_line_before_ray_reads_it(tmp_path, damaged):
    """A truncated searcher state once left the resumed search idle for ever ("Restarting
    experiment", then nothing; the first Ctrl-C did nothing)."""
    import json
    import pickle

    from search.config import SearchConfig, SearchConfigError
    from search.experiment import open_experiment

    search = SearchConfig(storage_path=str(tmp_path), name="cut", num_samples=3)
    with open_experiment(search, PrepConfig()):
        pass
    experiment = tmp_path / "cut"
    (experiment / "tuner.pkl").write_bytes(pickle.dumps({"ray": "tuner"}))  # Ray has run
    (experiment / "experiment_state-2026-01-01_00-00-00.json").write_text(json.dumps({"a": 1}))
    for name in ("search_gen_state-2026-01-01_00-00-00.json",
                 "searcher-state-2026-01-01_00-00-00.pkl"):  # fmt: skip
        (experiment / name).write_bytes(pickle.dumps({"state": list(range(100))}))
    whole = (experiment / damaged).read_bytes()
    (experiment / damaged).write_bytes(whole[: len(whole) // 2])  # a copy cut short
    resume = SearchConfig(storage_path=str(tmp_path), name="cut", resume="true")
    with pytest.raises(SearchConfigError, match=f"its saved search state {damaged} is damaged"):
        with open_experiment(resume, PrepConfig()):
            pass
