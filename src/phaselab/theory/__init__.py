"""Theory curves: one module per model family (committee machines, ...)."""
