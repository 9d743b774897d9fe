"""The README's measured figures come from bench/RESULTS.md, so the two cannot drift apart.

A figure sentence is a README sentence that links to bench/RESULTS.md; every sentence that
says "Measured" or "Latest full run" must be one. In it, each bold span (the headline figures)
must appear word for word in RESULTS.md, and every other number must be one RESULTS.md has.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
RESULTS = (ROOT / "bench" / "RESULTS.md").read_text()
LINK = "](bench/RESULTS.md"
CODE = re.compile(r"`[^`]*`")
TARGET = re.compile(r"\]\([^)]*\)")  # a link's target; its text stays
BOLD = re.compile(r"\*\*(.+?)\*\*", re.DOTALL)
NUMBER = re.compile(r"(?<![A-Za-z0-9_.])\d+(?:[.,]\d+)*(?![A-Za-z0-9_])")


def flat(text: str) -> str:
    return " ".join(text.split())


def sentences(text: str) -> list[str]:
    """Sentences of the paragraphs and list items outside code fences and tables."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    text = re.sub(r"^\|.*$", "", text, flags=re.MULTILINE)
    blocks = re.split(r"\n\s*\n|\n(?=\s*- )", text)
    return [
        sentence
        for block in blocks
        for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z`(\[*])", flat(block))
        if sentence
    ]


FIGURES = [s for s in sentences(README) if LINK in s]
RESULT_TEXT = flat(RESULTS)
RESULT_NUMBERS = {n.replace(",", "") for n in re.findall(r"\d+(?:[.,]\d+)*", RESULTS)}


def test_measurements_link_to_the_results() -> None:
    unlinked = [
        s
        for s in sentences(README)
        if re.search(r"\bMeasured\b|Latest full run", s) and LINK not in s
    ]
    assert not unlinked, unlinked
    assert len(FIGURES) >= 8  # check, scrape, fleet, Modbus, SNMP, fuzz, soak, benchmarks


def test_headline_figures_are_quoted_from_the_results() -> None:
    missing = [
        bold
        for sentence in FIGURES
        for bold in BOLD.findall(sentence)
        if re.search(r"\d", bold) and flat(bold) not in RESULT_TEXT
    ]
    assert not missing, missing


def test_every_other_number_is_one_the_results_have() -> None:
    strange = []
    for sentence in FIGURES:
        prose = BOLD.sub(" ", TARGET.sub("]", CODE.sub(" ", sentence)))
        strange += [n for n in NUMBER.findall(prose) if n.replace(",", "") not in RESULT_NUMBERS]
    assert not strange, strange


def test_links_point_at_sections_that_exist() -> None:
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", heading.strip().lower()).replace(" ", "-")
        for heading in re.findall(r"^#+ (.+)$", RESULTS, re.MULTILINE)
    }
    wanted = set(re.findall(r"\]\(bench/RESULTS\.md#([^)]+)\)", README))
    assert wanted and wanted <= anchors, wanted - anchors
