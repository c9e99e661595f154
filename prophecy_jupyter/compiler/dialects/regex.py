"""DuckDB's regular expressions (RE2) carried over to each engine's regex flavour.

The same pattern text does not match the same strings everywhere: ``.`` matches a newline in
PostgreSQL but not in RE2, ``$`` also matches before a final newline in Java, ``\\s`` takes
a vertical tab in Java and PostgreSQL but not in RE2, ``\\w`` and ``[[:alpha:]]`` follow the
locale in PostgreSQL, ``\\b`` is a backspace there. A pattern is read into tokens and each
flavour writes every token with what matches exactly the same characters, or refuses it
(`Untranslatable`). Only literal patterns can be checked, so only those are carried over.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass


class Untranslatable(Exception):
    """The pattern uses something the flavour cannot match the same way."""


@dataclass(frozen=True)
class Token:
    kind: str
    """``escape`` (``\\x``), ``class`` (``[…]``), ``group`` (``(`` or ``(?…``), ``lazy``
    (``?`` after a quantifier), ``dot``, ``end`` (``$``) or ``char``."""
    text: str


def tokens(pattern: str) -> Iterator[Token]:
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "\\":
            j = _escape_end(pattern, i)
            yield Token("escape", pattern[i:j])
            i = j
        elif char == "[":
            j = _class_end(pattern, i)
            yield Token("class", pattern[i:j])
            i = j
        elif char == "(" and pattern.startswith("(?", i):
            j = i + 2
            while j < n and pattern[j] not in ":)>'=!<" and not pattern.startswith("P<", j):
                j += 1
            if pattern.startswith("P<", j):
                j += 1
            yield Token("group", pattern[i : min(j + 1, n)])
            i = j + 1
        elif char == "?" and i > 0 and pattern[i - 1] in "*+?}" and not _escaped(pattern, i - 1):
            yield Token("lazy", char)
            i += 1
        elif char == ".":
            yield Token("dot", char)
            i += 1
        elif char == "$":
            yield Token("end", char)
            i += 1
        else:
            yield Token("char", char)
            i += 1


def _escaped(pattern: str, i: int) -> bool:
    slashes = 0
    while i - 1 - slashes >= 0 and pattern[i - 1 - slashes] == "\\":
        slashes += 1
    return slashes % 2 == 1


def _escape_end(pattern: str, i: int) -> int:
    if i + 1 >= len(pattern):
        raise Untranslatable("the pattern ends with a lone backslash")
    letter = pattern[i + 1]
    if letter == "Q":
        end = pattern.find("\\E", i + 2)
        return len(pattern) if end < 0 else end + 2
    if letter in "pPx" and pattern.startswith("{", i + 2):
        end = pattern.find("}", i + 3)
        if end < 0:
            raise Untranslatable(f"unterminated \\{letter}{{")
        return end + 1
    if letter in "pP":
        return i + 3
    if letter == "x":
        return i + 4
    return i + 2


def _class_end(pattern: str, i: int) -> int:
    j = i + 1
    if j < len(pattern) and pattern[j] == "^":
        j += 1
    if j < len(pattern) and pattern[j] == "]":
        j += 1
    while j < len(pattern):
        if pattern[j] == "\\":
            j += 2
        elif pattern.startswith("[:", j):
            end = pattern.find(":]", j + 2)
            if end < 0:
                raise Untranslatable("unterminated [: class")
            j = end + 2
        elif pattern[j] == "]":
            return j + 1
        else:
            j += 1
    raise Untranslatable("unterminated character class")


@dataclass(frozen=True)
class ClassItem:
    kind: str
    """``escape``, ``posix`` (``[:alpha:]``) or ``char``."""
    text: str


def class_items(text: str) -> tuple[bool, list[ClassItem]]:
    """Whether a ``[…]`` token is negated, and its items."""
    body = text[1:-1]
    negated = body.startswith("^")
    if negated:
        body = body[1:]
    items: list[ClassItem] = []
    i = 0
    while i < len(body):
        if body[i] == "\\":
            j = _escape_end(body, i)
            items.append(ClassItem("escape", body[i:j]))
            i = j
        elif body.startswith("[:", i):
            end = body.find(":]", i + 2)
            items.append(ClassItem("posix", body[i + 2 : end]))
            i = end + 2
        else:
            items.append(ClassItem("char", body[i]))
            i += 1
    return negated, items


# -- what RE2's classes hold (ASCII), spelled for flavours that read them otherwise ----------

SPACE = "\\t\\n\\f\\r "
WORD = "0-9A-Za-z_"
POSIX_RANGES = {
    "alpha": "A-Za-z",
    "digit": "0-9",
    "alnum": "0-9A-Za-z",
    "upper": "A-Z",
    "lower": "a-z",
    "space": "\\t\\n\\v\\f\\r ",
    "blank": "\\t ",
    "xdigit": "0-9A-Fa-f",
    "word": WORD,
    "punct": "!-/:-@\\[-`{-~",
    "cntrl": "\\x00-\\x1f\\x7f",
    "print": " -~",
    "graph": "!-~",
}
SHORTHANDS = {"\\d": "0-9", "\\w": WORD, "\\s": SPACE}
NEGATED = {"\\D": "\\d", "\\W": "\\w", "\\S": "\\s"}
WORD_BOUNDARY_JAVA = f"(?:(?<=[{WORD}])(?![{WORD}])|(?<![{WORD}])(?=[{WORD}]))"
NOT_WORD_BOUNDARY_JAVA = f"(?:(?<=[{WORD}])(?=[{WORD}])|(?<![{WORD}])(?![{WORD}]))"


@dataclass(frozen=True)
class Flavour:
    """How one engine's regex syntax writes each RE2 token."""

    name: str
    write: Callable[[Token], str]

    def translate(self, pattern: str) -> str:
        return "".join(self.write(t) for t in tokens(pattern))


def _ascii_class(item_text: Callable[[ClassItem], str], token: Token) -> str:
    negated, items = class_items(token.text)
    return "[" + ("^" if negated else "") + "".join(item_text(i) for i in items) + "]"


def _java(token: Token) -> str:
    kind, text = token.kind, token.text
    if kind == "dot":
        return "[^\\n]"
    if kind == "end":
        return "\\z"
    if kind == "group":
        if text == "(?:":
            return text
        raise Untranslatable(f"{text} (inline flags and named groups) is not carried over")
    if kind == "class":
        return _ascii_class(_java_class_item, token)
    if kind == "escape":
        return _java_escape(text)
    return text


def _java_escape(text: str) -> str:
    if text == "\\s":
        return f"[{SPACE}]"
    if text == "\\S":
        return f"[^{SPACE}]"
    if text == "\\b":
        return WORD_BOUNDARY_JAVA
    if text == "\\B":
        return NOT_WORD_BOUNDARY_JAVA
    if text == "\\v":
        return "\\x0B"
    if text[1].isdigit() or text == "\\C":
        raise Untranslatable(f"{text} is not carried over")
    if text[1] in "pP" and not _general_category(text):
        raise Untranslatable(f"{text}: only Unicode general categories are carried over")
    return text


def _general_category(text: str) -> bool:
    name = text[3:-1] if text[2:3] == "{" else text[2:]
    return name.isalpha() and len(name) <= 2


def _java_class_item(item: ClassItem) -> str:
    if item.kind == "posix":
        return _posix(item.text)
    if item.kind == "escape":
        if item.text in SHORTHANDS:
            return SHORTHANDS[item.text]
        if item.text in NEGATED or item.text in {"\\b", "\\B"} or item.text[1].isdigit():
            raise Untranslatable(f"{item.text} inside [...] is not carried over")
        return "\\x0B" if item.text == "\\v" else item.text
    # Java reads `[` (a union) and `&&` (an intersection) inside a class.
    return "\\" + item.text if item.text in "[&" else item.text


def _posix(name: str) -> str:
    ranges = POSIX_RANGES.get(name)
    if ranges is None:
        raise Untranslatable(f"[:{name}:] is not carried over")
    return ranges


def _postgres(token: Token) -> str:
    kind, text = token.kind, token.text
    if kind == "dot":
        return "[^\\n]"
    if kind == "lazy":
        raise Untranslatable("lazy quantifiers match differently in PostgreSQL")
    if kind == "group":
        if text == "(?:":
            return text
        raise Untranslatable(f"{text} (inline flags and named groups) is not carried over")
    if kind == "class":
        return _ascii_class(_postgres_class_item, token)
    if kind == "escape":
        return _postgres_escape(text)
    return text


def _postgres_escape(text: str) -> str:
    replacements = {
        "\\b": "\\y",
        "\\B": "\\Y",
        "\\z": "\\Z",
        "\\d": "[0-9]",
        "\\D": "[^0-9]",
        "\\w": f"[{WORD}]",
        "\\W": f"[^{WORD}]",
        "\\s": f"[{SPACE}]",
        "\\S": f"[^{SPACE}]",
    }
    if text in replacements:
        return replacements[text]
    if text[1].isdigit() or text[1] in "pPQCx":
        raise Untranslatable(f"{text} is not carried over")
    return text


def _postgres_class_item(item: ClassItem) -> str:
    if item.kind == "posix":
        return _posix(item.text)
    if item.kind == "escape":
        if item.text in SHORTHANDS:
            return SHORTHANDS[item.text]
        if item.text in NEGATED or item.text[1].isdigit() or item.text[1] in "bBpPx":
            raise Untranslatable(f"{item.text} inside [...] is not carried over")
    return item.text


def _re2(token: Token) -> str:
    return token.text


CONTROL = {"\\t": "\t", "\\n": "\n", "\\r": "\r", "\\f": "\f", "\\v": "\v"}
POSIX_SHORTHANDS = {"\\d": "0-9", "\\w": WORD, "\\s": "\t\n\f\r "}


def _posix_ere(token: Token) -> str:
    kind, text = token.kind, token.text
    if kind in {"lazy", "group"}:
        raise Untranslatable(f"{text} is not carried over to POSIX regular expressions")
    if kind == "class":
        negated, items = class_items(text)
        return _portable_class(negated, items)
    if kind == "escape":
        if text in CONTROL:
            return CONTROL[text]
        if text in POSIX_SHORTHANDS:
            return _portable_class(False, [ClassItem("escape", text)])
        if text in NEGATED:
            return _portable_class(True, [ClassItem("escape", NEGATED[text])])
        if text[1].isalnum():
            raise Untranslatable(f"{text} is not carried over to POSIX regular expressions")
    return text


def _literal_controls(text: str) -> str:
    for escape, char in CONTROL.items():
        text = text.replace(escape, char)
    return text


def _portable_class(negated: bool, items: list[ClassItem]) -> str:
    """A bracket expression without escapes, read alike whether or not an engine takes a
    backslash inside brackets as an escape: ``]`` first, ``-`` last, a backslash doubled,
    control characters as themselves."""
    chars: list[str] = []
    parts: list[str] = []
    index = 0
    while index < len(items):
        item = items[index]
        ahead = items[index + 1 : index + 3]
        if (
            item.kind == "char"
            and len(ahead) == 2
            and ahead[0].text == "-"
            and ahead[1].kind == "char"
            and item.text.isalnum()
            and ahead[1].text.isalnum()
        ):
            parts.append(f"{item.text}-{ahead[1].text}")  # a range of letters or digits
            index += 3
            continue
        if item.kind == "posix":
            _posix(item.text)  # only the classes RE2 knows
            parts.append(f"[:{item.text}:]")
        elif item.kind == "escape" and item.text in POSIX_SHORTHANDS:
            parts.append(_literal_controls(POSIX_SHORTHANDS[item.text]))
        elif item.kind == "escape" and item.text in CONTROL:
            chars.append(CONTROL[item.text])
        elif item.kind == "escape" and not item.text[1].isalnum():
            chars.append(item.text[1])
        elif item.kind == "char" and item.text == "-" and 0 < index < len(items) - 1:
            raise Untranslatable("a range of other than letters or digits is not carried over")
        elif item.kind == "char":
            chars.append(item.text)
        else:
            raise Untranslatable(f"{item.text} inside [...] is not carried over to POSIX")
        index += 1
    body = "".join(parts) + "".join(c for c in chars if c not in "]-^\\")
    if "^" in chars:
        body += "^"
    if "\\" in chars:
        body += "\\\\"
    if not body and "]" not in chars and "-" not in chars:
        raise Untranslatable("an empty [...]")
    return (
        "["
        + ("^" if negated else "")
        + ("]" if "]" in chars else "")
        + body
        + ("-" if "-" in chars else "")
        + "]"
    )


JAVA = Flavour("Java", _java)
POSTGRES = Flavour("PostgreSQL", _postgres)
RE2 = Flavour("RE2", _re2)
POSIX = Flavour("POSIX", _posix_ere)


# -- replacement strings ---------------------------------------------------------------------


def replacement_parts(text: str) -> Iterator[tuple[str, str]]:
    """RE2's replacement syntax: (``group``, digit) for ``\\0``-``\\9``, else (``text``, …)."""
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt.isdigit():
                yield "group", nxt
            elif nxt == "\\":
                yield "text", "\\"
            else:
                raise Untranslatable(f"\\{nxt} in the replacement is not RE2 syntax")
            i += 2
        else:
            yield "text", text[i]
            i += 1


def write_replacement(text: str, group: Callable[[int], str], literal: Mapping[str, str]) -> str:
    """A replacement with each group reference written by ``group`` and characters that the
    target treats specially escaped per ``literal``."""
    out = []
    for kind, value in replacement_parts(text):
        out.append(group(int(value)) if kind == "group" else literal.get(value, value))
    return "".join(out)
