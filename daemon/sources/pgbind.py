"""The accounts query's ``$1`` as a literal ``text[]``, for statements that take no
bind parameters (``COPY (SELECT ...) TO STDOUT``).

The ids come from NOTIFY payloads (billing data, not trusted as SQL), so they never
reach SQL text except inside one literal that cannot end early:

* each id is an array element in double quotes, with ``\\`` and ``"`` escaped (the
  array parser's only special characters inside quotes; ``NULL``, braces, commas,
  quotes and spaces stay plain text);
* the array text is dollar-quoted with a tag that does not occur in it, so neither
  quotes nor backslashes mean anything to the SQL lexer, whatever
  ``standard_conforming_strings`` says.

The ``$1`` of the operator's query is found by a small lexer that skips string
literals (``'...'``, ``E'...'``), quoted identifiers, dollar-quoted strings and
comments; a query it cannot read with certainty (another parameter, an unterminated
literal or comment) gets no substitution (None), and the caller binds ``$1`` as usual.
Ids holding a NUL character (which no PostgreSQL text can hold) are left out: no row
can match them, so they come back as gone, as with a bind parameter.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_PARAM = re.compile(r"\$(\d+)")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_\x80-\U0010ffff][\w\x80-\U0010ffff]*)?\$")
_IDENT_CHAR = re.compile(r"[\w$\x80-\U0010ffff]")


def text_array_literal(values: Sequence[str]) -> str:
    """A ``text[]`` literal holding exactly ``values`` (a SQL expression)."""
    every = "".join(values)
    if "\\" in every or "\x00" in every or '"' in every:  # escapes: one id at a time
        body = "{" + ",".join(
            '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
            for v in values if "\x00" not in v) + "}"
    else:
        body = '{"' + '","'.join(values) + '"}' if values else "{}"
    tag, n = "dgids", 0
    while (body + f"${tag}$").find(f"${tag}$") != len(body):
        n += 1
        tag = f"dgids{n}"
    return f"(${tag}${body}${tag}$::text[])"


def param_spans(query: str) -> list[tuple[int, int, int]] | None:
    """``(start, end, number)`` of each positional parameter of ``query`` outside
    literals, quoted identifiers and comments; None if the text cannot be read."""
    out: list[tuple[int, int, int]] = []
    i, n = 0, len(query)
    while i < n:
        c = query[i]
        nxt = query[i + 1] if i + 1 < n else ""
        if c == "-" and nxt == "-":
            end = query.find("\n", i)
            i = n if end < 0 else end + 1
        elif c == "/" and nxt == "*":
            end = _comment_end(query, i)
            if end < 0:
                return None
            i = end
        elif c == "'":
            escapes = i > 0 and query[i - 1] in "eE" and (
                i == 1 or not _IDENT_CHAR.match(query[i - 2]))
            end = _quoted_end(query, i, "'", escapes)
            if end < 0:
                return None
            i = end
        elif c == '"':
            end = _quoted_end(query, i, '"', False)
            if end < 0:
                return None
            i = end
        elif c == "$" and not (i > 0 and _IDENT_CHAR.match(query[i - 1])):
            param = _PARAM.match(query, i)
            if param:
                out.append((i, param.end(), int(param.group(1))))
                i = param.end()
                continue
            tag = _DOLLAR_TAG.match(query, i)
            if tag is None:
                i += 1
                continue
            end = query.find(tag.group(0), tag.end())
            if end < 0:
                return None
            i = end + len(tag.group(0))
        elif _IDENT_CHAR.match(c):
            i += 1
            while i < n and _IDENT_CHAR.match(query[i]):  # an identifier may hold "$"
                i += 1
        else:
            i += 1
    return out


def _quoted_end(query: str, start: int, quote: str, escapes: bool) -> int:
    """Index after the literal opened at ``start`` (doubled quotes; backslash escapes in
    an ``E''`` string); -1 if it is not closed."""
    i, n = start + 1, len(query)
    while i < n:
        c = query[i]
        if escapes and c == "\\":
            i += 2
        elif c == quote:
            if i + 1 < n and query[i + 1] == quote:
                i += 2
            else:
                return i + 1
        else:
            i += 1
    return -1


def _comment_end(query: str, start: int) -> int:
    """Index after the (nested) block comment opened at ``start``; -1 if not closed."""
    depth, i, n = 0, start, len(query)
    while i < n:
        pair = query[i:i + 2]
        if pair == "/*":
            depth += 1
            i += 2
        elif pair == "*/":
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    return -1


def bind_text_array(query: str, values: Sequence[str]) -> str | None:
    """``query`` with each ``$1`` replaced by a ``text[]`` literal of ``values``; None if
    the query has no ``$1``, another parameter, or text the lexer cannot read."""
    spans = param_spans(query)
    if not spans or any(number != 1 for _, _, number in spans):
        return None
    literal = text_array_literal(values)
    parts: list[str] = []
    at = 0
    for start, end, _ in spans:
        parts += [query[at:start], literal]
        at = end
    parts.append(query[at:])
    return "".join(parts)
