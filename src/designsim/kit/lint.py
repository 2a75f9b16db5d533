"""``designsim lint``: is this rulebook valid, complete, and a good simulation?

Three kinds of finding, in this order:

1. **Errors** (exit 2) — the rulebook schema (every problem, ``file:line:column``,
   from :func:`designsim.rulebook.parse_rulebook`); an unknown ``goal``; a
   persona/protocol/constraint component that does not exist; a constraint
   without an id (the verdict on the change names constraints by id); a template that
   does not parse or render (located in the template file); a stage whose
   estimated prompt does not fit the model's context window.
2. **Advice** (exit 0) — drawn from the white paper's Simulation Litmus Test
   (seed 001, Appendix D) and Starter Kit (Appendix E): no constraints, no
   anti-goals, no success criteria, a directive that asks for a fix instead of
   a simulation, a stage that asks several questions (split it) or builds on
   another stage's output without ``depends_on`` (chain it), too few pathways,
   a ``gate.fail_on`` that no blocking constraint can reach…
3. **Stage sizes** — each stage's estimated prompt in tokens against the
   context window of its model (from the model catalogue, ``designsim models``).

Prompt-size estimate (tokens, :func:`designsim.tokens.estimate_tokens`,
4 characters per token): the stage prompt rendered with empty evidence, plus
the rulebook's *nominal* evidence budget ``evidence.max_tokens`` (the diff is
not known at lint time; a review never sends more), plus
``max_output_tokens`` for each earlier output the stage receives
(``depends_on``; the synthesis receives every stage's). The judge's prompt
(shared prefix + criteria + the graded output, at most ``max_output_tokens``)
is estimated the same way and checked against the judge model's window.
"""

from __future__ import annotations

import math
import re
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import yaml

from designsim.errors import ConfigError
from designsim.tokens import CHARS_PER_TOKEN, estimate_tokens
from designsim.prompts import PromptLibrary
from designsim.rulebook import ComponentRef, Rulebook, RulebookError, YamlPositions, parse_rulebook

def _catalogue_windows() -> dict[str, int]:
    from designsim.providers.catalogue import load_catalogue

    return {m.id: m.context_window for m in load_catalogue().models}


#: Input-token context windows of the models a rulebook may name (tokens), read
#: from the one source of truth, the model catalogue (``providers/models.yml``;
#: Gemini API *Models* pages, read 2026-12-01). A model not listed is assumed to
#: have :data:`DEFAULT_CONTEXT_WINDOW`, and lint says so in its advice.
CONTEXT_WINDOWS: dict[str, int] = _catalogue_windows()
DEFAULT_CONTEXT_WINDOW = 1_048_576
#: Above this share of the window a prompt is legal but advised against.
LARGE_PROMPT_SHARE = 0.5


def context_window(model: str) -> tuple[int, bool]:
    """``(tokens, known)`` for ``model`` from the model catalogue (dated or
    numbered versions such as ``gemini-3.8-flash-001`` count as their base id);
    otherwise ``(DEFAULT_CONTEXT_WINDOW, False)``."""
    from designsim.providers.catalogue import context_window as catalogue_window

    return catalogue_window(model, DEFAULT_CONTEXT_WINDOW)


def model_advice(rb: Rulebook, where: "_Where") -> list[Finding]:
    """Advice about the models a rulebook names (issue 10): a deprecated or shut-down
    id (with the date and the replacement, from the catalogue), a temperature below
    1.0 on a Gemini 3 model (quoting Google's Gemini 3 guidance), and a ``thinking``
    level the model does not accept."""
    from designsim.providers.catalogue import (GEMINI3_TEMPERATURE_GUIDANCE, is_gemini3_or_later, lifecycle_warning,
                                               lookup, thinking_config)

    out: list[Finding] = []
    judge_model = rb.scorecard.judge_model
    for model, path in [(rb.model, ("model",))] + ([(judge_model, ("scorecard", "judge_model"))] if judge_model else []):
        warning = lifecycle_warning(model)
        if warning:
            out.append(where.finding("model-lifecycle", warning, path, key=False))
    if rb.temperature is not None and rb.temperature < 1.0 and is_gemini3_or_later(rb.model):
        info = lookup(rb.model)
        ignored = " (and this model ignores custom temperatures)" if info and info.temperature.ignored else ""
        out.append(where.finding("low-temperature", f"temperature {rb.temperature} on {rb.model}: {GEMINI3_TEMPERATURE_GUIDANCE}; "
                                 f"remove `temperature` to send none{ignored}", ("temperature",), key=False))
    levels = [(rb.thinking, ("thinking",))] + [(s.thinking, ("stages", i, "thinking")) for i, s in enumerate(rb.stages)]
    for level, path in levels:
        if level is None:
            continue
        try:
            thinking_config(rb.model, level)
        except ConfigError as exc:
            out.append(where.finding("thinking", exc.message, path, key=False))
    return out


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Finding:
    """One error or piece of advice, located in a file (1-based ``line`` and
    ``column``; ``field`` is the dotted rulebook path, empty when none).
    ``code`` names the rule (``schema``, ``missing-component``, ``no-anti-goals``…)."""

    code: str
    message: str
    file: str
    line: int = 1
    column: int = 1
    field: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "file": self.file, "line": self.line, "column": self.column,
                "field": self.field, "message": self.message}

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


@dataclass
class StageSize:
    """Estimated prompt size of one stage (tokens): ``prompt_tokens`` in total,
    of which ``evidence_tokens`` is the nominal evidence budget and
    ``earlier_output_tokens`` the budget for predecessors' outputs;
    ``judge_prompt_tokens`` for grading its output; ``context_window`` of the
    stage's model."""

    id: str
    prompt_tokens: int
    context_window: int
    evidence_tokens: int = 0
    earlier_output_tokens: int = 0
    judge_prompt_tokens: int = 0
    judge_context_window: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class LintReport:
    """What :func:`lint_text` found. ``exit_code`` is 2 with any error, else 0."""

    source: str
    errors: list[Finding] = field(default_factory=list)
    advice: list[Finding] = field(default_factory=list)
    stages: list[StageSize] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 2 if self.errors else 0

    def as_dict(self) -> dict[str, Any]:
        """The ``designsim lint --json`` shape: ``{"errors": [...], "advice":
        [...], "stages": [{"id", "prompt_tokens", "context_window", ...}]}``."""
        return {"errors": [e.as_dict() for e in self.errors], "advice": [a.as_dict() for a in self.advice],
                "stages": [s.as_dict() for s in self.stages]}


# --------------------------------------------------------------------------- positions


class _Where:
    """Line/column of keys and values in the rulebook YAML, by field path."""

    def __init__(self, text: str, source: str):
        self.source = source
        self.positions = YamlPositions.from_text(text)

    def at(self, path: tuple, *, key: bool = True) -> tuple[int, int]:
        """The position of ``path`` (its key by default), else of its nearest parent."""
        return self.positions.locate(tuple(path), prefer_key=key)

    def finding(self, code: str, message: str, path: tuple = (), *, key: bool = True) -> Finding:
        line, column = self.at(path, key=key)
        return Finding(code, message, self.source, line, column, ".".join(map(str, path)))


# --------------------------------------------------------------------------- templates


def _template_location(exc: BaseException, fallback: str) -> tuple[str, int]:
    """File and line of a jinja2 error: the syntax error's own, or the deepest
    traceback frame that belongs to a template (jinja2 rewrites frames so their
    file is the template's)."""
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return exc.filename or exc.name or fallback, exc.lineno or 1
    found = (fallback, 1)
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            found = (filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


def _render(library: PromptLibrary, name: str, context: dict[str, Any]) -> str:
    """Render ``name`` with the library's environment, raising :class:`_TemplateProblem`
    with a file and line for any jinja2 error (not found, syntax, undefined…)."""
    try:
        return library.env.get_template(name).render(**context)
    except jinja2.TemplateNotFound as exc:
        raise _TemplateProblem(name, 1, f"template {exc.name!r} not found in {', '.join(map(str, library.dirs))}") from exc
    except jinja2.TemplateSyntaxError as exc:
        file, line = _template_location(exc, name)
        raise _TemplateProblem(file, line, f"template syntax error: {exc.message}") from exc
    except jinja2.TemplateError as exc:
        file, line = _template_location(exc, name)
        raise _TemplateProblem(file, line, f"template {Path(file).name!r} does not render: {exc.message or exc}") from exc
    except Exception as exc:  # a filter or test raising inside a user template
        file, line = _template_location(exc, name)
        raise _TemplateProblem(file, line, f"template {Path(file).name!r} does not render: {type(exc).__name__}: {exc}") from exc


class _TemplateProblem(Exception):
    def __init__(self, file: str, line: int, message: str):
        self.file, self.line, self.message = file, line, message
        super().__init__(message)


def template_syntax_errors(library: PromptLibrary) -> list[Finding]:
    """Parse every ``*.j2`` file in the library's user directory (the bundled
    ones are tested with the package); a syntax error becomes a finding located
    in the template file."""
    if len(library.dirs) < 2:
        return []
    out = []
    user = library.dirs[0]
    for path in sorted(user.rglob("*.j2")) if user.is_dir() else []:
        try:
            library.env.parse(path.read_text(encoding="utf-8"), path.name, str(path))
        except jinja2.TemplateSyntaxError as exc:
            out.append(Finding("template", f"template syntax error: {exc.message}", str(path), exc.lineno or 1, 1))
        except (OSError, UnicodeDecodeError) as exc:
            out.append(Finding("template", f"cannot read template: {exc}", str(path)))
    return out


# --------------------------------------------------------------------------- components


def _component_refs(rb: Rulebook) -> list[tuple[tuple, str]]:
    """``(field path, persona name)`` for every persona component the rulebook names."""
    refs: list[tuple[tuple, str]] = []
    if isinstance(rb.persona, ComponentRef):
        refs.append((("persona", "component"), rb.persona.component))
    for index, stage in enumerate(rb.stages):
        if isinstance(stage.persona, ComponentRef):
            refs.append((("stages", index, "persona", "component"), stage.persona.component))
    if rb.synthesis and isinstance(rb.synthesis.persona, ComponentRef):
        refs.append((("synthesis", "persona", "component"), rb.synthesis.persona.component))
    return refs


def component_errors(rb: Rulebook, library: PromptLibrary, where: _Where) -> list[Finding]:
    """Every missing component (personas named in the rulebook; the goal's
    persona, protocol and constraints), and an unknown goal."""
    errors: list[Finding] = []
    hint = "create it in {dir} or run 'designsim components generate {kind} {name}'"
    for path, name in _component_refs(rb):
        if library.component_path("personas", name) is None:
            errors.append(where.finding("missing-component", f"persona component {name!r} not found; "
                                        + hint.format(dir=_user_kind_dir(library, "personas"), kind="persona", name=name), path, key=False))
    if rb.goal:
        try:
            parts = library.goal_parts(rb.goal)
        except ConfigError as exc:
            errors.append(where.finding("unknown-goal", exc.message, ("goal",), key=False))
            return errors
        wanted = [("personas", parts["persona"])] if parts["persona"] else []
        wanted += [("protocols", parts["protocol"])] if parts["protocol"] else []
        wanted += [("constraints", n) for n in parts["constraints"] if n not in {c.id for c in rb.constraints}]
        for kind, name in wanted:
            if library.component_path(kind, name) is None:
                errors.append(where.finding(
                    "missing-component",
                    f"goal {rb.goal!r} needs {kind[:-1]} component {name!r}, which does not exist; "
                    + hint.format(dir=_user_kind_dir(library, kind), kind=kind[:-1], name=name),
                    ("goal",), key=False))
    return errors


def _user_kind_dir(library: PromptLibrary, kind: str) -> str:
    return str(library.dirs[0] / kind) if len(library.dirs) > 1 else f".designsim/prompts/{kind}"


# --------------------------------------------------------------------------- sizes


def stage_sizes(rb: Rulebook, library: PromptLibrary, where: _Where, *,
                window_override: int | None = None) -> tuple[list[StageSize], list[Finding], list[Finding]]:
    """Render every stage's prompt and its judge prompt; estimate their sizes.

    Returns ``(sizes, errors, advice)``: template problems and prompts over
    the window are errors; prompts over half the window, and unknown models,
    are advice. Raises nothing for template problems (they become findings).
    """
    from designsim.scorecard import default_criteria
    from designsim.simulation import render_judge_prompt, render_stage_prompt, resolve_plan

    errors: list[Finding] = []
    advice: list[Finding] = []
    try:
        plan = resolve_plan(rb, "", library)
    except ConfigError as exc:  # components are checked before; anything left is located at the top
        return [], [where.finding("config", str(exc))], []
    plan.library = _CheckedLibrary(library)  # type: ignore[assignment]
    windows: dict[str, tuple[int, bool]] = {}
    for model in {rb.model, plan.judge_model}:
        windows[model] = (window_override, True) if window_override else context_window(model)
        if not windows[model][1]:
            advice.append(where.finding("unknown-model", f"model {model!r} is not in designsim's model catalogue (`designsim models`); "
                                        f"assuming {DEFAULT_CONTEXT_WINDOW:,} input tokens", ("model",), key=False))
    render_plan, pad = _light_plan(plan, rb)
    evidence_budget = rb.evidence.max_tokens
    ids = {s.id: i for i, s in enumerate(rb.stages)}
    sizes: list[StageSize] = []
    reported: set[tuple[str, int]] = set()
    for stage in plan.stages:
        path = ("synthesis",) if stage.is_synthesis else ("stages", ids[stage.id])
        preds = [types.SimpleNamespace(id=d, title=d, final_output="") for d in stage.depends_on]
        try:
            prompt = render_stage_prompt(render_plan, stage, preds)
            criteria = rb.scorecard.criteria or default_criteria(stage.format)
            judge_prompt = render_judge_prompt(render_plan, stage, "", criteria)
        except _TemplateProblem as exc:
            if (exc.file, exc.line) not in reported:
                reported.add((exc.file, exc.line))
                errors.append(Finding("template", exc.message, exc.file, exc.line, 1))
            continue
        earlier = len(preds) * rb.max_output_tokens
        template_tokens = estimate_tokens(prompt) if not pad else math.ceil((len(prompt) + pad) / CHARS_PER_TOKEN)
        judge_template_tokens = estimate_tokens(judge_prompt) if not pad else math.ceil((len(judge_prompt) + pad) / CHARS_PER_TOKEN)
        total = template_tokens + evidence_budget + earlier
        judge_total = judge_template_tokens + evidence_budget + rb.max_output_tokens
        window = windows[rb.model][0]
        judge_window = windows[plan.judge_model][0]
        sizes.append(StageSize(stage.id, total, window, evidence_budget, earlier, judge_total, judge_window))
        parts = (f"prompt template {template_tokens:,} + evidence budget {evidence_budget:,}"
                 + (f" + {len(preds)} earlier output(s) × max_output_tokens {rb.max_output_tokens:,}" if preds else ""))
        checks = (("prompt", total, window, rb.model), ("judge prompt", judge_total, judge_window, plan.judge_model))
        over = [c for c in checks if c[1] > c[2]]
        large = [c for c in checks if c[1] > c[2] * LARGE_PROMPT_SHARE]
        if over:
            what, size, win, model = over[0]
            errors.append(where.finding(
                "context-window",
                f"stage {stage.id!r}: estimated {what} ≈{size:,} tokens ({parts if what == 'prompt' else 'judge template + evidence budget + the graded output'}) "
                f"exceeds {model}'s context window of {win:,} input tokens; lower evidence.max_tokens or shorten the scenario/focus",
                _largest_part(rb, path, evidence_budget)))
        elif large:
            what, size, win, model = large[0]
            advice.append(where.finding(
                "large-prompt",
                f"stage {stage.id!r}: estimated {what} ≈{size:,} tokens is over {LARGE_PROMPT_SHARE:.0%} of {model}'s "
                f"{win:,}-token window; long prompts cost more and dilute attention — consider a smaller evidence.max_tokens",
                _largest_part(rb, path, evidence_budget)))
    return sizes, errors, advice


#: Characters of prompt text lint renders in full (stages × shared prefix); above
#: it the prefix is rendered once and added to each stage's size.
_RENDER_BUDGET_CHARS = 50_000_000


def _light_plan(plan, rb: Rulebook):
    """``(plan to render stages with, characters to add to each prompt)``.

    Every prompt repeats the shared prefix (scenario, directive, constraints,
    anti-goals, success criteria), so rendering each stage in full costs
    stages × prefix: quadratic in the rulebook's size. Over
    :data:`_RENDER_BUDGET_CHARS`, stages are rendered against a copy of the
    rulebook with those fields empty and the prefix's length is added once —
    exact for templates that use them only in ``_shared_prefix.md.j2``, as the
    bundled ones do."""
    import dataclasses

    from designsim.simulation import shared_prefix

    try:
        full = len(shared_prefix(plan))
    except _TemplateProblem:
        return plan, 0  # the per-stage render reports it, with its location
    if full * max(1, len(plan.stages)) <= _RENDER_BUDGET_CHARS:
        return plan, 0
    light = dataclasses.replace(plan, rulebook=rb.model_copy(update={
        "scenario": "", "directive": "", "constraints": [], "anti_goals": [], "success_criteria": []}))
    return light, full - len(shared_prefix(light))


def _largest_part(rb: Rulebook, stage_path: tuple, evidence_budget: int) -> tuple:
    """The field that contributes most to a stage's prompt: where to point."""
    focus = rb.synthesis.focus if stage_path == ("synthesis",) else rb.stages[stage_path[1]].focus
    parts = {("evidence", "max_tokens"): evidence_budget, ("scenario",): estimate_tokens(rb.scenario),
             stage_path + ("focus",): estimate_tokens(focus)}
    return max(parts, key=parts.get)


class _CheckedLibrary:
    """A :class:`PromptLibrary` whose ``render`` reports template problems with
    their file and line (as :class:`_TemplateProblem`) instead of a
    :class:`ConfigError` without a line."""

    def __init__(self, library: PromptLibrary):
        self._library = library
        self.dirs, self.env = library.dirs, library.env

    def render(self, template: str, **context: Any) -> str:
        return _render(self._library, template, context)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._library, name)


# --------------------------------------------------------------------------- advice

_NEGATED = re.compile(r"\b(do not|don't|does not|not|never|no|rather than|instead of|avoid|without)\b(\s+[\w'-]+){0,3}\s*$", re.I)
#: Words by which a directive asks for a fix rather than a simulation (seed 001,
#: Appendix D: "Fixing a NullPointerException does not [need simulation]").
_FIX_WORDS = re.compile(r"\b(fix(es|ing)?|patch(es|ing)?|write (the|some|a|me) code|just|quick(ly)?)\b", re.I)
_SIMULATE_WORDS = re.compile(r"\b(simulat\w*|model\w*|pathways?|evaluat\w*|trade-?offs?|design\w*|analy[sz]\w*|compar\w*)\b", re.I)
_BASELINE = re.compile(r"\b(baseline|outputs? of|results? of|earlier (simulation|stage)s?|previous (simulation|stage)s?|revised algorithm of|builds? on)\b", re.I)
_NUMBERED = re.compile(r"^\s*(\d+[.)]|[-*])\s+\S", re.M)


def _unnegated(pattern: re.Pattern[str], text: str) -> list[str]:
    """Matches of ``pattern`` in ``text`` not preceded (within three words) by a negation."""
    hits = []
    for m in pattern.finditer(text):
        if not _NEGATED.search(text[max(0, m.start() - 40):m.start()]):
            hits.append(m.group(0))
    return hits


_TOKEN = re.compile(r"(?<![\w-])[\w-]+")
_WORDS = re.compile(r"\w+")
#: Words of a title that take part in matching it in another stage's focus.
_TITLE_WORDS = 12


class _StageMentions:
    """Which stages a focus names (by id, or by title as a run of words), and
    the ancestor relation, in time linear in the rulebook: ids and titles are
    looked up in dictionaries, not searched for one by one (an n × n scan of
    compiled regexes took minutes on a rulebook of 2,000 stages)."""

    def __init__(self, rb: Rulebook):
        self.order = {s.id: i for i, s in enumerate(rb.stages)}
        self.ids: dict[str, list[str]] = {}
        self.titles: dict[tuple[str, ...], list[str]] = {}
        for s in rb.stages:
            self.ids.setdefault(s.id.lower(), []).append(s.id)
            words = tuple(_WORDS.findall(s.title.lower()))[:_TITLE_WORDS]
            if words:
                self.titles.setdefault(words, []).append(s.id)
        self.longest = max((len(k) for k in self.titles), default=0)
        self.deps = {s.id: list(s.depends_on) for s in rb.stages}
        self._ancestors: dict[str, int] = {}  # stage id -> bit set of its ancestors' positions

    def mentioned(self, stage) -> list[str]:
        """Ids of the other stages ``stage.focus`` names, in rulebook order. An
        id counts at a word start and before a non-word character (``s1`` in
        ``s1-output``); a title counts as its run of words."""
        focus = stage.focus.lower()
        found: set[str] = set()
        for m in _TOKEN.finditer(focus):
            token = m.group(0)
            for cut in [i for i, ch in enumerate(token) if ch == "-"] + [len(token)]:
                found.update(self.ids.get(token[:cut], ()))
        words = _WORDS.findall(focus)
        for i in range(len(words)):
            for k in range(1, min(self.longest, len(words) - i) + 1):
                found.update(self.titles.get(tuple(words[i:i + k]), ()))
        found.discard(stage.id)
        return sorted(found, key=self.order.__getitem__)

    def _bits(self, stage_id: str) -> int:
        """Ancestors of ``stage_id`` as a bit set, memoised, without recursion
        (a dependency cycle, which the schema refuses anyway, is cut)."""
        todo, visiting = [stage_id], {stage_id}
        while todo:
            node = todo[-1]
            pending = [d for d in self.deps.get(node, ()) if d in self.order and d not in self._ancestors and d not in visiting]
            if pending:
                todo.extend(pending)
                visiting.update(pending)
                continue
            bits = 0
            for d in self.deps.get(node, ()):
                if d in self.order:
                    bits |= (1 << self.order[d]) | self._ancestors.get(d, 0)
            self._ancestors[node] = bits
            todo.pop()
            visiting.discard(node)
        return self._ancestors[stage_id]

    def is_ancestor(self, candidate: str, stage_id: str) -> bool:
        """True when ``stage_id`` depends on ``candidate``, directly or not."""
        if candidate in self.deps.get(stage_id, ()):
            return True
        return candidate in self.order and bool(self._bits(stage_id) >> self.order[candidate] & 1)


def _goal_constraints(rb: Rulebook, library: PromptLibrary) -> list[str]:
    """The constraint names the rulebook's ``goal`` brings from the goal map;
    ``[]`` with no goal or an unknown one (reported elsewhere as an error)."""
    if not rb.goal:
        return []
    try:
        return library.goal_parts(rb.goal)["constraints"]
    except ConfigError:
        return []


def advise(rb: Rulebook, library: PromptLibrary, where: _Where) -> list[Finding]:
    """Advice from the paper's heuristic (seed 001 Appendices D and E); never errors."""
    out: list[Finding] = []
    goal_constraints = _goal_constraints(rb, library)
    if not rb.constraints and not goal_constraints:
        out.append(where.finding("no-constraints", "no constraints: a simulation needs its \"laws of physics\" (the code you "
                                 "cannot touch, the libraries you cannot use); without them its pathways are ungrounded "
                                 "(Litmus Test question 4; Rulebook step 1)", ("constraints",)))
    if not rb.anti_goals:
        out.append(where.finding("no-anti-goals", "no anti_goals: say what the solution must NOT do (unacceptable side effects, "
                                 "patterns to avoid) so the simulation steers away from clever-but-disastrous pathways (Rulebook step 3)",
                                 ("anti_goals",)))
    if not rb.success_criteria:
        out.append(where.finding("no-success-criteria", "no success_criteria: define what a successful outcome looks like and how "
                                 "you would verify it, so pathways can be judged against it (Litmus Test question 5; Rulebook step 2)",
                                 ("success_criteria",)))
    fixes = _unnegated(_FIX_WORDS, rb.directive)
    if fixes:
        out.append(where.finding("directive-asks-for-fix", f"the directive asks for a fix ({', '.join(repr(f) for f in dict.fromkeys(fixes))}) "
                                 "rather than a simulation: ask the model to model the situation, simulate pathways and judge them "
                                 "against the constraints (Litmus Test question 1: design choices, not a single correct fix)",
                                 ("directive",), key=False))
    elif not _SIMULATE_WORDS.search(rb.directive):
        out.append(where.finding("directive-not-simulation", "the directive does not ask for a simulation (no 'simulate', 'model', "
                                 "'pathways', 'evaluate', 'design'…): commission a simulation, not an answer (Assembly Line 4.3)",
                                 ("directive",), key=False))
    if len(rb.scenario) < 200:
        out.append(where.finding("thin-scenario", f"the scenario is {len(rb.scenario)} characters: describe the recurring manual "
                                 "process and what makes it painful (Pain Journal; Assembly Line 4.2)", ("scenario",), key=False))
    if rb.persona is None and not rb.goal:
        out.append(where.finding("no-persona", "no persona and no goal: the default senior_systems_architect is used; a specific "
                                 "expert role grounds the simulation in professional standards (Assembly Line 4.1)", ()))
    if not rb.evidence.diff and not rb.evidence.files and not rb.evidence.pull_request:
        out.append(where.finding("no-evidence", "evidence sends neither the diff, nor files, nor the PR description: the simulation "
                                 "is blindfolded (Evidence Locker)", ("evidence",)))
    formats = {s.format or rb.output.format for s in rb.stages} | ({rb.synthesis.format} if rb.synthesis else set())
    if "pathways" in formats and rb.output.min_pathways < 3:
        out.append(where.finding("few-pathways", f"output.min_pathways is {rb.output.min_pathways}: the method compares at least three "
                                 "distinct pathways; with two the decision matrix is a coin toss", ("output", "min_pathways"), key=False))
    if rb.policy.on_inconclusive == "neutral":
        out.append(where.finding("neutral-on-inconclusive", "WARNING: policy.on_inconclusive is 'neutral': when the model is down, "
                                 "the quota is gone or no attempt passes its grading, the commit status is SUCCESS and nothing was "
                                 "verified (a check run shows 'neutral', which branch protection also accepts); use 'error' (the "
                                 "default) so an unverified change cannot merge green", ("policy", "on_inconclusive"), key=False))
    if not rb.scorecard.judge:
        out.append(where.finding("judge-off", "scorecard.judge is false: only deterministic checks grade the outputs; the depth of "
                                 "analysis and persona fidelity go ungraded (Quality Scorecard)", ("scorecard", "judge"), key=False))
    mentions: _StageMentions | None = None
    for index, stage in enumerate(rb.stages):
        path = ("stages", index, "focus")
        questions = stage.focus.count("?")
        items = len(_NUMBERED.findall(stage.focus))
        if questions >= 3 or items >= 3:
            what = f"{questions} questions" if questions >= 3 else f"{items} listed items"
            out.append(where.finding("split-stage", f"stage {stage.id!r} asks {what} at once: split it into focused stages, one "
                                     "question each (seed 002 §7.4: a focused simulation per critical question)", path, key=False))
        if _BASELINE.search(stage.focus):
            mentions = mentions or _StageMentions(rb)
            mentioned = mentions.mentioned(stage)
            missing = [m for m in mentioned if not mentions.is_ancestor(m, stage.id)]
            if missing:
                out.append(where.finding("chain-stages", f"stage {stage.id!r} builds on the output of {', '.join(map(repr, missing))} "
                                         f"but does not depend on it: add depends_on: [{', '.join(missing)}] so it receives that "
                                         "output as its baseline", ("stages", index, "depends_on") if stage.depends_on else path,
                                         key=False))
            elif not stage.depends_on and not mentioned:
                out.append(where.finding("chain-stages", f"stage {stage.id!r} refers to an earlier output or baseline but has no "
                                         "depends_on: without it the stage never sees that output", path, key=False))
    if len(rb.stages) >= 2 and rb.synthesis is None:
        out.append(where.finding("no-synthesis", f"{len(rb.stages)} stages and no synthesis: a final synthesis integrates their "
                                 "insights and may show one makes another unnecessary (seed 002 Appendix H)", ("stages",)))
    out += model_advice(rb, where)
    return out


# --------------------------------------------------------------------------- the gate (issue 8)


def constraint_id_errors(text: str, source: str) -> list[Finding]:
    """A constraint without an id (a bare string, or a mapping with no ``id``):
    the "Verdict on this change" table names every constraint by id, so one
    without an id can never be ruled on. Read from the raw YAML so the message
    says what to write; ``[]`` when the YAML does not parse."""
    from designsim.rulebook import check_yaml_limits

    try:
        check_yaml_limits(text, source)  # a hostile file is reported by the parse, not re-read here
        data = yaml.safe_load(text)
    except (yaml.YAMLError, RulebookError, ValueError, RecursionError, MemoryError):  # hostile YAML is the schema check's to report
        return []
    items = data.get("constraints") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return []
    where = _Where(text, source)
    out = []
    for index, item in enumerate(items):
        if isinstance(item, dict) and item.get("id") not in (None, ""):
            continue
        shown = item if isinstance(item, str) else (item or {}).get("text", "") if isinstance(item, dict) else ""
        out.append(where.finding(
            "constraint-without-id",
            f"constraint {index + 1} has no id: write it as `- id: C{index + 1}` with `text: {str(shown)[:60]}`; every stage's "
            "\"Verdict on this change\" names constraints by id, so one without an id can never be ruled on",
            ("constraints", index), key=False))
    return out


def gate_advice(rb: Rulebook, library: PromptLibrary, where: _Where) -> list[Finding]:
    """A ``gate.fail_on`` that no blocking constraint can reach: with no
    constraint (rulebook or goal) left ``blocking``, no verdict can fail the
    pull request, so the required check only says whether the simulation was
    trusted."""
    goal_constraints = _goal_constraints(rb, library)
    blocking = [c.id for c in rb.constraints if c.blocking] + [n for n in goal_constraints if n not in {c.id for c in rb.constraints}]
    if blocking:
        return []
    has_gate = ("gate", "fail_on") in where.positions.keys
    what = "every constraint is advisory (blocking: false)" if rb.constraints else "there are no constraints"
    return [where.finding("gate-unreachable", f"gate.fail_on is {rb.gate.fail_on!r} but {what}: no verdict can fail the pull request, "
                          "so the required check can only pass or be inconclusive; make at least one constraint blocking",
                          ("gate", "fail_on") if has_gate else ("constraints",), key=not has_gate)]


# --------------------------------------------------------------------------- entry points


def evidence_file_errors(rb: Rulebook, where: "_Where", root: str | Path) -> list[Finding]:
    """An error for each ``evidence.files`` glob that matches no file under ``root``
    (the repository root): a misspelled path would silently send less evidence."""
    from designsim.evidence.source import unmatched_patterns

    return [where.finding("evidence-files", f"{rb.evidence.files[i]!r} matches no file under {Path(root).resolve()} "
                          "(paths are relative to the repository root; check the spelling)", ("evidence", "files", i), key=False)
            for i in unmatched_patterns(rb.evidence.files, root)]


def lint_text(text: str, source: str, *, library: PromptLibrary | None = None,
              context_window_override: int | None = None, root: str | Path | None = None) -> LintReport:
    """Lint rulebook YAML ``text`` (``source`` names it in findings).

    ``library`` supplies templates and components (default: bundled only);
    ``context_window_override`` (tokens) replaces the model table, e.g. to
    check a rulebook against a smaller model; ``root`` is the repository root that
    ``evidence.files`` globs must match (None: not checked). Never raises for any
    input text: every problem is a finding.
    """
    library = library or PromptLibrary()
    report = LintReport(source)
    try:
        rb = parse_rulebook(text, source)
    except RulebookError as exc:
        # only a document that parsed far enough to have constraint errors is read again
        no_id = constraint_id_errors(text, source) if any(i.field.startswith("constraints.") for i in exc.issues) else []
        covered = {f.field for f in no_id}
        report.errors = no_id + [Finding("schema", i.message, i.file, i.line, i.column, i.field) for i in exc.issues
                                 if not any(i.field == c or i.field.startswith(c + ".") for c in covered)]
        return report
    where = _Where(text, source)
    report.errors.extend(template_syntax_errors(library))
    report.errors.extend(component_errors(rb, library, where))
    if root is not None:
        report.errors.extend(evidence_file_errors(rb, where, root))
    report.advice.extend(advise(rb, library, where))
    if rb.constraints or rb.goal:  # no constraints at all already has its own advice
        report.advice.extend(gate_advice(rb, library, where))
    if not report.errors:
        sizes, errors, advice = stage_sizes(rb, library, where, window_override=context_window_override)
        report.stages, report.errors, report.advice = sizes, report.errors + errors, report.advice + advice
    return report


def _uses_designsim(uses: str) -> bool:
    uses = uses.strip().lower()
    return uses in ("./", ".") or uses.split("@", 1)[0].rstrip("/").endswith("designsim")


def workflow_advice(repo_root: str | Path) -> list[Finding]:
    """Warnings from the repository's workflows (``.github/workflows/*.yml``):
    a designsim step with ``status: check-run`` in a workflow that runs on
    ``pull_request`` or ``pull_request_target``. A fork's pull request runs
    without secrets and gets the check-run conclusion ``neutral``, which
    GitHub's branch protection accepts like ``success`` (GitHub docs, "About
    protected branches": required checks pass when "successful, skipped, or
    neutral"); a commit status stays ``pending`` and blocks. Unreadable or
    hostile workflow files are skipped (they are not designsim's to judge)."""
    import yaml

    from designsim.rulebook import RulebookError, check_yaml_limits

    out: list[Finding] = []
    directory = Path(repo_root) / ".github" / "workflows"
    files = sorted(list(directory.glob("*.yml")) + list(directory.glob("*.yaml"))) if directory.is_dir() else []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
            check_yaml_limits(text, str(path))
            data = yaml.safe_load(text)
        except (OSError, UnicodeDecodeError, yaml.YAMLError, RulebookError):
            continue
        if not isinstance(data, dict):
            continue
        triggers = data.get("on", data.get(True))  # YAML 1.1 reads a bare `on` key as True
        names = set(triggers) if isinstance(triggers, (dict, list)) else {triggers}
        if not names & {"pull_request", "pull_request_target"}:
            continue
        positions = YamlPositions.from_text(text)
        for job_id, job in (data.get("jobs") or {}).items() if isinstance(data.get("jobs"), dict) else []:
            steps = job.get("steps") if isinstance(job, dict) else None
            for index, step in enumerate(steps if isinstance(steps, list) else []):
                if not isinstance(step, dict) or not _uses_designsim(str(step.get("uses", ""))):
                    continue
                inputs = step.get("with") if isinstance(step.get("with"), dict) else {}
                if str(inputs.get("status", "")).strip() == "check-run":
                    field_path = ("jobs", job_id, "steps", index, "with", "status")
                    line, column = positions.locate(field_path)
                    out.append(Finding("fork-check-run", "WARNING: status: check-run on pull requests: a fork's pull request "
                                       "(no secrets, nothing judged) gets the conclusion 'neutral', which branch protection "
                                       "accepts as passing; use status: commit-status (a fork's stays pending) or keep fork "
                                       "pull requests out of this workflow", str(path), line, column, ".".join(map(str, field_path))))
    return out


def lint_file(path: str | Path, *, library: PromptLibrary | None = None,
              context_window_override: int | None = None, root: str | Path | None = None) -> LintReport:
    """:func:`lint_text` on the file at ``path``; an unreadable file is an error finding.
    ``evidence.files`` globs are checked against ``root`` (default: the rulebook's directory)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return LintReport(str(path), errors=[Finding("schema", "file not found", str(path))])
    except (OSError, UnicodeDecodeError) as exc:
        return LintReport(str(path), errors=[Finding("schema", f"cannot read: {exc}", str(path))])
    root = path.parent if root is None else root
    report = lint_text(text, str(path), library=library, context_window_override=context_window_override, root=root)
    report.advice.extend(workflow_advice(root))  # the repository's workflows: forks and check runs
    return report


def format_report(report: LintReport) -> str:
    """The human-readable report: errors, advice, then one line per stage size."""
    lines = [f"{e}  [error: {e.code}]" for e in report.errors]
    lines += [f"{a}  [advice: {a.code}]" for a in report.advice]
    for s in report.stages:
        share = s.prompt_tokens / s.context_window if s.context_window else 0
        lines.append(f"  stage {s.id}: ≈{s.prompt_tokens:,} of {s.context_window:,} tokens ({share:.1%}; "
                     f"evidence budget {s.evidence_tokens:,}; judge ≈{s.judge_prompt_tokens:,})")
    verdict = "invalid" if report.errors else "ok"
    lines.append(f"{report.source}: {verdict} — {len(report.errors)} error(s), {len(report.advice)} piece(s) of advice")
    return "\n".join(lines)


__all__ = ["CONTEXT_WINDOWS", "DEFAULT_CONTEXT_WINDOW", "Finding", "LintReport", "StageSize", "advise", "context_window",
           "evidence_file_errors", "format_report", "lint_file", "lint_text", "workflow_advice"]
