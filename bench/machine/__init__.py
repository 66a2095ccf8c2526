"""Stage machine (the bottom): what the machine says about itself, read under one root path.

Every fact edgebench decides on (CPU vendor, model, cores, VM, battery, board model) is read here
from files under a root, so tests and `EDGEBENCH_MACHINE_ROOT` can stand in any machine.
"""
