"""Shared by the workflow scripts: a script's stdout, stderr and any traceback go to its Snakemake log file."""

import contextlib
import sys
import traceback


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
