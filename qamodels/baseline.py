r"""The bar every search must clear: TF-IDF word 1-2 grams + a linear model (scikit-learn).

    python -m qamodels.baseline raw_dir=../shared/data/amazon_qa categories=all \
        valid_size=0.1 train_size=0.6

Trained on the train split with the project's tokenizer (nltk wordpunct_tokenize on the
lowercased text, as data_prep does) and sublinear tf; LinearSVC and LogisticRegression over
a grid of C, the best chosen on valid, then scored on test. It trains in seconds, so every
search runs it first: a neural model earns its place by beating it on the same split.
"""

from __future__ import annotations

import json
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

from data_prep.cli import ConfigError
from data_prep.store import PreparedData, subset_index
from data_prep.tokenize import words
from qamodels.linear import SELECT_ROWS, SVC_C, fit_temperature
from qamodels.metrics import scores, softmax_temperature

LOGREG_C = (10.0,)  # slower to fit; one value near its usual best on short texts
SGD_ALPHA = (1e-5, 3e-5)
# Saved as plain JSON and arrays, never pickled: a model directory is something people share,
# and unpickling a planted file runs its code (joblib.load did, through `search.predict`).
BASELINE_FILE = "baseline.json"  # name, temperature, the vectorizer's settings and vocabulary
BASELINE_ARRAYS = "baseline.npz"  # idf, coef, intercept (loaded with allow_pickle=False)
PICKLED_BASELINE = "baseline.joblib"  # the format before: refused, never loaded


@dataclass
class BaselineResult:
    """The chosen linear model, its scores and its class probabilities on valid and test."""

    name: str  # e.g. "tfidf+linearsvc C=0.3"
    pipeline: Pipeline
    temperature: float  # decision scores -> probabilities, fitted on valid
    valid: dict[str, float]
    test: dict[str, float]
    probabilities: dict[str, np.ndarray] = field(default_factory=dict)  # split -> (n, classes)
    seconds: float = 0.0

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return softmax_temperature(self.pipeline.decision_function(texts), self.temperature)

    def save(self, directory: Path) -> Path:
        """baseline.json and baseline.npz in `directory`; `load_baseline` reads them back."""
        directory.mkdir(parents=True, exist_ok=True)
        vectorizer = self.pipeline.named_steps["tfidf"]
        model = self.pipeline.named_steps["model"]
        vocabulary = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.__getitem__)
        np.savez(
            directory / BASELINE_ARRAYS,
            idf=vectorizer.idf_,
            coef=np.asarray(model.coef_, np.float64),
            intercept=np.atleast_1d(np.asarray(model.intercept_, np.float64)),
        )
        settings = {
            "name": self.name,
            "temperature": self.temperature,
            "ngram_range": list(vectorizer.ngram_range),
            "sublinear_tf": vectorizer.sublinear_tf,
            "norm": vectorizer.norm,
            "vocabulary": vocabulary,
        }
        path = directory / BASELINE_FILE
        path.write_text(json.dumps(settings))
        return path


@dataclass
class LinearTextModel:
    """A saved baseline read back: the TF-IDF features and the linear model's scores, the
    same as the fitted pipeline's `decision_function`."""

    vectorizer: TfidfVectorizer
    coef: np.ndarray  # (classes, features), or (1, features) for two classes
    intercept: np.ndarray

    def decision_function(self, texts: list[str]) -> np.ndarray:
        scores = np.asarray(self.vectorizer.transform(texts) @ self.coef.T) + self.intercept
        return scores.ravel() if self.coef.shape[0] == 1 else scores


def tokenizer(text: str) -> list[str]:
    return words(text.lower())


def all_candidates() -> list[tuple[str, object]]:
    """Every linear model the baseline may try (bench/baseline_bench.py times each)."""
    # random_state: liblinear's coordinate descent shuffles with numpy's global generator
    # otherwise, so a fit in a Ray task and one in the driver differed by ~1e-6 in
    # probability, enough to flip the ensemble selection's tie-breaks.
    models: list[tuple[str, object]] = [
        (f"linearsvc C={c:g}", LinearSVC(C=c, random_state=0)) for c in SVC_C
    ]
    models += [(f"logreg C={c:g}", LogisticRegression(C=c, max_iter=2000)) for c in LOGREG_C]
    models += [(f"sgd alpha={a:g}", SGDClassifier(alpha=a, random_state=0)) for a in SGD_ALPHA]
    return models


def candidates() -> list[tuple[str, object]]:
    return [c for c in all_candidates() if not c[0].startswith("sgd")]


def train_rows(data: PreparedData, max_train_rows: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Train's texts and labels, the seeded `max_train_rows` subset the trials train on."""
    rows = subset_index(len(data.train), max_train_rows, seed)
    texts = data.texts("train")
    return [texts[i] for i in rows], data.train.label[rows]


def refit_on_train_and_valid(
    result: BaselineResult, data: PreparedData, max_train_rows: int = 0, seed: int = 0
) -> np.ndarray:
    """The chosen linear model (its vectorizer's settings, its C) fitted again on train (the
    trials' `max_train_rows` subset) + valid: its test probabilities, with the temperature
    fitted on valid. The baseline to set beside a model refit the same way
    (search/refit.py), since valid's rows are worth +0.3 to +0.7 test points to it as well
    (BENCHMARKS.md)."""
    texts, labels = train_rows(data, max_train_rows, seed)
    pipeline = clone(result.pipeline).fit(texts + data.texts("valid"),
                                          np.concatenate([labels, data.valid.label]))  # fmt: skip
    return softmax_temperature(pipeline.decision_function(data.texts("test")), result.temperature)


def fit_baseline(data: PreparedData, max_train_rows: int = 0, seed: int = 0) -> BaselineResult:
    """Every candidate fitted on train (the same `max_train_rows` subset the trials train
    on; above SELECT_ROWS rows, a seeded subset of them), the best on valid accuracy refitted
    on all of train and scored on test."""
    start = time.perf_counter()
    texts = {s: data.texts(s) for s in ("valid", "test")}
    labels = {"valid": data.valid.label, "test": data.test.label}
    texts["train"], labels["train"] = train_rows(data, max_train_rows, seed)
    vectorizer = TfidfVectorizer(
        tokenizer=tokenizer, token_pattern=None, lowercase=False, ngram_range=(1, 2),
        sublinear_tf=True,
    )  # fmt: skip
    features = {"train": vectorizer.fit_transform(texts["train"])}
    features["valid"] = vectorizer.transform(texts["valid"])
    # The grid is chosen on at most SELECT_ROWS rows, the winner refitted on all: at 255k
    # rows the grid's five fits took 171 s on 2 cores, LinearSVC C=3 alone 70 s.
    select = subset_index(len(labels["train"]), SELECT_ROWS, seed)
    best: tuple[float, str, object] | None = None
    for name, model in candidates():
        model.fit(features["train"][select], labels["train"][select])
        accuracy = float((model.predict(features["valid"]) == labels["valid"]).mean())
        if best is None or accuracy > best[0]:
            best = (accuracy, name, model)
    assert best is not None
    _, name, model = best
    if len(select) < len(labels["train"]):
        model = clone(model).fit(features["train"], labels["train"])
    pipeline = Pipeline([("tfidf", vectorizer), ("model", model)])
    features["test"] = vectorizer.transform(texts["test"])
    decisions = {s: model.decision_function(features[s]) for s in ("valid", "test")}
    temperature = fit_temperature(decisions["valid"], labels["valid"])
    probabilities = {s: softmax_temperature(d, temperature) for s, d in decisions.items()}
    classes = len(data.labels)
    return BaselineResult(
        name=f"tfidf+{name}",
        pipeline=pipeline,
        temperature=temperature,
        valid=scores(probabilities["valid"], labels["valid"], classes),
        test=scores(probabilities["test"], labels["test"], classes),
        probabilities=probabilities,
        seconds=time.perf_counter() - start,
    )


def load_baseline(directory: Path) -> tuple[LinearTextModel, float]:
    """The saved baseline of `directory` and its temperature, read without running code: a
    pickled one (baseline.joblib) is refused, whoever wrote it."""
    directory = Path(directory).expanduser()
    path = directory / BASELINE_FILE
    if not path.is_file():
        found = (
            " (a pickled baseline.joblib, which qatune never loads: unpickling can run code)"
            if (directory / PICKLED_BASELINE).exists()
            else ""
        )
        raise ConfigError(
            f"{directory}: no {BASELINE_FILE}{found}; export the model again with this "
            "version of qatune (search.run resume=<experiment>, or a new search)"
        )
    try:
        settings = json.loads(path.read_text())
        with np.load(directory / BASELINE_ARRAYS, allow_pickle=False) as arrays:
            idf, coef, intercept = arrays["idf"], arrays["coef"], arrays["intercept"]
        vocabulary = {word: i for i, word in enumerate(settings["vocabulary"])}
        vectorizer = TfidfVectorizer(
            tokenizer=tokenizer, token_pattern=None, lowercase=False, vocabulary=vocabulary,
            ngram_range=tuple(settings["ngram_range"]), sublinear_tf=settings["sublinear_tf"],
            norm=settings["norm"],
        )  # fmt: skip
        vectorizer.idf_ = idf
        temperature = float(settings["temperature"])
        if not (len(vocabulary) == len(idf) == coef.shape[1] and len(intercept) == len(coef)):
            raise ValueError("its arrays do not match its vocabulary")
    except (OSError, ValueError, KeyError, TypeError, IndexError, zipfile.BadZipFile) as err:
        raise ConfigError(
            f"{directory}: damaged baseline ({str(err).splitlines()[0][:120]}); export the "
            "model again with this version of qatune"
        ) from None
    return LinearTextModel(vectorizer, coef, intercept), temperature


def main(argv: list[str]) -> int:
    from data_prep import PrepConfig, prepared_data
    from data_prep.cli import fail, help_text, parse_overrides
    from data_prep.errors import QatuneError

    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        print(help_text(PrepConfig, "data keys:"))
        return 0
    try:
        data = prepared_data(parse_overrides(PrepConfig, argv))
    except QatuneError as err:
        return fail(err)
    result = fit_baseline(data)
    print(
        f"{result.name} ({result.seconds:.1f} s): valid accuracy {result.valid['accuracy']:.4f}"
        f", test accuracy {result.test['accuracy']:.4f}, test macro-F1 "
        f"{result.test['macro_f1']:.4f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
