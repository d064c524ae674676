"""The final table's rows: how the ensemble's members are named."""

from __future__ import annotations

from pathlib import Path

from search.ensemble import Candidate
from search.held_out import weights_by_arch


def test_the_table_names_the_weight_of_each_architecture_heaviest_first():
    def member(arch: str, weight: float) -> tuple[Candidate, float]:
        return Candidate(arch, arch, Path("."), {}), weight

    members = [member("bilstm", 0.2), member("dan", 0.3), member("dan", 0.3), member("cnn", 0.2)]
    assert weights_by_arch(members) == "0.60 dan (2) + 0.20 bilstm + 0.20 cnn"
