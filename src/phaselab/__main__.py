"""``python -m phaselab run CONFIG [--experiment NAME]``: every stage in-process, without Snakemake."""

import sys

from phaselab.runner import main

sys.exit(main())
