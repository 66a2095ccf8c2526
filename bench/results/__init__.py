"""Stage results: the schema, writing and reading CSVs, loading many files, validation, statistics, importers.

The bottom of the stage order: it imports no other stage.
"""
