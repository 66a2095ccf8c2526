"""Stage energy: meters (one module per source, looked up by name), measurement windows, the
run's energy setup, and attaching an external meter's log after the run.
"""
