"""Stage report: aggregation (data), tables, the self-contained HTML page and Markdown.
"""
