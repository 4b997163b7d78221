"""Shared by the workflow scripts: the repository's package on sys.path (so a conda environment needs no install
of phaselab), and a script's stdout, stderr and any traceback in its Snakemake log file."""

import contextlib
import sys
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))


@contextlib.contextmanager
def logged(snakemake):
    if not snakemake.log:
        yield sys.stderr
        return
    with open(snakemake.log[0], "w", buffering=1) as log:
        with contextlib.redirect_stderr(log), contextlib.redirect_stdout(log):
            try:
                yield log
            except BaseException:
                traceback.print_exc(file=log)
                raise
