#!/usr/bin/env bash
# Fire and forget: run the Snakemake controller itself as a batch job, so that a sweep survives logout.
# Submit from the repository root:
#   sbatch workflow/sbatch-controller.sh [snakemake arguments, e.g. --configfile config/phase_diagram.yaml]
# Submitting it again resumes: finished cells are kept, unfinished ones are redone (--rerun-incomplete).
# Stopping it (scancel, or its time limit) interrupts Snakemake like Ctrl-C, so that it also cancels the jobs it
# has submitted instead of leaving them running unwatched.
#SBATCH --job-name=phaselab-controller
#SBATCH --cpus-per-task=1
#SBATCH --mem=2G
#SBATCH --time=7-00:00:00
#SBATCH --signal=B:TERM@120
#SBATCH --output=phaselab-controller-%j.log
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-.}"
if [ -f .venv/bin/activate ]; then . .venv/bin/activate; fi

# Two controllers on one directory would fight over the same outputs: refuse to start a second one.
if [ -n "${SLURM_JOB_ID:-}" ]; then
    others=$(squeue --noheader --user "$(id -un)" --name phaselab-controller --format '%i %Z' |
        awk -v me="$SLURM_JOB_ID" -v dir="$PWD" '$1 != me && $2 == dir {print $1}')
    if [ -n "$others" ]; then
        echo "phaselab: another controller job runs from $PWD (job ${others//$'\n'/, }); scancel it or wait" >&2
        exit 1
    fi
fi

# A controller killed by scancel or a time limit leaves Snakemake's lock behind; no other controller runs (checked
# above), so a resubmission clears it.
python -m snakemake --profile profiles/slurm --unlock "$@" >/dev/null 2>&1 || true

set -m # a background job of a script ignores SIGINT unless job control is on
python -m snakemake --profile profiles/slurm "$@" &
controller=$!
trap 'kill -INT "$controller" 2>/dev/null || true' TERM INT
status=0
wait "$controller" || status=$?
if kill -0 "$controller" 2>/dev/null; then # woken by the trap: let Snakemake cancel its jobs and exit
    status=0
    wait "$controller" || status=$?
fi
exit "$status"
