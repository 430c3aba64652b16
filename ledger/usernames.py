"""Usernames in any alphabet: the spelling kept (NFKC) and the key an account is found by.

A name is NFKC-normalized (full-width `ｉｖａｎ` is `ivan`), 3–32 characters of letters of one
alphabet (Japanese may mix kanji and kana, Korean hangul and hanja), the ASCII digits and
`_ . -`. Invisible characters (zero-width spaces and joiners, direction marks, fillers) and
names that mix alphabets (`Ivаn` with a Cyrillic `а`) are refused: each is a way to register
a name that looks like someone else's.

Two names are the same name when their keys are equal: the key casefolds (`IVAN` is `ivan`)
and maps the Cyrillic and Greek letters that look like Latin ones, in some case, onto them
(Cyrillic `сор` is Latin `cop`, Greek `ΒΕΤΑ` is `beta`). The map is a small hand-made one for
Latin, Cyrillic and Greek, not Unicode's full UTS #39 confusables table. On ASCII the key is
exactly `str.lower()`, the key of every account registered before names could hold other
letters, so old accounts keep theirs.
"""

from __future__ import annotations

import unicodedata

from ledger.credentials import InvalidInput

MIN_CHARS, MAX_CHARS = 3, 32
PUNCTUATION = "_.-"
RULE = (f"{MIN_CHARS}–{MAX_CHARS} letters of one alphabet, digits, '_', '.' or '-'")

# Lowercase letters (after casefold and NFD, so й is и + a breve) and the Latin letter each
# looks like in at least one case: В/в is B, Н/н is H, Ρ/ρ is P.
CONFUSABLES = str.maketrans({
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ј": "j", "ԁ": "d",
    "һ": "h", "ԛ": "q", "ԝ": "w", "ӏ": "l", "ү": "y", "ѵ": "v",
    # Greek
    "α": "a", "β": "b", "ε": "e", "ζ": "z", "η": "h", "ι": "i", "κ": "k", "μ": "m",
    "ν": "n", "ο": "o", "ρ": "p", "τ": "t", "υ": "y", "χ": "x", "ω": "w", "ϲ": "c",
    "ϳ": "j",
    # Latin letters outside ASCII that pass for ASCII ones
    "ı": "i", "ɑ": "a", "ɡ": "g", "ɩ": "i",
})
# Default-ignorable code points that are not of a format/control/space category: Hangul
# fillers, the combining grapheme joiner, variation selectors, the braille blank.
INVISIBLE = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u3164\uffa0\u2800"
                      + "".join(map(chr, range(0x180b, 0x1810)))
                      + "".join(map(chr, range(0xfe00, 0xfe10))))
# Alphabets that one language writes together.
ALLOWED_MIXES = ({"Han", "Hiragana", "Katakana"}, {"Han", "Hangul"})
SCRIPT_OF_WORD = {"CJK": "Han", "IDEOGRAPHIC": "Han", "KATAKANA-HIRAGANA": "Katakana"}


class InvalidUsername(InvalidInput):
    """Why a name is refused, in English, with a `reason` code and its `params` so that a
    page can say it in the reader's language: "rule", "invisible" (char: U+200B), "space",
    "character" (char), "mixed_scripts" (scripts: the alphabets' English names)."""

    def __init__(self, reason: str, message: str, **params: str) -> None:
        super().__init__("username", message)
        self.reason, self.params = reason, params


def normalize_username(raw: object) -> str:
    """The name as it is kept (NFKC), or InvalidUsername saying why in plain words."""
    if not isinstance(raw, str):
        raise InvalidUsername("rule", RULE)
    name = unicodedata.normalize("NFKC", raw)
    hidden = next((ch for ch in raw + name if invisible(ch)), None)  # as sent, then as kept
    if hidden is not None:
        char = f"U+{ord(hidden):04X}"
        raise InvalidUsername("invisible", f"a username cannot hold invisible characters "
                                           f"({char})", char=char)
    if not MIN_CHARS <= len(name) <= MAX_CHARS:
        raise InvalidUsername("rule", RULE)
    previous = ""
    for ch in name:
        if ch.isspace():
            raise InvalidUsername("space", f"{RULE}; a space is none of these")
        if not _allowed(ch, previous):
            char = f"“{ch}”" if ch.isprintable() else f"U+{ord(ch):04X}"
            raise InvalidUsername("character", f"{RULE}; {char} is none of these", char=char)
        previous = ch
    scripts = sorted({script(ch) for ch in name if ch.isalpha()})
    if len(scripts) > 1 and not any(set(scripts) <= mix for mix in ALLOWED_MIXES):
        raise InvalidUsername("mixed_scripts", f"a username is written in one alphabet; this "
                                               f"one mixes {' and '.join(scripts)}",
                              scripts=", ".join(scripts))
    return name


def username_key(name: str) -> str:
    """The key two spellings of one name share: NFKC, no invisible characters, casefolded,
    look-alike letters mapped to Latin (see CONFUSABLES)."""
    text = "".join(ch for ch in unicodedata.normalize("NFKC", name) if not invisible(ch))
    text = unicodedata.normalize("NFD", text.casefold()).translate(CONFUSABLES)
    return unicodedata.normalize("NFC", text)


def invisible(ch: str) -> bool:
    """Zero-width, direction and other format characters, controls and fillers."""
    return unicodedata.category(ch) in {"Cf", "Cc"} or ch in INVISIBLE


def script(ch: str) -> str:
    """A letter's alphabet, from the first word of its Unicode name: LATIN, CYRILLIC, …"""
    word = unicodedata.name(ch, "UNKNOWN").split()[0]
    return SCRIPT_OF_WORD.get(word, word.title())


def _allowed(ch: str, previous: str) -> bool:
    if ch.isascii():
        return ch.isalnum() or ch in PUNCTUATION
    category = unicodedata.category(ch)
    if category.startswith("M"):  # an accent or vowel sign, on a letter only
        return previous.isalpha() or unicodedata.category(previous or " ").startswith("M")
    return category.startswith("L")
