"""edgebench: is local LLM inference cheaper than the cloud? Measured, not argued."""

__version__ = "0.1.0"
