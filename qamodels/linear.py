"""What the baseline and the DAN's wide path share as linear models: LinearSVC's grid of C
(chosen on valid), the temperature that turns its decision scores into probabilities, and
the wide path's SVM start fitted once per process for the features it is given."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import scipy.sparse
from sklearn.svm import LinearSVC

from data_prep.store import subset_index
from qamodels.metrics import scores, softmax_temperature

SVC_C = (0.1, 0.3, 1.0, 3.0)
SELECT_ROWS = 50_000  # C is chosen on at most this many training rows, then refitted on all


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


@dataclass(frozen=True)
class LinearFit:
    """A LinearSVC's weights as logits: coef (classes, features) and intercept already
    multiplied by the temperature of the lowest log loss on valid; `classes` the labels of
    their rows (those train has)."""

    coef: np.ndarray
    intercept: np.ndarray
    classes: np.ndarray


# Every trial of the wide DAN with wide_first fits the same SVM on the same features (they
# depend only on train, not on the trial's other parameters): 5 of a CLINC150 trial's 14 s.
# Trials reuse their worker process (reuse_actors), so a small per-process memo keyed by the
# features' bytes serves each later trial exactly what it would have fitted.
_FITS: OrderedDict[str, LinearFit] = OrderedDict()
_FITS_KEPT = 2


def _digest(*arrays) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        if scipy.sparse.issparse(array):
            array = array.tocsr()
            parts = (array.data, array.indices, array.indptr, np.asarray(array.shape))
        else:
            parts = (np.ascontiguousarray(array), np.asarray(array.shape))
        for part in parts:
            digest.update(str(part.dtype).encode())
            digest.update(np.ascontiguousarray(part).tobytes())
    return digest.hexdigest()


def fit_svm(x_train, y_train: np.ndarray, x_valid, y_valid: np.ndarray) -> LinearFit:
    """LinearSVC on these features as the baseline fits it: C chosen on valid accuracy from
    SVC_C (on at most SELECT_ROWS rows, then refitted on all), scores scaled to logits by
    fit_temperature. The same inputs again in this process: the earlier fit, not refitted."""
    key = _digest(x_train, y_train, x_valid, y_valid)
    if key in _FITS:
        _FITS.move_to_end(key)
        return _FITS[key]
    select = subset_index(len(y_train), SELECT_ROWS, seed=0)
    best = None
    for c in SVC_C:
        model = LinearSVC(C=c, random_state=0).fit(x_train[select], y_train[select])
        accuracy = float((model.predict(x_valid) == y_valid).mean())
        if best is None or accuracy > best[0]:
            best = (accuracy, model)
    model = best[1]
    if len(select) < len(y_train):
        model = LinearSVC(C=model.C, random_state=0).fit(x_train, y_train)
    temperature = fit_temperature(model.decision_function(x_valid), y_valid)
    fit = LinearFit(
        coef=np.asarray(model.coef_, dtype=np.float64) * temperature,
        intercept=np.atleast_1d(model.intercept_) * temperature,
        classes=np.array(model.classes_),
    )
    for array in (fit.coef, fit.intercept, fit.classes):
        array.flags.writeable = False  # shared by every later trial of this process
    _FITS[key] = fit
    while len(_FITS) > _FITS_KEPT:
        _FITS.popitem(last=False)
    return fit
