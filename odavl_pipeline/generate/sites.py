"""Error sites: the places in a project's code that produce its error signatures."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import NamedTuple

from odavl_pipeline.generate.randomness import seeded_random
from odavl_pipeline.generate.vocabulary import (
    DEMO_PROJECT,
    DEMO_SITES,
    DETECTORS_JS,
    DETECTORS_PY,
    DETECTORS_TS,
    DYNAMIC_SLOTS,
    ERRORS_JS_TS,
    ERRORS_PY,
    FIXED_SLOTS,
    JS_TS_SOURCE_DIRS,
    PY_SOURCE_DIRS,
    Catalogue,
    Detectors,
)


@dataclass
class Site:
    """One place in the code that produces one error signature."""

    detector: str
    severity: str
    template: str  # the message, with the dynamic slots still to fill per occurrence
    dynamic: tuple[str, ...]  # the DYNAMIC_SLOTS in the template
    file: str
    line: int
    code: str | None
    suggestion: str | None
    weight: float  # how often it fires relative to the project's other sites
    active: tuple[tuple[int, int], ...]  # half-open ranges of day indices

    def active_on(self, day_index: int) -> bool:
        """Whether the site fires on that day."""
        return any(first <= day_index < end for first, end in self.active)


class _Draft(NamedTuple):
    """A drawn site before the draws that only a new (detector, file, message) gets."""

    detector: str
    severity: str
    message: str
    code: str | None
    suggestion: str | None  # a template of the fixed slots
    file: str
    slots: dict[str, str]


def project_sites(org: str, project: str, language: str, seed: int, days: int) -> list[Site]:
    """20 to 60 distinct sites (the demo ones included in the demo project), Zipf-weighted."""
    rng = seeded_random(seed, "sites", org, project)
    catalogue, detectors = _catalogue(language)
    files = _code_files(language, rng, rng.randint(12, 30))
    is_demo = (org, project) == DEMO_PROJECT
    sites = [_demo_site(*demo, days) for demo in DEMO_SITES] if is_demo else []
    demo_count = len(sites)
    seen: set[tuple[str, str, str]] = set()
    target = rng.randint(20, 60)
    attempts = 0
    while len(sites) < target and attempts < target * 10:
        attempts += 1
        draft = _draw(catalogue, detectors, files, rng)
        key = (draft.detector, draft.file, draft.message)
        if key in seen:
            continue
        seen.add(key)
        sites.append(_site(draft, days, rng))
    _rank_popularity(sites, demo_count, rng)
    return sites


def _catalogue(language: str) -> tuple[Catalogue, Detectors]:
    """The error messages and the detector weights of a project's language."""
    if language == "python":
        return ERRORS_PY, DETECTORS_PY
    return ERRORS_JS_TS, (DETECTORS_JS if language == "javascript" else DETECTORS_TS)


def _demo_site(detector: str, severity: str, message: str, file: str, line: int, days: int) -> Site:
    """One of the demo signatures of DESIGN.md: active every day."""
    return Site(detector, severity, message, (), file, line, None, None, 0.0, ((0, days),))


def _draw(
    catalogue: Catalogue, detectors: Detectors, files: list[str], rng: random.Random
) -> _Draft:
    """A detector, one of its messages with the fixed slots filled, and a file."""
    names = tuple(name for name, _ in detectors)
    weights = tuple(weight for _, weight in detectors)
    detector = rng.choices(names, weights)[0]
    severity, template, code, suggestion = rng.choice(catalogue[detector])
    file = rng.choice(files)
    slots = {name: rng.choice(values) for name, values in FIXED_SLOTS.items()}
    if detector == "circular":
        file, slots["cycle"] = _cycle(files, file, rng)
    kept_dynamic = {slot: "{" + slot + "}" for slot in DYNAMIC_SLOTS}
    message = template.format(**slots, **kept_dynamic)
    return _Draft(detector, severity, message, code, suggestion, file, slots)


def _cycle(files: list[str], file: str, rng: random.Random) -> tuple[str, str]:
    """The file a circular import is reported in, and the cycle's text."""
    first, second, third = rng.sample(files, 3) if len(files) >= 3 else (file, file, file)
    if rng.random() < 0.5:
        return first, " → ".join((first, second, third, first))
    return first, f"{first} → {second} → {first}"


def _site(draft: _Draft, days: int, rng: random.Random) -> Site:
    """The site of a new draft: its suggestion, line and active days drawn."""
    suggestion = None
    if draft.suggestion and rng.random() < 0.8:
        suggestion = draft.suggestion.format(**draft.slots)
    return Site(
        detector=draft.detector,
        severity=draft.severity,
        template=draft.message,
        dynamic=tuple(slot for slot in DYNAMIC_SLOTS if "{" + slot + "}" in draft.message),
        file=draft.file,
        line=rng.randint(1, 400),
        code=draft.code,
        suggestion=suggestion,
        weight=0.0,
        active=_activity(rng, days),
    )


def _rank_popularity(sites: list[Site], demo_count: int, rng: random.Random) -> None:
    """Zipf-like weights: a few noisy signatures, a long tail of rare ones. The demo
    signatures, when present, take ranks 6 to 10: frequent, but not the top five."""
    order = list(range(demo_count, len(sites)))
    rng.shuffle(order)
    order[demo_count:demo_count] = range(demo_count)
    for rank, index in enumerate(order, start=1):
        sites[index].weight = 1.0 / rank**1.1


def _code_files(language: str, rng: random.Random, count: int) -> list[str]:
    """Up to `count` distinct source files in the usual folders of the language."""
    folders = PY_SOURCE_DIRS if language == "python" else JS_TS_SOURCE_DIRS
    possible = sum(len(names) for names in folders.values())
    files: list[str] = []
    while len(files) < count:
        folder = rng.choice(tuple(folders))
        path = _code_path(language, folder, rng.choice(folders[folder]))
        if path not in files:
            files.append(path)
        if len(files) >= possible:
            break
    return files


def _code_path(language: str, folder: str, name: str) -> str:
    """The path of a source file named `name` in `folder`."""
    if language == "python":
        return f"app/{folder}/{name}.py"
    jsx = folder in ("components", "pages")
    if language == "javascript":
        return f"src/{folder}/{name}{'.jsx' if jsx else '.js'}"
    return f"src/{folder}/{name}{'.tsx' if jsx else '.ts'}"


def _activity(rng: random.Random, days: int) -> tuple[tuple[int, int], ...]:
    """When a site fires: always, from some day on, until it is fixed, or it regresses."""
    roll = rng.random()
    if days < 3 or roll < 0.6:
        return ((0, days),)
    change_day = rng.randrange(1, days)
    if roll < 0.75:
        return ((change_day, days),)
    if roll < 0.9:
        return ((0, change_day),)
    regression_day = rng.randrange(change_day, days)
    if regression_day + 1 < days:
        return ((0, change_day), (regression_day + 1, days))
    return ((0, change_day),)
