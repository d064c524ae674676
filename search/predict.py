"""Classify questions with an exported model.

    python -m search.predict model=~/qatune_results/qatune/best_model "does this fit my civic?"
    python -m search.predict model=<dir> file=questions.txt [batch_size=512] [top=3]

Prints the category and the probabilities of the top classes; with `file=` one line per
question (tab-separated: category, probability, question), classified in batches.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from data_prep.tokenize import encode, tokenize_all
from qamodels.checkpoint import load_model


@dataclass
class Predictor:
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
        """(n, classes) probabilities; text lowercased and tokenized as in data_prep."""
        tokens = tokenize_all([q.lower() for q in questions], desc="predict")
        encoded = encode(tokens, self.vocab, self.max_length)
        device = next(self.model.parameters()).device
        ids = torch.from_numpy(encoded.ids).long().to(device)
        length = torch.from_numpy(encoded.length).to(device)
        mask = torch.arange(ids.shape[1], device=device) < length[:, None]
        return torch.softmax(self.model(ids, mask).float(), dim=-1).cpu()

    def batches(self, questions: Sequence[str], batch_size: int) -> Iterator[torch.Tensor]:
        for start in range(0, len(questions), batch_size):
            yield self.probabilities(questions[start : start + batch_size])


def main(argv: list[str]) -> int:
    options = dict(a.split("=", 1) for a in argv if "=" in a and a.split("=", 1)[0].isidentifier())
    questions = [a for a in argv if a not in {f"{k}={v}" for k, v in options.items()}]
    unknown = set(options) - {"model", "file", "batch_size", "top", "device"}
    if "model" not in options or unknown or bool(questions) == ("file" in options):
        print(__doc__, file=sys.stderr)
        return 2
    predictor = Predictor.load(options["model"], options.get("device", "cpu"))
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
