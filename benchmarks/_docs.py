"""Write a benchmark's section of docs/performance.md between its start and end markers."""

from __future__ import annotations

from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs" / "performance.md"


def write_section(section: str, start: str, end: str, path: Path = DOCS) -> None:
    """Replace the text from ``start`` to ``end`` (markers included) by ``section``.

    ``section`` must begin with ``start`` and end with ``end``; without the markers in the
    file it is appended.
    """
    text = path.read_text()
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    path.write_text(text)
