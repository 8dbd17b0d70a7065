"""Untrusted text into Markdown: shown exactly as written, never interpreted as HTML or Markdown.

Provider errors and answers, model ids and display names from a pool file, uploaded file and
column names are data, not markup. The UI's ``gr.Markdown`` components render Markdown and
then run Gradio's HTML sanitizer, which removes scripts but keeps tags like ``<img>`` (a remote
image is fetched by the viewer's browser: a tracking pixel). So every piece of untrusted text
that goes into Markdown the UI builds passes through one of these helpers first:

* :func:`md_text`: inline text. HTML's ``& < >`` become entities and Markdown's punctuation is
  backslash-escaped (CommonMark renders both as the literal character), line breaks become
  spaces, so a value can neither open a tag, nor an image, link, emphasis, heading or list.
* :func:`md_code`: inline code (a model id in backticks); code spans show their content
  literally, whatever backticks it holds.
* :func:`escape_html`: text for places that take HTML (``gr.Error`` toasts render HTML).
* :func:`md_answer`: a model's answer shown *as Markdown* (the chat renders its headings, lists,
  tables and code): HTML in it is made inert (``<`` becomes ``&lt;`` outside code) and images
  become plain links, so an answer can neither add markup nor make the browser fetch anything.

Plain-text components (``gr.Textbox``, ``gr.Dataframe`` with ``str`` cells, ``gr.JSON``) show
text as it is and need none of this.
"""

from __future__ import annotations

import html
import re
from typing import Any

__all__ = ["md_text", "md_code", "escape_html", "md_answer"]

# Markdown punctuation that can start inline markup (emphasis, code, links, images, tables,
# strikethrough, maths, autolinks) or a block at the start of a line; CommonMark renders "\X" as "X".
_MD_PUNCT = re.compile(r"([\\`*_\[\]{}()!#|~$+=\-.:])")
_LINE_BREAKS = re.compile(r"\s*[\r\n]+\s*")


def escape_html(text: Any) -> str:
    """``text`` with ``& < >`` as HTML entities (shown literally wherever HTML is rendered)."""
    return html.escape("" if text is None else str(text), quote=False)


def md_text(text: Any) -> str:
    """``text`` for inline use in Markdown: renders as exactly these characters, on one line."""
    if text is None:
        return ""
    flat = _LINE_BREAKS.sub(" ", str(text)).strip()
    return escape_html(_MD_PUNCT.sub(r"\\\1", flat))


def md_code(text: Any) -> str:
    """``text`` as an inline code span, whatever backticks or markup it holds."""
    value = _LINE_BREAKS.sub(" ", "" if text is None else str(text)).strip()
    if not value:
        return ""
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{fence}{pad}{value}{pad}{fence}"


# A fenced code block (``` or ~~~, up to its closing fence or the end) or an inline code span.
_CODE = re.compile(r"(?ms)^[ \t]{0,3}(`{3,}|~{3,})[^\n]*\n.*?(?:^[ \t]{0,3}\1[ \t]*$|\Z)|(`+)(?!`).+?(?<!`)\2(?!`)")
_IMAGE = re.compile(r"!\[")


def md_answer_text(markdown: Any) -> str:
    """The text :func:`md_answer` was given, read back from what it returned (outside code, ``&lt;``
    and ``&amp;`` are ``<`` and ``&`` again): what a person typed, for editing it."""
    if markdown is None:
        return ""
    source, out, at = str(markdown), [], 0
    for match in _CODE.finditer(source):
        out.append(source[at:match.start()].replace("&lt;", "<").replace("&amp;", "&"))
        out.append(match.group(0))
        at = match.end()
    out.append(source[at:].replace("&lt;", "<").replace("&amp;", "&"))
    return "".join(out)


def md_answer(text: Any) -> str:
    """A model's answer as Markdown that renders its formatting but no HTML and no images.

    Outside code, ``&`` and ``<`` become entities (a tag or an autolink shows as text; with no
    ``<`` no tag can open) and ``![alt](url)`` becomes the link ``[image: alt](url)``
    (nothing is fetched unless the reader clicks). Code blocks and spans are left as they are:
    the renderer shows their content literally.
    """
    if text is None:
        return ""
    source, out, at = str(text), [], 0

    def inert(piece: str) -> str:
        return _IMAGE.sub("[image: ", piece.replace("&", "&amp;").replace("<", "&lt;"))

    for match in _CODE.finditer(source):
        out.append(inert(source[at:match.start()]))
        out.append(match.group(0))
        at = match.end()
    out.append(inert(source[at:]))
    return "".join(out)
