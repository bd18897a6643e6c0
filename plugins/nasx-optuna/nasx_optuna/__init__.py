"""nasx-optuna: Optuna samplers as a nasx searcher."""
