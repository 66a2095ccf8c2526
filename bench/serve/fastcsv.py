"""CSV as csv.writer writes it, split into columns with str.split instead of csv.reader.

csv.reader looks at every character and makes a list per record; an upload is then turned
into columns anyway. When every quote in the text sits where csv.writer puts them (a quoted
cell starts right after a comma or line break and ends right before one, quotes inside it
doubled), the text splits on '"' into parts outside and inside quotes; the commas and line
breaks inside quotes are set aside as placeholders (control characters, which an upload may
not hold: the caller made sure), and the rest splits on line breaks and commas in C. Anything
else returns None and the caller reads the text with csv.reader: the records are then exactly
csv.reader's (tests/test_serve_fastcsv.py compares the two).
"""

from __future__ import annotations

import csv
from operator import methodcaller

_COMMA, _BREAK = "\x00", "\x01"  # placeholders for a comma and a line break inside quotes
_COUNT_COMMAS = methodcaller("count", ",")


def split_columns(text: str,
                  max_records: int) -> tuple[list[str], list[list[str]], bool] | None:
    """(header, columns, breaks) of a CSV text without control characters but tab and
    newline: columns[i][r] is record r's cell i (records after the header); breaks: some cell
    holds a line break. None when the text is not
    plainly csv.writer's (stray quotes, a blank line, ragged records, a cell over csv's field
    size limit) or holds more than max_records records."""
    if "\r" in text or text.count("\n") > max_records + 1:
        return None  # (the count first: a body of blank lines is never split)
    ends_a_line = text.endswith("\n")
    if '"' in text:
        text = _unquoted(text)
        if text is None:
            return None
    lines = text.split("\n")
    if ends_a_line:
        lines.pop()
    if not lines or "" in lines or max(map(len, lines)) > csv.field_size_limit():
        return None  # no records, a blank line, or a cell csv.reader would refuse
    width = lines[0].count(",") + 1
    if set(map(_COUNT_COMMAS, lines)) != {width - 1}:
        return None  # ragged (the row-by-row check words it) or an empty first line
    set_aside = _COMMA in text or _BREAK in text
    cells = ",".join(lines).split(",")
    del lines
    columns = [cells[i::width] for i in range(width)]
    del cells
    for i, column in enumerate(columns if set_aside else ()):
        joined = "".join(column)
        if _COMMA in joined or _BREAK in joined:
            columns[i] = [c.replace(_COMMA, ",").replace(_BREAK, "\n") for c in column]
    return ([column[0] for column in columns], [column[1:] for column in columns],
            _BREAK in text)


def _unquoted(text: str) -> str | None:
    """The text with its quotes resolved: a quoted cell's commas and line breaks as
    placeholders, its doubled quotes as one; None when a quote is anywhere else."""
    parts = text.split('"')
    if len(parts) % 2 == 0:
        return None  # a quote left open
    first, last = parts[0], parts[-1]
    if (first and first[-1] not in ",\n") or (last and last[0] not in ",\n"):
        return None
    between = parts[2:-1:2]  # between a closing quote and the next opening one
    if not all(p[:1] in ",\n" and p[-1:] in ",\n" for p in between):
        return None  # a quote inside an unquoted cell, or text after a closing quote
    parts[2:-1:2] = [p or '"' for p in between]  # nothing between: a doubled quote
    inside = parts[1::2]
    joined = "".join(inside)
    if "," in joined or "\n" in joined:
        parts[1::2] = [p.replace(",", _COMMA).replace("\n", _BREAK) for p in inside]
    return "".join(parts)
