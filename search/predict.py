"""Classify questions with an exported model.

    python -m search.predict model=~/qatune_results/qatune/best_model "does this fit my civic?"
    python -m search.predict model=<dir> file=questions.txt [batch_size=512] [top=3]
    python -m search.predict model=~/qatune_results/qatune/best_ensemble "..."   # the ensemble

Prints the category and the probabilities of the top classes; with `file=` one line per
question (tab-separated: category, probability, question), classified in batches.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from data_prep.store import Split
from data_prep.tokenize import encode_texts
from qamodels.baseline import BASELINE_FILE, load_baseline
from qamodels.batches import DeviceSplit
from qamodels.checkpoint import load_model
from qamodels.metrics import softmax_temperature
from qamodels.trainer import predict_logits
from search.ensemble import is_ensemble, read_manifest


class Batched:
    """Probabilities of many questions, a batch at a time."""

    def probabilities(self, questions: Sequence[str]) -> torch.Tensor:
        raise NotImplementedError

    def batches(self, questions: Sequence[str], batch_size: int) -> Iterator[torch.Tensor]:
        for start in range(0, len(questions), batch_size):
            yield self.probabilities(questions[start : start + batch_size])


@dataclass
class Predictor(Batched):
    """One exported model (best_model/ or a run directory)."""

    model: torch.nn.Module
    vocab: list[str]
    labels: list[str]
    max_length: int

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> Predictor:
        model, checkpoint = load_model(path, device)
        return cls(model, checkpoint["vocab"], checkpoint["labels"], checkpoint["max_length"])

    @torch.no_grad()
    def probabilities(self, questions: Sequence[str]) -> torch.Tensor:
        """(n, classes) probabilities; text encoded by data_prep's own steps."""
        encoded = encode_texts(questions, self.vocab, self.max_length)
        device = next(self.model.parameters()).device
        unlabeled = np.zeros(len(questions), np.int32)
        split = Split(encoded.ids, encoded.mask, encoded.length, unlabeled)
        split = DeviceSplit.from_split(split, device)
        return torch.softmax(predict_logits(self.model, split, max(1, len(questions))), -1).cpu()


@dataclass
class BaselinePredictor(Batched):
    """The TF-IDF + linear model as an ensemble member (probabilities fitted on valid)."""

    pipeline: object
    temperature: float

    def probabilities(self, questions: Sequence[str]) -> torch.Tensor:
        scores = self.pipeline.decision_function([q.lower() for q in questions])
        return torch.from_numpy(softmax_temperature(scores, self.temperature)).float()


@dataclass
class EnsemblePredictor(Batched):
    """A weighted average of its members' probabilities (search/ensemble.py)."""

    labels: list[str]
    members: list[Batched]
    weights: list[float]

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> EnsemblePredictor:
        path = Path(path).expanduser()
        manifest = read_manifest(path)
        members: list[Batched] = []
        for member in manifest["members"]:
            directory = path / member["name"]
            if (directory / BASELINE_FILE).is_file():
                members.append(BaselinePredictor(*load_baseline(directory)))
            else:
                members.append(Predictor.load(directory, device))
        weights = [m["weight"] for m in manifest["members"]]
        return cls(manifest["labels"], members, weights)

    def probabilities(self, questions: Sequence[str]) -> torch.Tensor:
        weighted = zip(self.weights, self.members, strict=True)
        return sum(w * m.probabilities(questions) for w, m in weighted)


def load_predictor(path: str | Path, device: str = "cpu") -> Predictor | EnsemblePredictor:
    """An exported model directory (best_model/) or ensemble (best_ensemble/)."""
    if is_ensemble(Path(path).expanduser()):
        return EnsemblePredictor.load(path, device)
    return Predictor.load(path, device)


def main(argv: list[str]) -> int:
    options = dict(a.split("=", 1) for a in argv if "=" in a and a.split("=", 1)[0].isidentifier())
    questions = [a for a in argv if a not in {f"{k}={v}" for k, v in options.items()}]
    unknown = set(options) - {"model", "file", "batch_size", "top", "device"}
    if "model" not in options or unknown or bool(questions) == ("file" in options):
        print(__doc__, file=sys.stderr)
        return 2
    predictor = load_predictor(options["model"], options.get("device", "cpu"))
    top = min(int(options.get("top", 3)), len(predictor.labels))
    if "file" in options:
        lines = Path(options["file"]).read_text(encoding="utf-8").splitlines()
        questions = [line for line in lines if line.strip()]
        for start, probs in zip(
            range(0, len(questions), int(options.get("batch_size", 512))),
            predictor.batches(questions, int(options.get("batch_size", 512))),
            strict=True,
        ):
            best, index = probs.max(-1)
            for offset, (p, i) in enumerate(zip(best.tolist(), index.tolist(), strict=True)):
                print(f"{predictor.labels[i]}\t{p:.4f}\t{questions[start + offset]}")
        return 0
    for question, probs in zip(questions, predictor.probabilities(questions), strict=True):
        values, index = probs.topk(top)
        print(f"{question}\n  -> {predictor.labels[int(index[0])]}")
        for p, i in zip(values.tolist(), index.tolist(), strict=True):
            print(f"     {p:.4f}  {predictor.labels[i]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
