"""Teacher–student learning curves of the perceptron (Seung, Sompolinsky & Tishby 1992; Engel & Van den Broeck).

A teacher w* ∈ R^N labels Gaussian inputs by sign(w*·x); students learn from P = round(αN) examples, the first P of
one nested stream per seed. Students (each one cell, all seeds and α batched):
- ``hebb``: J = Σ y ξ;
- ``max_stability``: the maximal-stability perceptron (hard-margin SVM), batched interior-point solver;
- ``gibbs``: a draw from the version space, by exact HMC (phaselab.solvers.perceptron.version_space_hmc) started at the
  teacher, averaged over the trajectories after ``gibbs.burn_in``;
- ``online_perceptron``: the perceptron rule, each example once, through ``phaselab.engines.ensemble.train_ensemble``.
The generalisation error is exact for Gaussian inputs, ε = arccos(R)/π, R the normalised teacher overlap.
A ``binary`` cell enumerates all 2^N binary students at small N (Györgyi 1990's Ising perceptron): the mean ε of
the version space, exact Gibbs learning at that N.
"""

from __future__ import annotations

from dataclasses import dataclass

from phaselab.config import check_grid_axis, fail
from phaselab.experiment import Cell
from phaselab.schedules import sizes

TITLE = "perceptron teacher–student learning curves"
REFERENCES = "Seung, Sompolinsky & Tishby 1992; Engel & Van den Broeck 2001; Györgyi 1990"
FIGURES = ("learning_curves",)
COORDS = {
    "student": {"long_name": "learning rule"},
    "binary_alpha": {"long_name": "α = P/N of the binary students", "units": "1"},
    "binary_seed": {"long_name": "seed index (binary teacher)", "units": "1"},
    "trajectory": {"long_name": "HMC trajectory", "units": "1"},
    "theory_student": {"long_name": "learning rule of the theory curve"},
}
STUDENTS = ("hebb", "max_stability", "gibbs", "online_perceptron")
STATUS_NOT_CONVERGED = "not_converged"  # a solver that hit its iteration cap (else vocabulary.STATUS_OK)


@dataclass(frozen=True, kw_only=True)
class StudentCell(Cell):
    """One learning rule (or the binary enumeration) at every α and seed, reading the teacher data ``data``."""

    student: str
    N: int


def check(key: str, exp: dict) -> None:
    grid, binary = exp["grid"], exp["binary"]
    check_grid_axis(f"{key}.grid.alpha", grid["alpha"])
    check_grid_axis(f"{key}.binary.alpha", binary["alpha"])
    check_grid_axis(f"{key}.students", exp["students"])
    for k, (N, alphas) in {"grid": (grid["N"], grid["alpha"]), "binary": (binary["N"], binary["alpha"])}.items():
        P = sizes(N, sorted(alphas))
        if len(set(P)) != len(P):
            fail(f"{key}.{k}.alpha", alphas, f"two values give the same P = round(αN) at N = {N}")
    if exp["gibbs"]["burn_in"] >= exp["gibbs"]["trajectories"]:
        fail(f"{key}.gibbs.burn_in", exp["gibbs"]["burn_in"],
             f"leaves no sample of the {exp['gibbs']['trajectories']} trajectories")


def cells(exp: dict) -> list[StudentCell]:
    """One cell per student of ``students`` (data 'n<N>'), then the binary enumeration (data 'binary_n<N>')."""
    N, Nb = exp["grid"]["N"], exp["binary"]["N"]
    rows = [StudentCell(id=s, data=f"n{N}", student=s, N=N) for s in STUDENTS if s in exp["students"]]
    return rows + [StudentCell(id="binary", data=f"binary_n{Nb}", student="binary", N=Nb)]
