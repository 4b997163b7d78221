"""Where a job computes: the torch device a config names, and the CPU threads of one job."""

from __future__ import annotations

import torch


def pick_device(name: str = "auto") -> torch.device:
    """'auto' → CUDA when present, else CPU; 'cuda' without a GPU is an error naming the key."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("config key 'device' is 'cuda' but no CUDA device is available")
    return torch.device(name)



def set_threads(threads: int) -> None:
    """CPU threads for both backends (Snakemake's ``threads`` of the job)."""
    threads = max(1, int(threads))
    torch.set_num_threads(threads)
    try:
        import numba
    except ImportError:  # numba missing: nothing else to set
        return
    else:
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
