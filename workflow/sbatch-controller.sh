#!/usr/bin/env bash
# Fire and forget: run the Snakemake controller itself as a batch job, so that a sweep survives logout.
#   sbatch workflow/sbatch-controller.sh [snakemake arguments, e.g. --configfile config/phase_diagram.yaml]
# Submitting it again resumes: finished cells are kept, incomplete ones are redone (--rerun-incomplete).
#SBATCH --job-name=phaselab-controller
#SBATCH --cpus-per-task=1
#SBATCH --mem=2G
#SBATCH --time=7-00:00:00
#SBATCH --output=phaselab-controller-%j.log
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "$0")/..}"
if [ -f .venv/bin/activate ]; then . .venv/bin/activate; fi
exec snakemake --profile profiles/slurm "$@"
