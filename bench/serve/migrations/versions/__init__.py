"""One module per revision, applied in down_revision order; written by hand (see env.py)."""
