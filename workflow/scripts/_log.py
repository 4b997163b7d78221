"""Shared by the workflow scripts: send stdout/stderr of a script to its Snakemake log file."""

import contextlib
import sys


@contextlib.contextmanager
def logged(snakemake):
    if not snakemake.log:
        yield sys.stderr
        return
    with open(snakemake.log[0], "w", buffering=1) as log, contextlib.redirect_stderr(log), \
            contextlib.redirect_stdout(log):
        yield log
