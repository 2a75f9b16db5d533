"""The ``.simulation.yml`` rulebook: schema, loading, and located errors.

A rulebook is the white paper's Assembly Line (seed 001, Appendix E) as data:
persona, scenario, directive, constraints ("laws of physics"), anti-goals,
success criteria, evidence, output blueprint, stages, an optional synthesis,
the scorecard, the model, and a policy that maps outcomes to pass/fail.

Every model forbids unknown keys. :func:`load_rulebook` reports *all* problems
at once as a :class:`RulebookError` whose issues carry ``file:line:column``,
the field path (``stages.1.depends_on``) and what was expected; an unknown
key says which known key it might have meant. Positions come from PyYAML's
composed node tree, so they point at the offending key or value.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from designsim.errors import ConfigError
from designsim.evidence import EvidenceSettings
from designsim.providers.catalogue import DEFAULT_MODEL

DEFAULT_RULEBOOK = ".simulation.yml"
#: ``thinking:`` values a rulebook or stage may set (mapped per model by the provider).
Thinking = Literal["low", "medium", "high"]
_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"

Format = Literal["pathways", "flaw", "custom"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ComponentRef(_Strict):
    """A named component from the library, e.g. ``{component: senior_systems_architect}``
    resolves to ``prompts/personas/senior_systems_architect.md``."""

    component: str = Field(pattern=_ID)


#: Inline text, or a reference to a library component.
PersonaSpec = Union[str, ComponentRef]


class Constraint(_Strict):
    """A non-negotiable rule (a "law of physics"). Each pathway is judged against each one."""

    id: str = Field(pattern=_ID)
    text: str = Field(min_length=1)


class AntiGoal(_Strict):
    """An outcome to avoid. ``pattern`` (a Python regex, case-insensitive) is
    checked deterministically: a match anywhere in an output fails the check."""

    text: str = Field(min_length=1)
    pattern: str | None = None

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value


class OutputBlueprint(_Strict):
    """What a stage's output must look like.

    ``format``: ``pathways`` (the five-step simulation with a decision matrix,
    seed 001 Appendix C), ``flaw`` (Flaw Analysis → Proposed Solution →
    Revised Algorithm, seed 002 Appendix D) or ``custom`` (``sections`` lists
    the required headings, in order). ``min_pathways`` applies to ``pathways``;
    ``min_chars``/``max_chars`` bound the output length (characters).
    """

    format: Format = "pathways"
    sections: list[str] = []
    min_pathways: int = Field(3, ge=2, le=10)
    min_chars: int = Field(400, ge=0)
    max_chars: int = Field(60_000, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"format": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _custom_needs_sections(self) -> "OutputBlueprint":
        if self.format == "custom" and not self.sections:
            raise ValueError("format 'custom' needs a non-empty 'sections' list")
        if self.min_chars >= self.max_chars:
            raise ValueError("min_chars must be below max_chars")
        return self


class Stage(_Strict):
    """One focused simulation, run in its own fresh session.

    ``depends_on`` lists stage ids whose *final* outputs this stage receives as
    labelled evidence (seed 002 §7.4.3: the output of one simulation is the
    baseline of the next). ``format``/``sections`` override the rulebook's
    blueprint; ``persona`` overrides its persona.
    """

    id: str = Field(pattern=_ID)
    title: str = Field(min_length=1)
    focus: str = Field(min_length=1)
    format: Format | None = None
    sections: list[str] | None = None
    depends_on: list[str] = []
    persona: PersonaSpec | None = None
    #: reasoning effort for this stage, overriding the rulebook's ``thinking``
    thinking: Thinking | None = None


class Synthesis(_Strict):
    """The final step that receives every stage's output and integrates them
    (seed 002 Appendix H). Its default format is ``pathways``: candidate
    integrations are the pathways, and one is Recommended."""

    id: str = Field("synthesis", pattern=_ID)
    title: str = "Synthesis"
    focus: str = Field(min_length=1)
    format: Format = "pathways"
    sections: list[str] | None = None
    persona: PersonaSpec | None = None


class Criterion(_Strict):
    """A scorecard criterion the LLM judge rules on: ``pass_when`` says what
    excellent performance looks like (seed 002 Appendix D)."""

    id: str = Field(pattern=_ID)
    name: str
    pass_when: str


class ScorecardSettings(_Strict):
    """How outputs are graded. ``criteria`` default to the white paper's five
    plus "Does this help?" (see :mod:`designsim.scorecard`). ``attempts`` is
    how many fresh sessions a stage gets before it is failed (1–5);
    ``grade_attempts`` how often a GRADER_ERROR is re-graded (1–5); ``judge``
    turns the LLM judge off (deterministic checks only)."""

    criteria: list[Criterion] | None = None
    judge: bool = True
    judge_model: str | None = None
    attempts: int = Field(2, ge=1, le=5)
    grade_attempts: int = Field(2, ge=1, le=5)


class Policy(_Strict):
    """Maps outcomes to the gate's verdict.

    ``on_failed``: what a stage whose grades never passed does to the gate
    (``fail`` or ``warn``); ``on_inconclusive``: what happens when the model
    was unavailable or the grader never produced a verdict (``error`` — the
    status is ``error`` and exit code 3 —, ``fail``, or ``neutral``);
    ``required``: stage ids that count (default: all, synthesis included).
    """

    on_failed: Literal["fail", "warn"] = "fail"
    on_inconclusive: Literal["error", "fail", "neutral"] = "error"
    required: list[str] | None = None


class Pricing(_Strict):
    """Prices for the cost line of the report, per million tokens. Without it the
    model catalogue's prices apply (``designsim models``). ``cached_input_per_million``
    prices input tokens served from Gemini's cache (default: the input price)."""

    input_per_million: float = Field(ge=0)
    output_per_million: float = Field(ge=0)
    cached_input_per_million: float | None = Field(None, ge=0)
    currency: str = "USD"


class Budget(_Strict):
    """A hard cap on one review's spend. Before each model call, if the worst case
    (the prompt's tokens plus the call's ``max_output_tokens``) would cross
    ``max_usd`` (USD, at the rulebook's ``pricing`` or the catalogue's price) or
    ``max_tokens`` (input + output tokens, all calls), the call is not made and
    that stage is inconclusive, "budget reached"."""

    max_usd: float | None = Field(None, gt=0)
    max_tokens: int | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _something(self) -> "Budget":
        if self.max_usd is None and self.max_tokens is None:
            raise ValueError("budget needs max_usd, max_tokens or both")
        return self


class Rulebook(_Strict):
    """A whole ``.simulation.yml``. See the module docstring and
    ``examples/`` for complete rulebooks."""

    version: Literal[1] = 1
    name: str = Field("simulation", pattern=_ID)
    goal: str | None = None
    persona: PersonaSpec | None = None
    scenario: str = Field(min_length=1)
    directive: str = Field(min_length=1)
    constraints: list[Constraint] = []
    anti_goals: list[AntiGoal] = []
    success_criteria: list[str] = []
    evidence: EvidenceSettings = EvidenceSettings()
    output: OutputBlueprint = OutputBlueprint()
    stages: list[Stage] = Field(min_length=1)
    synthesis: Synthesis | None = None
    scorecard: ScorecardSettings = ScorecardSettings()
    model: str = DEFAULT_MODEL
    #: ``None`` (the default) sends no temperature: Gemini 3 is tuned for its default 1.0
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    #: reasoning effort (``low``/``medium``/``high``); ``None`` keeps the model's default
    thinking: Thinking | None = None
    max_output_tokens: int = Field(8192, ge=256, le=65_536)
    concurrency: int = Field(3, ge=1, le=16)
    policy: Policy = Policy()
    pricing: Pricing | None = None
    budget: Budget | None = None

    @model_validator(mode="after")
    def _graph(self) -> "Rulebook":
        ids = [s.id for s in self.stages]
        seen: set[str] = set()
        for index, stage in enumerate(self.stages):
            if stage.id in seen:
                raise _LocatedValueError(("stages", index, "id"), f"duplicate stage id {stage.id!r}")
            seen.add(stage.id)
        for index, stage in enumerate(self.stages):
            for dep_index, dep in enumerate(stage.depends_on):
                if dep not in seen:
                    hint = _did_you_mean(dep, ids)
                    raise _LocatedValueError(("stages", index, "depends_on", dep_index), f"unknown stage {dep!r}{hint}")
                if dep == stage.id:
                    raise _LocatedValueError(("stages", index, "depends_on", dep_index), "a stage cannot depend on itself")
        if self.synthesis and self.synthesis.id in seen:
            raise _LocatedValueError(("synthesis", "id"), f"synthesis id {self.synthesis.id!r} is also a stage id")
        cycle = find_cycle({s.id: list(s.depends_on) for s in self.stages})
        if cycle:
            index = ids.index(cycle[0])
            raise _LocatedValueError(("stages", index, "depends_on"), "stages depend on each other in a cycle: " + " -> ".join(cycle))
        known = set(ids) | ({self.synthesis.id} if self.synthesis else set())
        for index, rid in enumerate(self.policy.required or []):
            if rid not in known:
                raise _LocatedValueError(("policy", "required", index), f"unknown stage {rid!r}{_did_you_mean(rid, sorted(known))}")
        return self

    def stage_ids(self) -> list[str]:
        """Stage ids in file order, then the synthesis id if any."""
        return [s.id for s in self.stages] + ([self.synthesis.id] if self.synthesis else [])


class _LocatedValueError(ValueError):
    """A validation error that knows its field path (pydantic reports model
    validators at the model's own location otherwise)."""

    def __init__(self, loc: tuple, message: str):
        self.loc = loc
        super().__init__(message)


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """A dependency cycle as ``[a, b, …, a]``, or ``None``. ``graph`` maps a
    node to the nodes it depends on."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if state.get(nxt) is None:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in graph:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class RulebookIssue:
    """One problem: where (``file``, 1-based ``line``/``column``), which field
    (dotted path), and what was expected."""

    file: str
    line: int
    column: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "column": self.column, "field": self.field, "message": self.message}


class RulebookError(ConfigError):
    """The rulebook is invalid; ``issues`` lists every problem found (exit 2)."""

    def __init__(self, issues: list[RulebookIssue]):
        self.issues = issues
        first = issues[0]
        super().__init__("\n".join(str(i) for i in issues), source=None, field=None)
        self.source = f"{first.file}:{first.line}:{first.column}"


def _did_you_mean(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(str(word), options, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class YamlPositions:
    """Maps field paths (``("stages", 1, "depends_on")``) to the 1-based
    ``(line, column)`` of their key and value in a YAML document, from PyYAML's
    composed node tree. Also records duplicate keys. Shared by rulebook
    validation and ``designsim lint``."""

    @classmethod
    def from_text(cls, text: str) -> "YamlPositions":
        """Positions for ``text``; empty (everything at 1:1) if it is not valid YAML."""
        try:
            return cls(yaml.compose(text, Loader=yaml.SafeLoader))
        except yaml.YAMLError:
            return cls(None)

    def __init__(self, root: yaml.Node | None):
        self.keys: dict[tuple, tuple[int, int]] = {}
        self.values: dict[tuple, tuple[int, int]] = {}
        self.duplicates: list[tuple[tuple, tuple[int, int]]] = []
        # nodes whose children were walked: an alias is walked once, so a self-referencing
        # alias (&x [*x]) cannot recurse and nested aliases ("billion laughs") stay linear
        self._walked: set[int] = set()
        if root is not None:
            self._walk(root, ())

    @staticmethod
    def _pos(node: yaml.Node) -> tuple[int, int]:
        return node.start_mark.line + 1, node.start_mark.column + 1

    def _walk(self, node: yaml.Node, path: tuple) -> None:
        self.values[path] = self._pos(node)
        if id(node) in self._walked:
            return
        self._walked.add(id(node))
        self._walk_children(node, path)

    def _walk_children(self, node: yaml.Node, path: tuple) -> None:
        if isinstance(node, yaml.MappingNode):
            seen: set = set()
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):  # a complex key ("? [a]: b") has no field path
                    continue
                key = key_node.value
                if key in seen:
                    self.duplicates.append((path + (key,), self._pos(key_node)))
                seen.add(key)
                self.keys[path + (key,)] = self._pos(key_node)
                self._walk(value_node, path + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._walk(item, path + (index,))

    def locate(self, loc: tuple, *, prefer_key: bool = False) -> tuple[int, int]:
        """The position of ``loc`` (its value, or its key with ``prefer_key``),
        else of its nearest parent that has one."""
        loc = tuple(loc)
        while loc:
            table = (self.keys, self.values) if prefer_key else (self.values, self.keys)
            for t in table:
                if loc in t:
                    return t[loc]
            loc = loc[:-1]
        return self.values.get((), (1, 1))


_UNION_TAGS = re.compile(r"^(str|constrained-str|function-(after|before|wrap|plain)\[.*|[A-Z]\w*)$")


def _clean_loc(loc: tuple) -> tuple:
    """Drop pydantic's union-branch tags (``str``, ``ComponentRef``) from a location."""
    return tuple(p for p in loc if isinstance(p, int) or not _UNION_TAGS.match(p))


def _is_union_noise(error: dict, errors: list[dict]) -> bool:
    """A mapping given where a union also accepts text yields a useless
    "should be a valid string" beside the real errors of the mapping branch."""
    if error["type"] == "string_type" and isinstance(error.get("input"), dict):
        loc = _clean_loc(error["loc"])
        return any(e is not error and _clean_loc(e["loc"])[: len(loc)] == loc for e in errors)
    return False


def _model_for(loc: tuple) -> type[BaseModel] | None:
    """The model class that owns the mapping at ``loc`` (for "did you mean")."""
    model: Any = Rulebook
    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return None
        ann = field.annotation
        candidates = [ann] + list(getattr(ann, "__args__", ()))
        nxt = None
        for cand in candidates:
            for inner in [cand] + list(getattr(cand, "__args__", ())):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    nxt = inner
                    break
            if nxt:
                break
        if nxt is None:
            return None
        model = nxt
    return model


def _explain(error: dict) -> str:
    kind = error.get("type", "")
    if kind == "missing":
        return "required field is missing"
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return f"expected {expected}, got {error.get('input')!r}"
    msg = error.get("msg", "invalid value")
    msg = re.sub(r"^(Value error|Assertion failed), ", "", msg)
    got = error.get("input")
    if (kind.endswith("_type") or kind.endswith("_parsing")) and not isinstance(got, (dict, list)):
        return f"{msg}, got {type(got).__name__} {got!r}"
    return msg


def parse_rulebook(text: str, source: str = DEFAULT_RULEBOOK) -> Rulebook:
    """Parse and validate rulebook YAML ``text``; ``source`` names it in errors.

    Raises :class:`RulebookError` listing every problem with its position.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = " ".join(filter(None, [exc.context, exc.problem]))
        raise RulebookError([RulebookIssue(source, line, column, "", f"not valid YAML: {problem}")]) from exc
    except yaml.YAMLError as exc:
        raise RulebookError([RulebookIssue(source, 1, 1, "", f"not valid YAML: {exc}")]) from exc
    positions = YamlPositions(root)
    issues = [
        RulebookIssue(source, line, col, ".".join(map(str, path)), f"duplicate key {path[-1]!r} (YAML keeps only the last)")
        for path, (line, col) in positions.duplicates
    ]
    if not isinstance(data, dict):
        got = "an empty file" if data is None else type(data).__name__
        raise RulebookError(issues + [RulebookIssue(source, 1, 1, "", f"expected a mapping of rulebook fields, got {got}")])
    try:
        rulebook = Rulebook.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        for error in errors:
            if _is_union_noise(error, errors):
                continue
            loc = _clean_loc(error["loc"])
            if error["type"] == "extra_forbidden":  # the unknown key itself is never a union tag ("A:", "ComponentRef:")
                loc = _clean_loc(error["loc"][:-1]) + (error["loc"][-1],)
            ctx_error = (error.get("ctx") or {}).get("error")
            if isinstance(ctx_error, _LocatedValueError):
                loc = loc + tuple(ctx_error.loc)
            message = _explain(error)
            if error["type"] == "extra_forbidden":
                owner = _model_for(loc[:-1])
                options = sorted(owner.model_fields) if owner else []
                message = f"unknown key {loc[-1]!r}{_did_you_mean(str(loc[-1]), options)}"
                if owner and not _did_you_mean(str(loc[-1]), options):
                    message += f"; allowed: {', '.join(options)}"
                line, col = positions.locate(loc, prefer_key=True)
            else:
                line, col = positions.locate(loc)
            issues.append(RulebookIssue(source, line, col, ".".join(map(str, loc)), message))
        # a union failure is reported once per branch; keep one line per position+field
        unique: dict[tuple, RulebookIssue] = {}
        for issue in issues:
            unique.setdefault((issue.line, issue.column, issue.field), issue)
        raise RulebookError(sorted(unique.values(), key=lambda i: (i.line, i.column))) from exc
    if issues:
        raise RulebookError(issues)
    return rulebook


def load_rulebook(path: str | Path) -> Rulebook:
    """Read and validate the rulebook at ``path``.

    Raises :class:`RulebookError` (exit 2) for an unreadable file or any schema
    problem, each located as ``file:line:column``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise RulebookError([RulebookIssue(str(path), 1, 1, "", "file not found")]) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise RulebookError([RulebookIssue(str(path), 1, 1, "", f"cannot read: {exc}")]) from exc
    return parse_rulebook(text, str(path))
