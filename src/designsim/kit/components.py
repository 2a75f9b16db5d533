"""The component library: list, show, and generate a missing component just in time.

Components are the "parts bin" of seed 002, Appendix F: ``personas/``,
``protocols/`` and ``constraints/`` text files (``.md`` or ``.txt``) in the
bundled ``prompts/`` directory, overridable by a repository-local directory
(convention: ``.designsim/prompts/``, searched first).

:func:`generate_component` is the *synthesised* algorithm of seed 002,
Appendix H, not the flawed draft of Appendix F:

1. the component keeps the **required name** (the one the goal map or
   rulebook already uses) — no ``autogen_*`` names;
2. **idempotency check first**: if a component of that kind and name exists
   anywhere on the search path, nothing happens (no description asked, no
   model call, no write);
3. a one-line description (given, or asked for); an empty one aborts;
4. one model call generates the text, which must look like a component of
   that kind (:func:`component_problems`: length, shape, not a refusal), or
   nothing is written;
5. the file is written **atomically** (temp file, fsync, rename) into the
   repository-local directory; a crash leaves no partial component;
6. the goal map is **never** edited: the name it already uses now resolves.

A run killed between writing the temp file and renaming it leaves only a
hidden ``.NAME.md.*.tmp`` file beside the target; the next run removes it.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from designsim.errors import ConfigError, PermanentProviderError
from designsim.fileio import atomic_write_text, stale_temp_files
from designsim.prompts import COMPONENT_KINDS, COMPONENT_SUFFIXES, PromptLibrary
from designsim.providers.base import GenerationRequest, Provider

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
GENERATION_TEMPLATE = "init/component.md.j2"
#: Output-token cap of the generation call (a component is ≤ 250 words).
GENERATION_MAX_TOKENS = 2048


def normalise_kind(kind: str) -> str:
    """``persona``/``personas``/``Persona`` → ``personas`` (one of
    :data:`designsim.prompts.COMPONENT_KINDS`). Raises :class:`ConfigError`."""
    k = kind.strip().lower()
    k = k if k.endswith("s") else k + "s"
    if k not in COMPONENT_KINDS:
        raise ConfigError(f"unknown component kind {kind!r}; expected one of persona, protocol, constraint", field="kind")
    return k


def normalise_name(name: str) -> str:
    """The component name without a ``.md``/``.txt`` suffix. Raises
    :class:`ConfigError` unless it is a plain file stem (letters, digits,
    ``_ . -``; no path separators), so a name can never escape its directory."""
    stem = name.strip()
    for suffix in COMPONENT_SUFFIXES:
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    if not _NAME.match(stem) or stem in {".", ".."}:
        raise ConfigError(f"invalid component name {name!r}: use letters, digits, '_', '.', '-' (no '/')", field="name")
    return stem


# --------------------------------------------------------------------------- list / show


@dataclass(frozen=True)
class ComponentEntry:
    """One component file on the search path. ``source`` is ``repository``
    (the user directory) or ``bundled``; ``overridden`` is true when a file of
    the same kind and name earlier on the path hides this one; ``overrides``
    when this one hides a later one."""

    kind: str
    name: str
    path: Path
    source: str
    overridden: bool = False
    overrides: bool = False

    def as_dict(self) -> dict:
        return {"kind": self.kind, "name": self.name, "path": str(self.path), "source": self.source,
                "overridden": self.overridden, "overrides": self.overrides}


def list_components(library: PromptLibrary) -> list[ComponentEntry]:
    """Every component file on ``library``'s search path, by kind then name,
    the active file of each name first. Hidden files (``.x``) are ignored."""
    user_dir = library.dirs[0] if len(library.dirs) > 1 else None
    found: dict[tuple[str, str], list[tuple[Path, str]]] = {}
    for directory in library.dirs:
        source = "repository" if directory == user_dir else "bundled"
        for kind in COMPONENT_KINDS:
            folder = directory / kind
            if not folder.is_dir():
                continue
            for path in sorted(folder.iterdir()):
                if path.is_file() and path.suffix in COMPONENT_SUFFIXES and not path.name.startswith("."):
                    found.setdefault((kind, path.stem), []).append((path, source))
    entries: list[ComponentEntry] = []
    for (kind, name) in sorted(found, key=lambda k: (COMPONENT_KINDS.index(k[0]), k[1])):
        files = found[(kind, name)]
        for index, (path, source) in enumerate(files):
            entries.append(ComponentEntry(kind, name, path, source, overridden=index > 0, overrides=index == 0 and len(files) > 1))
    return entries


def show_component(library: PromptLibrary, kind: str, name: str) -> tuple[Path, str]:
    """``(path, text)`` of the active component. Raises :class:`ConfigError` if missing."""
    kind, name = normalise_kind(kind), normalise_name(name)
    path = library.component_path(kind, name)
    if path is None:
        library.component(kind, name)  # raises the standard "not found … generate" ConfigError
    return path, path.read_text(encoding="utf-8")  # type: ignore[union-attr]


# --------------------------------------------------------------------------- generate (Appendix H)


@dataclass(frozen=True)
class GenerationResult:
    """What :func:`generate_component` did: ``status`` is ``exists`` (nothing
    done) or ``generated``; ``path`` the component file; ``model_calls`` 0 or 1;
    ``removed_temp`` stale temp files of a crashed earlier run that were removed."""

    status: str
    path: Path
    model_calls: int = 0
    removed_temp: tuple[Path, ...] = ()


def _strip_wrapping(text: str) -> str:
    """The model's text without a single code fence wrapped around all of it."""
    t = text.strip()
    m = re.fullmatch(r"(`{3,}|~{3,})[\w-]*\n(.*)\n\1", t, re.S)
    return (m.group(2) if m else t).strip()


#: Word counts a generated component must fall within, by kind: ``(fewest, most)``.
#: The generation prompt asks for at most 250 words (prompts/init/component.md.j2);
#: the bundled components run 20-47 words (constraints) and 78-204 (personas,
#: protocols). The upper bound leaves room for a model that overshoots a little.
COMPONENT_WORDS = {"personas": (40, 400), "protocols": (30, 400), "constraints": (10, 150)}
_REFUSAL = re.compile(r"^\W*(i'?m sorry|i am sorry|i cannot|i can't|i'm unable|i am unable|as an ai|sorry[,.]|"
                      r"unfortunately)", re.I)
_STEP = re.compile(r"^\s*(?:\d+[.)]|step \d+)\s+\S", re.I | re.M)


def component_problems(kind: str, text: str) -> list[str]:
    """Why ``text`` is not a usable component of ``kind`` (``[]`` when it is).

    Checked, in words (whitespace-separated): the length bounds of
    :data:`COMPONENT_WORDS`; not a refusal or an apology; no unrendered template
    markup; and the shape the generation prompt asks for: a persona is one
    second-person paragraph starting "You are", a protocol has at least three
    numbered steps, a constraint is a rule in prose, not a list.
    """
    kind = normalise_kind(kind)
    words = len(text.split())
    low, high = COMPONENT_WORDS[kind]
    problems: list[str] = []
    if words < low:
        problems.append(f"{words} word{'s' if words != 1 else ''}, expected at least {low}")
    elif words > high:
        problems.append(f"{words} words, expected at most {high}")
    if _REFUSAL.match(text):
        problems.append("it reads as a refusal or an apology, not a component")
    if "{{" in text or "{%" in text:
        problems.append("it contains template markup ({{ or {%)")
    if kind == "personas" and not re.match(r"^\W*you are\b", text, re.I):
        problems.append('a persona starts "You are …"')
    if kind == "protocols" and len(_STEP.findall(text)) < 3:
        problems.append("a protocol has at least three numbered steps")
    if kind == "constraints" and len(_STEP.findall(text)) + len(re.findall(r"^\s*[-*] ", text, re.M)) > 1:
        problems.append("a constraint is one rule in prose, not a list")
    return problems


def generate_component(
    kind: str,
    name: str,
    *,
    target_dir: str | Path,
    provider_factory: Callable[[], Provider],
    describe: str | Callable[[], str] | None = None,
    library: PromptLibrary | None = None,
    model: str | None = None,
    echo: Callable[[str], None] = print,
) -> GenerationResult:
    """Make sure component ``name`` of ``kind`` exists, generating it if not
    (seed 002 Appendix H; see the module docstring).

    ``target_dir`` is the prompts directory to write into (the file goes to
    ``target_dir/kind/name.md``); ``library`` the search path for the
    idempotency check (default: ``target_dir`` then the bundled prompts);
    ``describe`` the one-line description, or a function asking for it (only
    called when generation is needed); ``provider_factory`` builds the provider
    only when needed, so an existing component needs no API key. ``model``
    overrides the provider's default model. Progress lines go to ``echo``.

    Raises :class:`ConfigError` (bad kind/name, empty description),
    :class:`designsim.errors.ProviderError` (model call failed, or its reply is
    not a usable component, :func:`component_problems`: exit 3, nothing is
    written), ``OSError`` (the write failed; no partial file is left).
    """
    kind, name = normalise_kind(kind), normalise_name(name)
    target_dir = Path(target_dir)
    library = library or PromptLibrary(target_dir)
    path = target_dir / kind / f"{name}.md"
    # 1-2. required name; idempotency check before anything else
    existing = next((p for p in (path, path.with_suffix(".txt")) if p.is_file()), None) or library.component_path(kind, name)
    if existing is not None:
        echo(f"INFO: {kind[:-1]} {name!r} already exists at {existing}. No action needed.")
        return GenerationResult("exists", existing)
    removed = tuple(stale_temp_files(path))
    for stale in removed:
        stale.unlink(missing_ok=True)
        echo(f"INFO: removed {stale.name}, left by an interrupted earlier run.")
    echo(f"INFO: the required {kind[:-1]} {name!r} was not found; generating it under that name.")
    # 3. the conceptual definition
    description = describe() if callable(describe) else describe
    description = (description or "").strip()
    if not description:
        raise ConfigError(f"no description given for {kind[:-1]} {name!r}; nothing was generated", field="describe")
    # 4. one model call
    example = ""
    for entry in list_components(library):
        if entry.kind == kind and not entry.overridden:
            example = entry.path.read_text(encoding="utf-8").strip()
            break
    prompt = library.render(GENERATION_TEMPLATE, kind=kind, name=name, description=description, example=example)
    provider = provider_factory()
    request = GenerationRequest(prompt=prompt, model=model, temperature=0.4, max_output_tokens=GENERATION_MAX_TOKENS,
                                label=f"component:{kind[:-1]}:{name}")
    completion = asyncio.run(provider.generate(request))
    text = _strip_wrapping(completion.text or "")
    if not text:
        raise PermanentProviderError(f"the model returned no text for {kind[:-1]} {name!r}; nothing was written", reason="empty")
    problems = component_problems(kind, text)
    if problems:
        preview = " ".join(text.split())[:80]
        raise PermanentProviderError(f"the model's reply is not a usable {kind[:-1]} ({'; '.join(problems)}): "
                                     f"{preview!r}; nothing was written. Run it again, or write "
                                     f"{path} by hand", reason="invalid-component")
    # 5. one atomic write, under the required name; the goal map is not touched
    if path.exists():  # written by someone else while we waited for the model
        echo(f"INFO: {path} appeared while generating; keeping it. No action needed.")
        return GenerationResult("exists", path, model_calls=1, removed_temp=removed)
    from designsim.redact import redact

    atomic_write_text(path, redact(text) + "\n")  # model text lands in the repository: no secret with it
    echo(f"SUCCESS: new {kind[:-1]} saved to {path}.")
    return GenerationResult("generated", path, model_calls=1, removed_temp=removed)
