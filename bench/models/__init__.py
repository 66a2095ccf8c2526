"""Stage models: recipes, source weights (verified by sha256), building and opening model folders.
"""
