"""Text an audited system chose (tag names, Link paths, error bodies, AWS
messages, scanned file names), made safe to show.

A terminal obeys escape sequences (clear the screen, rewrite a line, open an
OSC 8 hyperlink) and a right-to-left override reorders what a reviewer reads,
so such characters are never shown raw: they become visible escapes (`\\x1b`,
`\\u202e`) in the terminal and in the HTML and Markdown reports. JSON keeps the
exact value (its encoder escapes what it must). Rich markup is not escaped
here: the CLI hands untrusted text to rich as `Text`, which rich never parses.
"""

from __future__ import annotations

import unicodedata

# Shown as text by the terminal line helpers; newlines would let a name forge
# a line of output, tabs would misalign columns.
TERMINAL_LIMIT = 500  # characters of one untrusted value on a terminal line

# Bidirectional controls (Trojan Source, CVE-2021-42574) and the Unicode line
# and paragraph separators some terminals and editors break lines at.
_BIDI_AND_SEPARATORS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029"


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _table(keep: str) -> dict[int, str]:
    controls = [chr(c) for c in range(0x100) if unicodedata.category(chr(c)) == "Cc"]  # C0, DEL, C1
    return {ord(c): _escape(c) for c in (*controls, *_BIDI_AND_SEPARATORS) if c not in keep}


_ONE_LINE = _table(keep="")
_KEEP_LINES = _table(keep="\n\t")


def visible_controls(text: str, *, keep_lines: bool = False) -> str:
    """`text` with every control, bidi and separator character replaced by
    its visible escape; `keep_lines` leaves newline and tab alone (documents
    whose layout shows them as line breaks and spaces)."""
    return text.translate(_KEEP_LINES if keep_lines else _ONE_LINE)


def shorten(text: str, limit: int) -> str:
    """At most `limit` characters, saying how many were cut."""
    if len(text) <= limit:
        return text
    cut = len(text) - limit
    return f"{text[:limit]}… ({cut} more characters)"


def terminal_text(value: object, limit: int = TERMINAL_LIMIT) -> str:
    """One untrusted value for one terminal line: capped first (so a 1 MB
    tag costs nothing), then every control character made visible."""
    return visible_controls(shorten(str(value), limit))


def document_value(value: object) -> object:
    """Jinja2 `finalize` for the HTML and Markdown reports: every rendered
    string shows its control characters visibly (line breaks kept); markup
    the template itself marked safe (`__html__`) and non-strings pass as-is."""
    if isinstance(value, str) and not hasattr(value, "__html__"):
        return visible_controls(value, keep_lines=True)
    return value
