r"""The bar every search must clear: TF-IDF word 1-2 grams + a linear model (scikit-learn).

    python -m qamodels.baseline raw_dir=../shared/data/amazon_qa categories=all \
        valid_size=0.1 train_size=0.6

Trained on the train split with the project's tokenizer (nltk wordpunct_tokenize on the
lowercased text, as data_prep does) and sublinear tf; LinearSVC and LogisticRegression over
a grid of C, the best chosen on valid, then scored on test. It trains in seconds, so every
search runs it first: a neural model earns its place by beating it on the same split.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import joblib
import numpy as np
from sklearn.base import clone
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

from data_prep.store import PreparedData
from data_prep.tokenize import words
from qamodels.metrics import scores, softmax_temperature
from qamodels.trainer import subset_index

SVC_C = (0.1, 0.3, 1.0, 3.0)
LOGREG_C = (10.0,)  # slower to fit; one value near its usual best on short texts
SGD_ALPHA = (1e-5, 3e-5)
SELECT_ROWS = 50_000  # the candidates are compared on at most this many training rows
BASELINE_FILE = "baseline.joblib"


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
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / BASELINE_FILE
        joblib.dump({"pipeline": self.pipeline, "temperature": self.temperature}, path)
        return path


def tokenizer(text: str) -> list[str]:
    return words(text.lower())


def all_candidates() -> list[tuple[str, object]]:
    """Every linear model the baseline may try (bench/baseline_bench.py times each)."""
    models: list[tuple[str, object]] = [(f"linearsvc C={c:g}", LinearSVC(C=c)) for c in SVC_C]
    models += [(f"logreg C={c:g}", LogisticRegression(C=c, max_iter=2000)) for c in LOGREG_C]
    models += [(f"sgd alpha={a:g}", SGDClassifier(alpha=a, random_state=0)) for a in SGD_ALPHA]
    return models


def candidates() -> list[tuple[str, object]]:
    return [c for c in all_candidates() if not c[0].startswith("sgd")]


def fit_baseline(data: PreparedData, max_train_rows: int = 0, seed: int = 0) -> BaselineResult:
    """Every candidate fitted on train (the same `max_train_rows` subset the trials train
    on; above SELECT_ROWS rows, a seeded subset of them), the best on valid accuracy refitted
    on all of train and scored on test."""
    start = time.perf_counter()
    texts = {s: data.texts(s) for s in ("train", "valid", "test")}
    labels = {"train": data.train.label, "valid": data.valid.label, "test": data.test.label}
    rows = subset_index(len(data.train), max_train_rows, seed)
    texts["train"] = [texts["train"][i] for i in rows]
    labels["train"] = labels["train"][rows]
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


def fit_temperature(decisions: np.ndarray, labels: np.ndarray) -> float:
    """The scale of the decision scores that gives the lowest log loss on valid (a grid:
    one parameter, no optimizer needed), so the linear model's probabilities can be
    averaged with the neural models' in an ensemble. Temperature scaling, not scikit-learn's
    CalibratedClassifierCV: that refits the model per fold and calibrates each class apart
    (sigmoid or isotonic); one temperature keeps the model and its predictions as they are."""
    best_nll, best_t = np.inf, 1.0
    for t in np.exp(np.linspace(np.log(0.1), np.log(100), 61)):
        probs = softmax_temperature(decisions, t)
        nll = scores(probs, labels, probs.shape[1])["loss"]
        if nll < best_nll:
            best_nll, best_t = nll, float(t)
    return best_t


def load_baseline(directory: Path) -> tuple[Pipeline, float]:
    saved = joblib.load(Path(directory) / BASELINE_FILE)
    return saved["pipeline"], saved["temperature"]


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
