"""Stage serve: the upload service (app, storage) and its client.
"""
