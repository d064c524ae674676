"""search.predict and search.evaluate: one-line errors, warnings, and scores that match."""

from __future__ import annotations

import json
import pickle
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from qamodels.baseline import BASELINE_ARRAYS, BASELINE_FILE, PICKLED_BASELINE, fit_baseline
from qamodels.config import TrainConfig
from qamodels.trainer import Trainer
from search import ensemble, evaluate, predict
from tests.conftest import PlantedPickle, test_device


@pytest.fixture(scope="module")
def model_dir(prepared_sample, tmp_path_factory):
    config = TrainConfig(
        arch="dan", epochs=1, max_train_rows=2000, device=test_device(), progress=False
    )
    trainer = Trainer(config, prepared_sample)
    return trainer.save_run(tmp_path_factory.mktemp("model"), trainer.fit(), plot=False)


def run(main, args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["model={tmp}/nothing", "q?"], "no exported model (expected model.pt)"),
        (["model={corrupt}", "q?"], "damaged or truncated model file"),
        (["model={model}", "file={tmp}/missing.txt"], "missing.txt: no such file"),
        (["model={model}", "top=abc", "q?"], "top='abc': expected int"),
        (["model={model}", "top=0", "q?"], "top=0: must be >= 1"),
        (["model={model}", "device=cuda", "q?"], "device=cuda: no CUDA device here"),
        (["model={model}"], "give questions as arguments or file="),
        (["q?"], "model= is required"),
        (["model={model}", "topp=3", "q?"], "unknown key 'topp'; did you mean top? valid keys"),
        (["model={model}", "file={tmp}/empty.txt"], "empty.txt: nothing to predict (empty)"),
        (["model={model}", "  "], "the questions: nothing to predict (empty)"),
        (["model={model}", "file={tmp}/latin1.txt"], "latin1.txt, line 2: not utf-8 text; add"),
    ],
)
def test_predict_bad_input_is_one_line(args, message, model_dir, tmp_path, capsys):
    if "device=cuda" in args and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "model.pt").write_bytes((model_dir / "model.pt").read_bytes()[:1000])
    (tmp_path / "empty.txt").write_text("\n \n")
    (tmp_path / "latin1.txt").write_bytes("fits a civic?\ncaf\u00e9 grinder?\n".encode("latin-1"))
    args = [a.format(tmp=tmp_path, corrupt=corrupt, model=model_dir) for a in args]
    code, _out, err = run(predict.main, args, capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and message in err


def test_questions_after_double_dash_may_hold_equals(model_dir, capsys):
    code, out, _err = run(predict.main, [f"model={model_dir}", "--", "is 1=2 on this?"], capsys)
    assert code == 0 and out.startswith("is 1=2 on this?\n  -> ")


def test_question_of_unknown_words_is_warned(model_dir, capsys):
    code, out, err = run(predict.main, [f"model={model_dir}", "qwxz zzyq", "phone case?"], capsys)
    assert code == 0 and "no known word in 'qwxz zzyq'" in err and "phone case" not in err


def test_evaluate_scores_an_own_labeled_file(model_dir, prepared_sample, tmp_path, capsys):
    texts = prepared_sample.texts("test")[:600]
    labels = [prepared_sample.labels[i] for i in prepared_sample.test.label[:600]]
    source = tmp_path / "mine.csv"
    pd.DataFrame({"question": texts, "topic": labels}).to_csv(source, index=False)
    args = [f"model={model_dir}", f"source={source}", "text_column=question",
            "label_column=topic", f"out={tmp_path / 'eval'}"]  # fmt: skip
    code, out, _err = run(evaluate.main, args, capsys)
    assert code == 0
    probs = predict.Predictor.load(model_dir).probabilities(texts)
    expected = (probs.argmax(-1).numpy() == prepared_sample.test.label[:600]).mean()
    assert f"600 questions: accuracy {expected:.4f}" in out.strip().splitlines()[-1]
    assert (tmp_path / "eval" / "confusion.png").stat().st_size > 0

    pd.DataFrame({"question": texts[:5], "topic": ["toys"] * 5}).to_csv(source, index=False)
    code, _out, err = run(evaluate.main, args, capsys)
    assert code == 2 and "labels ['toys'] are not classes of the model" in err
    (tmp_path / "header.csv").write_text("question,topic\n")
    (tmp_path / "a_file").write_text("")
    for bad, message in (
        ([f"source={tmp_path / 'header.csv'}"], "header.csv: no labeled rows to evaluate"),
        ([f"out={tmp_path / 'a_file' / 'eval'}"], "not a writable directory"),
    ):
        code, _out, err = run(evaluate.main, args + bad, capsys)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


@pytest.fixture(scope="module")
def ensemble_dir(model_dir, prepared_sample, tmp_path_factory):
    baseline = fit_baseline(prepared_sample, max_train_rows=2000)
    saved = baseline.save(tmp_path_factory.mktemp("baseline")).parent
    members = [
        ensemble.Candidate("dan_00000", "dan", model_dir, {}),
        ensemble.Candidate(ensemble.BASELINE_MEMBER, baseline.name, saved, {}),
    ]
    target = tmp_path_factory.mktemp("exported") / ensemble.ENSEMBLE_DIR
    return ensemble.export(members, np.array([0.5, 0.5]), {}, prepared_sample.labels, target)


def test_planted_pickles_in_an_ensemble_never_run(ensemble_dir, tmp_path, capsys):
    marker = tmp_path / "payload_ran"
    planted = tmp_path / "shared_ensemble"
    shutil.copytree(ensemble_dir, planted)
    for member in ("dan_00000", ensemble.BASELINE_MEMBER):  # beside model.pt, and instead
        with open(planted / member / PICKLED_BASELINE, "wb") as file:
            pickle.dump(PlantedPickle(marker), file)
    code, out, _err = run(predict.main, [f"model={planted}", "phone case?"], capsys)
    assert code == 0 and "->" in out  # the network member loads as it is

    for file in (BASELINE_FILE, BASELINE_ARRAYS):
        (planted / ensemble.BASELINE_MEMBER / file).unlink()
    code, _out, err = run(predict.main, [f"model={planted}", "phone case?"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "pickled baseline.joblib, which qatune never loads" in err
    assert not marker.exists()


@pytest.mark.parametrize("name", ["../baseline", "/tmp", "..", "a/b", "", ".hidden"])
def test_ensemble_members_are_plain_names_inside_it(ensemble_dir, tmp_path, capsys, name):
    copy = tmp_path / "copy"
    shutil.copytree(ensemble_dir, copy)
    manifest = json.loads((copy / ensemble.ENSEMBLE_FILE).read_text())
    manifest["members"][1]["name"] = name
    (copy / ensemble.ENSEMBLE_FILE).write_text(json.dumps(manifest))
    code, _out, err = run(predict.main, [f"model={copy}", "phone case?"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "ensemble.json: not a valid ensemble" in err and "plain directory name" in err


def test_ensemble_predicts_the_weighted_average_of_its_members(ensemble_dir, model_dir):
    questions = ["does this fit a 2014 civic?", "is the tent waterproof?"]
    loaded = predict.load_predictor(ensemble_dir)
    network = predict.Predictor.load(model_dir).probabilities(questions)
    assert {type(m) for m in loaded.members} == {predict.Predictor, predict.BaselinePredictor}
    linear = loaded.members[1].probabilities(questions)
    assert torch.allclose(loaded.probabilities(questions), 0.5 * network + 0.5 * linear)
    assert torch.allclose(linear.sum(-1), torch.ones(2))


def experiment(tmp_path, model_dir, ensemble_dir, ensemble_score, single_score, metric):
    """A finished search's outputs: final.csv, its settings, best_model and best_ensemble."""
    root = tmp_path / "finished"
    shutil.copytree(model_dir, root / "best_model")
    shutil.copytree(ensemble_dir, root / "best_ensemble")
    final = pd.DataFrame(
        {
            "model": ["ensemble", "best of arch", "best of arch", "baseline"],
            "valid_accuracy": [ensemble_score, single_score, single_score - 0.1, 0.5],
            "valid_macro_f1": [single_score, ensemble_score, 0.1, 0.5],  # the other way round
        }
    )
    final.to_csv(root / "final.csv", index=False)
    settings = {"search": {"train": {"metric": metric}}}
    (root / "qatune_config.json").write_text(json.dumps(settings))
    return root


@pytest.mark.parametrize(
    ("ensemble_score", "single_score", "metric", "chosen"),
    [
        (0.90, 0.88, "valid_accuracy", "best_ensemble"),
        (0.87, 0.88, "valid_accuracy", "best_model"),
        (0.88, 0.88, "valid_accuracy", "best_ensemble"),  # a tie: the out-of-fold score
        (0.90, 0.88, "valid_macro_f1", "best_model"),  # the search's own metric decides
    ],
)
def test_an_experiment_predicts_with_its_better_export_on_valid(
    ensemble_score, single_score, metric, chosen, model_dir, ensemble_dir, tmp_path, capsys
):
    root = experiment(tmp_path, model_dir, ensemble_dir, ensemble_score, single_score, metric)
    questions = ["does this fit a 2014 civic?", "is the tent waterproof?"]
    code, out, err = run(predict.main, [f"model={root}", *questions], capsys)
    assert code == 0 and f"the search's answer, {chosen} ({metric} " in err
    _, direct, _ = run(predict.main, [f"model={root / chosen}", *questions], capsys)
    assert out == direct
    other = {"best_model": "best_ensemble", "best_ensemble": "best_model"}[chosen]
    _, elsewhere, _ = run(predict.main, [f"model={root / other}", *questions], capsys)
    assert elsewhere != out  # the two exports answer differently: the choice is seen


def test_an_experiment_without_a_model_is_one_line(model_dir, ensemble_dir, tmp_path, capsys):
    root = experiment(tmp_path, model_dir, ensemble_dir, 0.9, 0.8, "valid_accuracy")
    pd.DataFrame({"model": ["baseline"], "valid_accuracy": [0.5]}).to_csv(root / "final.csv")
    code, _out, err = run(predict.main, [f"model={root}", "phone case?"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "the search exported no model" in err


def test_the_answer_weighs_the_chosen_single_model_not_the_best_on_valid(
    model_dir, ensemble_dir, tmp_path, capsys
):
    """best_model/ is the search's choice (search/choice.py), which may trail another
    architecture's best on valid: the ensemble is weighed against the one exported."""
    root = experiment(tmp_path, model_dir, ensemble_dir, 0.85, 0.88, "valid_accuracy")
    final = pd.read_csv(root / "final.csv")
    final["best_single"] = [np.nan, False, True, np.nan]  # chosen: valid 0.78
    final.to_csv(root / "final.csv", index=False)
    code, _out, err = run(predict.main, [f"model={root}", "phone case?"], capsys)
    assert code == 0 and "best_ensemble (valid_accuracy ensemble 0.8500, best model 0.7800)" in err


def test_predict_reads_new_words_as_the_prepared_splits_do(model_dir, prepared_sample):
    """Words train never saw: the exported model keeps the vectors its data substituted them
    with (data_prep/expansion.py), so predicting the test questions' text gives the
    probabilities of the prepared test split's ids."""
    from search.held_out import model_probabilities

    predictor = predict.Predictor.load(model_dir)
    assert predictor.expand_vocab == prepared_sample.expand_vocab == "glove-6b-50d"
    texts = prepared_sample.texts("test")[:300]
    expected = model_probabilities(model_dir, prepared_sample)["test"][:300]
    np.testing.assert_allclose(predictor.probabilities(texts).numpy(), expected, atol=1e-5)
