"""The text of an uploaded file: UTF-8, or Windows-1251 (what a Russian Excel saves a CSV as).

The charset comes from a `charset` form field or the file part's own Content-Type
(`text/csv; charset=windows-1251`); undeclared bytes that are not UTF-8 are read as
Windows-1251 when the result is plausible Russian text, and refused otherwise.
"""

from __future__ import annotations

import re

# The names people and programs write for the two charsets, and Python's codec for each.
CHARSETS = {"utf-8": "utf-8-sig", "utf8": "utf-8-sig", "windows-1251": "cp1251",
            "cp1251": "cp1251", "windows1251": "cp1251", "cp-1251": "cp1251"}
SUPPORTED = "utf-8 or windows-1251"
# Windows-1251 decodes almost any bytes, so a Latin-1 "café" would come out as "cafй": a word
# that mixes Latin and Cyrillic letters means the guess was wrong.
MIXED_WORD = re.compile(r"[A-Za-z][\u0400-\u04ff]|[\u0400-\u04ff][A-Za-z]")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # a binary file, not a CSV
CONTENT_TYPE_CHARSET = re.compile(r";\s*charset\s*=\s*\"?([A-Za-z0-9_.:\-]+)", re.IGNORECASE)


class NotText(ValueError):
    """The bytes are not text in the declared (or any supported) charset; str(e) says why."""


class UnknownCharset(ValueError):
    """A declared charset this service does not read."""


def declared_charset(content_type: str | None) -> str | None:
    """The charset parameter of a Content-Type header, if any."""
    found = CONTENT_TYPE_CHARSET.search(content_type or "")
    return found.group(1) if found else None


def decode_upload(raw: bytes, declared: str | None = None) -> str:
    """The file's text. `declared`: a charset name from the request, or None to detect."""
    if declared is not None and declared.strip():
        codec = CHARSETS.get(declared.strip().lower())
        if codec is None:
            raise UnknownCharset(f"the charset {declared.strip()[:40]!r} is not one of "
                                 f"{SUPPORTED}")
        try:
            return raw.decode(codec)
        except UnicodeDecodeError:
            raise NotText(f"the file is not {declared.strip()[:40]} text") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        text = raw.decode("cp1251")
    except UnicodeDecodeError:  # 0x98 is the one byte Windows-1251 leaves undefined
        raise NotText("the file is neither UTF-8 nor Windows-1251 text") from None
    if MIXED_WORD.search(text) or CONTROL.search(text):
        raise NotText("the file is neither UTF-8 nor Windows-1251 text") from None
    return text
