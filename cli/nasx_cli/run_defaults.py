"""Defaults of ``nasx run`` shared by the option help and the run itself."""

DEFAULT_MAX_EVALS = 100
SYNTHETIC_BATCH_SIZE = 256
