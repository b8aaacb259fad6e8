"""What members' text looks like once what does not show is set aside.

Two questions share this knowledge: is a prompt empty to the eye (``is_blank``), and what
does a prompt say for a server's blocklist (``normalise``)? A character that renders as
nothing must count as nothing for both, or "foo" with a zero-width space between its letters
would pass a blocklist that refuses "foo".
"""

from __future__ import annotations

import unicodedata

import regex

# Letters and symbols that render as nothing (Hangul fillers, the braille blank).
INVISIBLE_CHARACTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
# What shows on its own: letters, numbers, punctuation and symbols. Marks only change the
# character before them (a variation selector alone is nothing), and controls, format
# characters and separators never render.
_VISIBLE_CATEGORIES = frozenset("LNPS")
# Unicode's own list of what a renderer shows as nothing unless it knows better: format
# characters, variation selectors, the combining grapheme joiner, Hangul fillers, Khmer's
# inherent vowels, tag characters... (DerivedCoreProperties: Default_Ignorable_Code_Point).
_IGNORABLE = regex.compile(r"\p{Default_Ignorable_Code_Point}")


def is_blank(text: str) -> bool:
    """True when nothing in the text would show: a prompt of U+200B and friends is empty."""
    return not any(
        unicodedata.category(char)[0] in _VISIBLE_CATEGORIES and char not in INVISIBLE_CHARACTERS
        for char in text
    )


def _renders_as_nothing(char: str) -> bool:
    return char in INVISIBLE_CHARACTERS or _IGNORABLE.match(char) is not None


def _without_invisibles(text: str) -> str:
    """Format characters (category Cf: zero-width space, joiners, word joiner, BOM, soft
    hyphen, bidirectional controls...), controls and the letters and marks that render as
    nothing are dropped; whitespace of any kind becomes one space."""
    kept: list[str] = []
    for char in text:
        category = unicodedata.category(char)
        if char.isspace() or category[0] == "Z":
            kept.append(" ")
        elif category not in ("Cf", "Cc") and not _renders_as_nothing(char):
            kept.append(char)
    return " ".join("".join(kept).split())


def normalise(text: str) -> str:
    """The text as a blocklist compares it: invisible characters removed, then Unicode NFKC
    (full-width letters are ASCII ones, ``e`` + combining acute is ``é``) and case folding
    (``FOO`` and ``Straße`` become ``foo`` and ``strasse``), with runs of whitespace as one
    space.

    Invisibles go first so that one between a letter and its accent cannot keep the two from
    composing; NFKC runs again after folding, which can leave text unnormalised, and the
    invisibles that NFKC itself produces (a half-width Hangul filler) go with a second pass.
    """
    visible = unicodedata.normalize("NFKC", _without_invisibles(text))
    return _without_invisibles(unicodedata.normalize("NFKC", visible.casefold()))
