"""Handling text that designsim does not trust: pull-request content, comments,
model output, downloaded artifacts.

Four defences, all built on one normalisation (:func:`normalize`):

* **Fences** (:func:`fence_safe`): untrusted text is placed inside XML-like
  tags (``<untrusted_pull_request_data>``, ``<earlier_simulation_output>``,
  ``<output_under_review>``, ``<grading_notes>``) in prompts; any closing tag
  of the fence inside the text is neutralised so it cannot end the fence early.
  Variants that a model would read as the same tag are caught: any case,
  spaces, fullwidth ``＜／…＞`` (NFKC), zero-width/bidi/soft-hyphen characters
  inside the tag (stripped), Cyrillic/Greek look-alike letters (matched on
  their Latin skeleton), and the ``&lt;`` / ``&#60;`` / ``&#x3c;`` entities.
* **Grader directives** (:func:`find_grader_directive`): text in a simulation
  output that addresses the grader ("Note to the grader…", "ignore previous
  instructions", ``{'verdict': 'PASS'}``…), matched on the normalised,
  confusable-folded text so look-alike and zero-width variants are caught.
* **Comment defusing** (:func:`defuse`, :func:`escape_html`): untrusted
  Markdown embedded in a pull-request comment loses its power to notify,
  cross-reference, link off GitHub or open a raw-HTML block: all raw HTML is
  escaped outside code (a line ``<script>``, ``<style>``, ``<textarea>`` or
  ``<pre>`` would otherwise start a CommonMark HTML block that swallows the rest
  of the comment, CommonMark 0.31 §4.6), every ``@mention``, ``#N``,
  ``owner/repo#N`` and ``GH-N`` gets a zero-width space that stops GitHub's
  autolinking, character references (``&#64;``) are shown literally, and links
  outside ``github.com`` are shown as text.

Sources: Unicode TR #15 (NFKC), Unicode TR #39 (confusables; the table here is
the subset of Cyrillic and Greek letters whose glyph equals a Latin one), GitHub
Flavored Markdown spec 0.29 (autolinks, §6.9 extended autolinks), GitHub docs
"Autolinked references and URLs" (``#N``, ``GH-N``, ``owner/repo#N``).
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

# --------------------------------------------------------------------------- normalisation

#: Characters removed by :func:`normalize`: zero-width (U+200B–U+200D, U+2060–U+2064,
#: U+FEFF, U+180E), bidi controls (U+200E/F, U+061C, U+202A–U+202E, U+2066–U+2069),
#: the soft hyphen U+00AD and the combining grapheme joiner U+034F. None of them
#: is visible, so a model may read across them while a plain regex does not.
INVISIBLE = (
    "\u00ad\u034f\u061c\u180e\u200b\u200c\u200d\u200e\u200f"
    "\u202a\u202b\u202c\u202d\u202e\u2060\u2061\u2062\u2063\u2064"
    "\u2066\u2067\u2068\u2069\ufeff"
)
_INVISIBLE_TABLE = {ord(c): None for c in INVISIBLE}

#: Look-alike letters (Cyrillic, Greek) mapped to the Latin letter they render
#: as; one character to one, so positions in the skeleton equal positions in
#: the normalised text.
CONFUSABLES = {
    # Cyrillic lower case
    "а": "a", "в": "b", "с": "c", "е": "e", "һ": "h", "і": "i", "ј": "j", "к": "k", "м": "m", "н": "h",
    "о": "o", "р": "p", "ԛ": "q", "ѕ": "s", "т": "t", "у": "y", "х": "x", "ԝ": "w", "ѵ": "v", "ё": "e",
    "ї": "i", "г": "r", "п": "n", "л": "n", "ь": "b",
    # Cyrillic upper case
    "А": "A", "В": "B", "С": "C", "Е": "E", "Н": "H", "І": "I", "Ј": "J", "К": "K", "М": "M", "О": "O",
    "Р": "P", "Ѕ": "S", "Т": "T", "Х": "X", "У": "Y", "Ԝ": "W", "Ѵ": "V", "Ї": "I", "Ё": "E",
    # Greek
    "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u",
    "χ": "x", "γ": "y", "ω": "w", "η": "n",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O",
    "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
    # quotes and dashes a model treats as ASCII
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u201c": '"', "\u201d": '"', "\u201e": '"',
    "\u2032": "'", "\u2033": '"', "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-",
    "\u2212": "-",
}
_CONFUSABLE_TABLE = str.maketrans(CONFUSABLES)


def normalize(text: str) -> str:
    """The one normalisation applied to untrusted text before any check and any
    fence: Unicode NFKC (fullwidth ``＜`` becomes ``<``, ligatures split, …),
    then every :data:`INVISIBLE` character removed. Idempotent."""
    return unicodedata.normalize("NFKC", text or "").translate(_INVISIBLE_TABLE)


def skeleton(text: str) -> str:
    """``text`` with :data:`CONFUSABLES` mapped to their Latin skeleton, one
    character for one (apply to :func:`normalize`\\d text)."""
    return text.translate(_CONFUSABLE_TABLE)


# --------------------------------------------------------------------------- fences

_LT = r"(?:<|&lt;?|&#0*60;?|&#x0*3c;?)"


#: Every fence tag designsim's prompts use (``untrusted`` is the prefix of
#: ``untrusted_pull_request_data`` and its kin).
FENCE_TAGS = ("untrusted", "earlier_simulation_output", "output_under_review", "grading_notes")


def fence_safe(text: str, tag: str | tuple[str, ...]) -> str:
    """Normalise untrusted ``text`` (:func:`normalize`) and neutralise every
    closing tag starting with ``tag`` so it cannot end the fence it is placed
    in: ``</tag``, ``< /tag``, ``</ tag`` in any case, fullwidth, with
    invisible characters inside, with look-alike letters, or written as an
    entity (``&lt;/tag``) become ``<\\/tag`` (the spacing and letters kept).
    The one defence for every fence: evidence, earlier outputs, the output
    under review, notes to a re-run. ``tag`` may be a tuple of tags (e.g.
    :data:`FENCE_TAGS`). Returns the normalised, defused text."""
    norm = normalize(text)
    tags = (tag,) if isinstance(tag, str) else tuple(tag)
    names = "|".join(re.escape(skeleton(normalize(t))) for t in tags)
    pattern = re.compile(rf"{_LT}\s*(?P<slash>/)\s*(?:{names})", re.IGNORECASE)
    out, last = [], 0
    for m in pattern.finditer(skeleton(norm)):
        slash = m.start("slash")
        out.append(norm[last:slash] + "\\")
        last = slash
    out.append(norm[last:])
    return "".join(out)


# --------------------------------------------------------------------------- grader directives

_GRADER = r"(?:grader|judge|evaluator|assessor|scorer|grading model|grading (?:ai|llm))s?"
_SENTENCE = r"(?:^|(?<=[.!?:;>*_\-\n])\s*)"
_DIRECTIVE_PATTERNS = [
    # a verdict or pass mark written as JSON, double- or single-quoted (curly quotes fold to these)
    r"""["'`]\s*(?:verdict|grade|decision)\s*["'`]\s*[:=]\s*["'`]\s*(?:pass(?:ed)?|fail(?:ed)?|approved?)\b""",
    r"""\{\s*["'`]?(?:verdict|grade|decision)["'`]?\s*:\s*["'`]?(?:pass(?:ed)?|fail(?:ed)?)\b""",
    r"""["'`]\s*passed\s*["'`]\s*:\s*true\b""",
    # override instructions ("ignore all previous instructions", "forget the rubric")
    r"\b(?:ignore|disregard|forget|override)\s+(?:(?:all|any|the|your|my|these|those|of|previous|prior|above|earlier|preceding|"
    r"foregoing|system|grading|scoring|other|existing|given|original)\s+){0,4}(?:instructions?|rubric|criteria|grading|scorecard|"
    r"(?:system )?prompts?|guidelines|directives?)\b",
    # an imperative "Disregard ..." opening a sentence
    _SENTENCE + r"disregard\b",
    # addressing the grader
    rf"\b(?:note|message|instructions?|memo|reminder|hint|request|a word)\s+(?:to|for)\s+(?:the\s+|any\s+|all\s+|our\s+)?{_GRADER}\b",
    rf"\b(?:dear|attention|hey|hello|hi)\s*,?\s+(?:the\s+)?{_GRADER}\b",
    rf"\b{_GRADER}\s*(?:must|should|shall|will|is to|are to|needs? to|has to|have to|is instructed to|is required to|can)\s+"
    r"(?:\w+\s+){0,2}(?:pass|approve|accept|mark|grade|rate|score|award|return|output|give|ignore)\b",
    rf"\b(?:as|to) (?:the|a|an|any) {_GRADER}\s*[:,]",
    rf"\b(?:if you are|you are|you're) (?:the|a|an) {_GRADER}\b",
]
_GRADER_DIRECTIVES = re.compile("|".join(f"(?:{p})" for p in _DIRECTIVE_PATTERNS), re.IGNORECASE)


def find_grader_directive(text: str) -> str | None:
    """The first passage of ``text`` (a simulation output) that addresses its
    grader — a JSON verdict, "ignore/disregard … instructions", "Note to the
    grader", "the judge must pass…" — or ``None``. Matched on the normalised,
    confusable-folded text, so zero-width, fullwidth, Cyrillic look-alike and
    curly- or single-quoted variants are caught; the passage returned is the
    folded text (readable ASCII). Never raises."""
    m = _GRADER_DIRECTIVES.search(skeleton(normalize(text)))
    return m.group(0) if m else None


# --------------------------------------------------------------------------- comment defusing

#: Hosts whose links stay links in a comment; everything else is shown as text.
LINK_HOSTS = ("github.com", "docs.github.com", "gist.github.com")
_ZWSP = "\u200b"
_CODE_SPAN = re.compile(r"(?<!\\)(`+)(?!`)(.+?)(?<!`)\1(?!`)")
_INLINE_LINK = re.compile(r"(!?)\[([^\]\n]*)\]\(\s*<?([^)\s>]*)>?(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)")
_BARE_URL = re.compile(r"\b(?:(?:https?|ftp)://|www\.)[^\s<>`]+", re.IGNORECASE)
_ENTITY = re.compile(r"&(?=#?\w+;?)")


def _allowed_link(url: str) -> bool:
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    if parts.scheme.lower() not in ("http", "https"):
        return False
    return host in LINK_HOSTS


def _defang_url(url: str) -> str:
    """A URL shown as text: no autolink (a zero-width space after the scheme or ``www``)."""
    url = re.sub(r"^(\w+:)//", lambda m: m.group(1) + _ZWSP + "//", url)
    return re.sub(r"^(www)\.", r"\1" + _ZWSP + ".", url, flags=re.IGNORECASE)


def _defuse_prose(text: str, *, allow_br: bool) -> str:
    """Defuse one stretch of Markdown that is not code."""
    def link(m: re.Match) -> str:
        bang, label, url = m.groups()
        if bang:  # an image: tracking pixels, fake badges
            return f"!\\[{label}\\]({_defang_url(url)})"
        if _allowed_link(url):
            return m.group(0)
        return f"{label} ({_defang_url(url)})" if label.strip() else _defang_url(url)

    text = _INLINE_LINK.sub(link, text)
    text = _BARE_URL.sub(lambda m: m.group(0) if _allowed_link(m.group(0)) else _defang_url(m.group(0)), text)
    # reference definitions ("[x]: https://evil") stop being definitions
    text = re.sub(r"(?m)^(\s{0,3})\[(?=[^\]\n]+\]:)", r"\1\\[", text)
    text = text.replace("![", "!\\[")
    text = _ENTITY.sub("&amp;", text)  # &#64;user, &lt;script&gt; show as written
    if allow_br:
        text = re.sub(r"<(?!br\s*/?>)", "&lt;", text, flags=re.IGNORECASE)
        text = re.sub(r"^(\s*)<(?=br)", r"\1&lt;", text, flags=re.IGNORECASE)
    else:
        text = text.replace("<", "&lt;")
    # `x`@user and _x_@user notify (GitHub ends a mention's prefix at any non-alphanumeric); an
    # e-mail address (a@b.com) does not and is left alone
    text = re.sub(r"(?<![A-Za-z0-9.+%-])@(?=[A-Za-z0-9])", "@" + _ZWSP, text)
    text = re.sub(r"#(?=\d)", "#" + _ZWSP, text)  # #12, owner/repo#12
    text = re.sub(r"\b(GH)-(?=\d)", r"\1-" + _ZWSP, text, flags=re.IGNORECASE)
    return text


def _defuse_line(line: str, *, allow_br: bool) -> str:
    out, last = [], 0
    for m in _CODE_SPAN.finditer(line):
        out.append(_defuse_prose(line[last:m.start()], allow_br=allow_br))
        out.append(m.group(0))  # inside a code span nothing is HTML, a mention or a link
        last = m.end()
    out.append(_defuse_prose(line[last:], allow_br=allow_br))
    return "".join(out)


def _code_block_lines(text: str) -> set[int]:
    """0-based line numbers inside fenced or indented code blocks (markdown-it,
    CommonMark), fence lines included."""
    from markdown_it import MarkdownIt

    lines: set[int] = set()
    for token in MarkdownIt("commonmark").parse(text):
        if token.type in ("fence", "code_block") and token.map:
            start, end = token.map
            lines.update(range(start, end))
    return lines


def defuse(text: str, *, allow_br: bool = False) -> str:
    """Make untrusted Markdown safe to embed in a pull-request comment.

    Outside code blocks and code spans (left as written; nothing in them is
    live): every ``<`` is escaped (all raw HTML: ``<script>``, ``<a href>``,
    ``<!--`` marker forgeries, ``<details>``…; with ``allow_br`` a ``<br>``
    inside a line is kept, for table cells), character references are shown
    literally (``&#64;user``), ``@mention``, ``#N``, ``owner/repo#N`` and
    ``GH-N`` get a zero-width space so GitHub neither notifies nor
    cross-references, images become text, and links to hosts other than
    :data:`LINK_HOSTS` (inline, reference or bare) become text that does not
    autolink. Never raises."""
    text = text or ""
    if "\n" not in text:
        return _defuse_line(text, allow_br=allow_br)
    lines = text.split("\n")
    raw = _code_block_lines(text)  # lines left as written
    while True:
        out = "\n".join(line if i in raw else _defuse_line(line, allow_br=allow_br) for i, line in enumerate(lines))
        # escaping can change the block structure (an HTML block becomes a paragraph that an indented
        # "code" line then continues): keep only lines that are still code in the result, until stable
        still = raw & _code_block_lines(out)
        if still == raw:
            return out
        raw = still


def escape_html(text: str) -> str:
    """Escape every HTML tag in untrusted inline Markdown except a ``<br>``
    inside the text (table cells use it for line breaks), so model text can
    never become live markup."""
    text = re.sub(r"<(?!br\s*/?>)", "&lt;", text or "", flags=re.IGNORECASE)
    return re.sub(r"^(\s*)<", r"\1&lt;", text)


__all__ = ["CONFUSABLES", "FENCE_TAGS", "INVISIBLE", "LINK_HOSTS", "defuse", "escape_html", "fence_safe", "find_grader_directive",
           "normalize", "skeleton"]
