"""A researcher's own phaselab experiment types (put on the import path by ``python_path: [.]``)."""
