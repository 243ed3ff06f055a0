"""The log's words as a terminal or a mail header may show them: every character that is not printable, escaped.

Ids, summaries and notes come from the log, and the contract sets no pattern
on them.  Printed raw, an ESC sequence in an actor id repaints a critical
incident's line as a green "all clear", a CR or LF forges lines, a U+202E
turns the rest of a line around, a zero-width space makes ``emp\\u200b-0011``
look like ``emp-0011``; in an e-mail subject a CR LF is a header injection
(and the mail library refuses to send it, so that receiver never got the
page).  Escaped, each shows as what it is (``\\x1b``, ``\\r``, ``\\u202e``)
and the line stays one line; printable text, backslashes included, is left
as written.  One escaping for every table, the console pager, the mail
subject and the dead letters.
"""

from __future__ import annotations


def visible(text: str) -> str:
    """``text`` with each character ``str.isprintable`` refuses (C0 and C1 controls, DEL, line and paragraph
    separators, format characters such as bidi overrides and zero-width spaces) as a Python escape, and each
    invalid byte kept by ``surrogateescape`` as ``\\xNN``."""
    return "".join(map(_escaped, text))


def _escaped(char: str) -> str:
    if char.isprintable():
        return char
    if 0xDC80 <= ord(char) <= 0xDCFF:  # surrogateescape's stand-in for an invalid byte
        return f"\\x{ord(char) - 0xDC00:02x}"
    return char.encode("unicode_escape").decode("ascii")
