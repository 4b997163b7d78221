#!/usr/bin/env bash
# Fire and forget: run the Snakemake controller itself as a batch job, so that a sweep survives logout.
# Submit from the repository root:
#   sbatch workflow/sbatch-controller.sh [snakemake arguments, e.g. --configfile config/phase_diagram.yaml]
# Submitting it again resumes: finished cells are kept, incomplete ones are redone (--rerun-incomplete).
#SBATCH --job-name=phaselab-controller
#SBATCH --cpus-per-task=1
#SBATCH --mem=2G
#SBATCH --time=7-00:00:00
#SBATCH --output=phaselab-controller-%j.log
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-.}"
if [ -f .venv/bin/activate ]; then . .venv/bin/activate; fi
# a controller killed by scancel or a time limit leaves Snakemake's lock behind; a resubmission clears it first
python -m snakemake --profile profiles/slurm --unlock "$@" >/dev/null 2>&1 || true
exec python -m snakemake --profile profiles/slurm "$@"
