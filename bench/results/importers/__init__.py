"""Converters from other benchmark tools' output into edgebench schema rows."""
