"""``designsim init``: the Starter Kit's four worksheets, as a rulebook and a workflow.

The white paper's Developer Simulation Starter Kit (seed 001, Appendix E) prepares
a simulation in four phases; each question here keeps the kit's short "why" and
an example:

1. **The Pain Journal** — the core task, the manual steps, the exact pain, the
   systemic problem → the rulebook's ``scenario``;
2. **The Evidence Locker** — for a pull-request gate the evidence is the diff;
   here: the environment, which paths matter most (``evidence.focus``), extra
   files to include (``evidence.files``), the PR description, the budget;
3. **The Rulebook** — constraints, success criteria, anti-goals;
4. **The Assembly Line** — goal or persona, directive, output format, stages, model.

Answers come from the terminal (:func:`ask_answers`, click prompts: works
through a pseudo-terminal) or from a YAML file (:func:`load_answers`, same
shape as :class:`Answers`). :func:`build_rulebook_text` turns them into a
commented ``.simulation.yml`` that must lint without errors (otherwise
:class:`ConfigError`, nothing written); :func:`render_workflow` fills
``prompts/init/workflow.yml.j2``; :func:`write_outputs` never overwrites an
existing file unless forced, and then keeps a backup
(:func:`designsim.fileio.backup_then_replace`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

import click
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from designsim.errors import ConfigError
from designsim.fileio import atomic_write_text, backup_then_replace
from designsim.prompts import PromptLibrary
from designsim.rulebook import DEFAULT_RULEBOOK
from designsim.schema import modeline

#: The model ``init`` proposes: Google's current GA Flash model (DESIGN.md, "More facts,
#: read 2026-12-01": gemini-2.5-flash is retired; gemini-3.8-flash is GA with a
#: 1,048,576-token input window). No temperature is written: Google's Gemini 3 guide
#: recommends leaving it at its default.
INIT_MODEL = "gemini-3.8-flash"
#: Where ``init`` writes a copy of the rulebook's JSON Schema, and the path (relative to
#: the rulebook, as the YAML language server resolves it) of its ``$schema`` line.
SCHEMA_COPY = ".designsim/simulation.schema.json"
WORKFLOW_PATH = ".github/workflows/designsim.yml"
WORKFLOW_TEMPLATE = "init/workflow.yml.j2"
#: The placeholder ``uses:`` reference; see the generated workflow's header.
DEFAULT_ACTION = "<owner>/designsim@v1"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


# --------------------------------------------------------------------------- answers


def _as_list(value: Any) -> Any:
    """A block of text with one item per line becomes a list (list markers dropped)."""
    if isinstance(value, str):
        items = [re.sub(r"^\s*(\d+[.)]|[-*])\s+", "", line).strip() for line in value.splitlines()]
        return [i for i in items if i]
    return value


class _Sheet(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PainJournal(_Sheet):
    """Worksheet 1 (seed 001 Appendix E, "The Pain Journal")."""

    core_task: str = Field(min_length=1)
    manual_steps: list[str] = []
    pain: str = ""
    systemic_problem: str = ""

    @field_validator("manual_steps", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _as_list(value)


class EvidenceLocker(_Sheet):
    """Worksheet 2 ("The Evidence Locker"), for a pull-request gate."""

    environment: str = ""
    focus: list[str] = []
    files: list[str] = []
    pull_request: bool = True
    max_tokens: int = Field(60_000, ge=1_000, le=2_000_000)

    @field_validator("focus", "files", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _as_list(value)


class RulebookSheet(_Sheet):
    """Worksheet 3 ("The Rulebook"): the laws of physics, winning conditions, failure modes."""

    constraints: list[str] = []
    success_criteria: list[str] = []
    anti_goals: list[str] = []

    @field_validator("constraints", "success_criteria", "anti_goals", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _as_list(value)


class StageAnswer(_Sheet):
    """One stage: ``id`` defaults to a slug of ``title``."""

    title: str = Field(min_length=1)
    focus: str = Field(min_length=1)
    id: str | None = None
    depends_on: list[str] = []


class AssemblyLine(_Sheet):
    """Worksheet 4 ("The Assembly Line")."""

    goal: str | None = None
    persona: str = ""
    directive: str = Field(min_length=1)
    format: Literal["pathways", "flaw"] = "pathways"
    stages: list[StageAnswer] = []
    #: the synthesis stage's focus (seed 002 Appendix H); empty: no synthesis
    synthesis: str = ""
    model: str = INIT_MODEL


class GateAnswer(_Sheet):
    """The gate policy: the lowest severity of a violated constraint that fails the pull request."""

    fail_on: Literal["blocker", "major", "minor"] = "blocker"


class Answers(_Sheet):
    """Everything ``init`` asks, in the shape of an ``--answers`` YAML file::

        name: nightly-reprocess
        pain_journal: {core_task, manual_steps: [..], pain, systemic_problem}
        evidence_locker: {environment, focus: [globs], files: [globs], pull_request, max_tokens}
        rulebook: {constraints: [..], success_criteria: [..], anti_goals: [..]}
        assembly_line: {goal, persona, directive, format, stages: [{title, focus, id?, depends_on?}], synthesis, model}
        gate: {fail_on: blocker | major | minor}

    ``designsim init --answers-template`` prints a complete, commented example
    (:func:`answers_template`) that this accepts as it is.
    """

    name: str = Field("simulation", pattern=_ID.pattern)
    pain_journal: PainJournal
    evidence_locker: EvidenceLocker = EvidenceLocker()
    rulebook: RulebookSheet = RulebookSheet()
    assembly_line: AssemblyLine
    gate: GateAnswer = GateAnswer()


def load_answers(path: str | Path) -> Answers:
    """Read an answers YAML file. Raises :class:`ConfigError` naming the file
    and each bad field (exit 2)."""
    from designsim.rulebook import check_yaml_limits

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        check_yaml_limits(text, str(path))  # depth, size and alias limits: exit 2 with file:line
        data = yaml.safe_load(text)
    except OSError as exc:
        raise ConfigError(f"cannot read answers: {exc.strerror or exc}", source=str(path)) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"answers are not valid YAML: {exc}", source=str(path)) from exc
    return parse_answers(data, str(path))


def parse_answers(data: Any, source: str = "answers") -> Answers:
    """Validate answers given as data (see :class:`Answers`); :class:`ConfigError` if bad."""
    if not isinstance(data, dict):
        raise ConfigError("answers must be a mapping (name, pain_journal, evidence_locker, rulebook, assembly_line)", source=source)
    try:
        return Answers.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False))
        raise ConfigError(f"bad answers: {problems} (`designsim init --answers-template` prints a complete example)",
                          source=source) from exc


# --------------------------------------------------------------------------- the interview


@dataclass(frozen=True)
class Question:
    """One worksheet question: ``key`` (``sheet.field``), the question ``text``,
    the kit's ``why`` and ``example``; ``kind`` is ``text``, ``list`` (one item
    per line, empty line ends), ``bool``, ``int`` or ``choice``."""

    key: str
    text: str
    why: str
    example: str
    kind: str = "text"
    required: bool = False
    default: Any = None


WORKSHEETS: list[tuple[str, list[Question]]] = [
    ("Worksheet 1 of 4: The Pain Journal", [
        Question("name", "A short name for this simulation (letters, digits, - _ .); it names the status check",
                 "The commit status reads designsim/<name>, so reviewers know which gate spoke.",
                 "nightly-reprocess", required=True, default="simulation"),
        Question("pain_journal.core_task", "What is the high-level goal you are trying to accomplish when you start this process?",
                 "LLM simulators work best with a clear 'north star': the job to be done that triggers the manual process.",
                 "I need to reliably re-process a batch of failed API calls identified in last night's server logs.", required=True),
        Question("pain_journal.manual_steps", "List every manual action you take, from the first command to the final all-clear",
                 "The human 'connective tissue' between scripts is where the friction lives; the simulation must see all of it.",
                 "SSH into the server; grep the logs for failed item ids; paste them into rerun.txt; write temp_fix.py; run it",
                 kind="list"),
        Question("pain_journal.pain", "Which parts are the most tedious, repetitive or risky?",
                 "A list of frustrations is a design brief: it tells the simulation what to prioritise.",
                 "Rewriting temp_fix.py every time; copy-pasting ids by hand, which once dropped an id."),
        Question("pain_journal.systemic_problem", "In one or two sentences: what is your workflow fundamentally lacking?",
                 "Framing the issue as a missing capability turns 'make my steps easier' into 'design a better system'.",
                 "We lack an automated, idempotent way to find and re-run failed jobs, so every incident means manual scripting."),
    ]),
    ("Worksheet 2 of 4: The Evidence Locker", [
        Question("evidence_locker.environment", "How and where does this code run (OS, runtime, key dependencies)?",
                 "A solution that works on a laptop may be impossible in your container; the environment is part of the physics.",
                 "A cron job in a python:3.11-slim container; pandas 2.1, requests 2.31; no network egress except the API."),
        Question("evidence_locker.focus", "Which paths matter most in a pull request? (globs, shown first and cut last)",
                 "The diff is the evidence; the model should read the heart of the system before the periphery.",
                 "src/jobs/**, scripts/reprocess.py", kind="list"),
        Question("evidence_locker.files", "Which unchanged files should the simulation always see? (globs; may be none)",
                 "A diff shows what changed, not the code it changes around; include the asset the change depends on.",
                 "src/jobs/reprocess.py, docs/runbook.md", kind="list"),
        Question("evidence_locker.pull_request", "Include the pull request's title and description as evidence?",
                 "Authors explain intent there; it is treated as untrusted data, never as instructions.",
                 "yes", kind="bool", default=True),
        Question("evidence_locker.max_tokens", "Evidence budget in tokens (the diff is cut to fit, whole files first)",
                 "Bigger is not better: a focused locker gives a sharper simulation and a smaller bill.",
                 "60000", kind="int", default=60_000),
    ]),
    ("Worksheet 3 of 4: The Rulebook", [
        Question("rulebook.constraints", "What are the absolute constraints (technical, process, resource)?",
                 "Constraints are the laws of physics: they stop 'rewrite it in Rust with five engineers'.",
                 "The core script must not be modified; standard library and requests only; must finish in under 5 minutes",
                 kind="list"),
        Question("rulebook.success_criteria", "How will you objectively verify that the solution worked?",
                 "A simulation needs a destination; verifiable criteria let it grade its own pathways.",
                 "Recovery is one command; the merged file has every id exactly once; exit code 0", kind="list"),
        Question("rulebook.anti_goals", "What outcomes or patterns must the solution absolutely avoid?",
                 "Telling the simulation what NOT to do steers it away from correct-but-disastrous answers.",
                 "Modifying or deleting the source logs; any step that needs a human to copy ids by hand", kind="list"),
    ]),
    ("Worksheet 4 of 4: The Assembly Line", [
        Question("assembly_line.goal", "A goal from the component library, or 'none' (it brings a persona, protocol and constraints)",
                 "The goal map assembles proven parts for you, like a factory foreman (designsim components list).",
                 "AUDIT", kind="choice", default="none"),
        Question("assembly_line.persona", "What expert should the model be? (empty: the goal's persona, or a senior systems architect)",
                 "Without a role an LLM defaults to a generic assistant; a specific expert brings professional standards.",
                 "You are a senior Site Reliability Engineer specialising in Python automation and resilient batch pipelines."),
        Question("assembly_line.directive", "What is the single, primary thing the simulation must do?",
                 "Commission a simulation, not a fix: ask it to model, simulate pathways and judge them against your rules.",
                 "Simulate at least three pathways for a system that makes this recovery obsolete, judge them against the "
                 "constraints, and recommend one.", required=True),
        Question("assembly_line.format", "Output blueprint: 'pathways' (compare designs in a decision matrix) or 'flaw' "
                 "(flaw analysis, solution, revised algorithm)",
                 "The blueprint is what the scorecard checks; pathways suits design choices, flaw suits reviewing one proposal.",
                 "pathways", kind="choice", default="pathways"),
        Question("assembly_line.model", "Gemini model", "Flash is fast and cheap; Pro thinks harder on subtle designs.",
                 INIT_MODEL, default=INIT_MODEL),
        Question("gate.fail_on", "Which violations fail the pull request: 'blocker' only, 'major' and up, or any ('minor')?",
                 "The gate decides on the change: each stage ends with a verdict per constraint and a severity; "
                 "a violated constraint at or above this severity fails the required check.",
                 "blocker", kind="choice", default="blocker"),
    ]),
]

#: The synthesis question, asked when there are two or more stages.
SYNTHESIS_QUESTION = Question(
    "assembly_line.synthesis", "What should the synthesis integrate and decide?",
    "A final synthesis receives every stage's output and integrates the insights into one design; it may show "
    "that one stage's concern makes another unnecessary (seed 002 Appendix H).",
    "Integrate the stages into one design, say which concerns overlap, and recommend one pathway.",
    default="Integrate the stages' findings into one design and recommend one pathway.")

STAGE_QUESTIONS = [
    Question("title", "Stage title", "Each stage is one focused simulation in a fresh session, answering one critical question.",
             "Recovering incomplete batch runs", required=True, default="Design simulation"),
    Question("focus", "What single question should this stage answer?",
             "A focused question gets a deep answer; several questions at once get shallow ones (split them into stages).",
             "How should an incomplete run be detected and completed without touching the core script?", required=True),
]


def _ask(q: Question, *, choices: list[str] | None = None) -> Any:
    click.echo("")
    click.echo(click.style(q.text, bold=True))
    click.echo(f"  Why: {q.why}")
    click.echo(f"  Example: {q.example}")
    if q.kind == "list":
        click.echo("  (one per line; an empty line finishes)")
        items: list[str] = []
        while True:
            item = click.prompt(f"  {len(items) + 1}", default="", show_default=False).strip()
            if not item:
                return items
            items.append(item)
    if q.kind == "bool":
        return click.confirm("  Answer", default=bool(q.default))
    if q.kind == "int":
        return click.prompt("  Answer", type=int, default=q.default)
    if q.kind == "choice":
        return click.prompt("  Answer", type=click.Choice(choices or [], case_sensitive=False), default=q.default)
    if q.required and q.default is None:
        return click.prompt("  Answer").strip()
    return click.prompt("  Answer", default=q.default if q.default is not None else "", show_default=q.default is not None).strip()


def ask_answers(library: PromptLibrary) -> Answers:
    """Interview the person at the terminal, worksheet by worksheet (click
    prompts on stdin/stdout). Returns validated :class:`Answers`; re-asks a
    name that is not a valid id. Raises ``click.Abort`` on Ctrl-C/EOF."""
    goals = ["none"] + _goal_names(library)
    data: dict[str, Any] = {}
    for title, questions in WORKSHEETS:
        click.echo("")
        click.echo(click.style(f"── {title} ──", fg="cyan", bold=True))
        for q in questions:
            while True:
                choices = (goals if q.key == "assembly_line.goal" else ["blocker", "major", "minor"]
                           if q.key == "gate.fail_on" else ["pathways", "flaw"])
                value = _ask(q, choices=choices)
                if q.key == "name" and not _ID.match(str(value)):
                    click.echo("  A name uses letters, digits, '-', '_' and '.' only, starting with a letter or digit.")
                    continue
                break
            sheet, _, name = q.key.rpartition(".")
            (data.setdefault(sheet, {}) if sheet else data)[name] = value
            if q.key == "assembly_line.format":
                data["assembly_line"]["stages"] = _ask_stages()
                if len(data["assembly_line"]["stages"]) >= 2:
                    click.echo("")
                    if click.confirm(click.style("Add a synthesis stage that integrates the stages' outputs? "
                                                 "(recommended with two or more stages)", bold=True), default=True):
                        data["assembly_line"]["synthesis"] = _ask(SYNTHESIS_QUESTION)
    if str(data["assembly_line"].get("goal") or "none").lower() == "none":
        data["assembly_line"]["goal"] = None
    return parse_answers(data, "the terminal")


def _ask_stages() -> list[dict[str, Any]]:
    """Stages, one critical question each, and how they chain (seed 002 §7.4: the
    output of one simulation is the baseline of the next)."""
    click.echo("")
    click.echo(click.style("Stages: one focused simulation per critical question", bold=True))
    click.echo("  The paper's multi-stage method: split the review into focused stages, chain a stage to the ones whose "
               "output it builds on, and end with a synthesis.")
    stages: list[dict[str, Any]] = []
    while True:
        stage = {q.key: _ask(q) for q in STAGE_QUESTIONS}
        ids = [_slug(s["title"]) for s in stages]
        if len(stages) == 1 and click.confirm("  Does this stage build on the previous stage's output?", default=False):
            stage["depends_on"] = ids[:]
        elif len(stages) > 1:
            while True:
                picked = click.prompt(f"  Which earlier stages does it build on? ({', '.join(ids)}; comma-separated, "
                                      "empty for none)", default="", show_default=False)
                chosen = [p.strip() for p in picked.split(",") if p.strip()]
                unknown = [p for p in chosen if p not in ids]
                if not unknown:
                    break
                click.echo(f"  Unknown stage(s): {', '.join(unknown)}; choose from {', '.join(ids)}.")
            if chosen:
                stage["depends_on"] = chosen
        stages.append(stage)
        if not click.confirm("Add another stage?", default=len(stages) < 2):
            return stages


def _goal_names(library: PromptLibrary) -> list[str]:
    try:
        return sorted(library.goal_map())
    except ConfigError:
        return []


# --------------------------------------------------------------------------- the answers template

#: The worked example ``--answers-template`` fills in: the white paper's nightly
#: re-processing case (seed 001 Appendix E's examples), with two chained stages, a
#: synthesis and the gate policy, so every key of :class:`Answers` is shown.
TEMPLATE_ANSWERS: dict[str, Any] = {
    "name": "nightly-reprocess",
    "pain_journal": {
        "core_task": "I need to reliably re-process the batch of API calls that failed overnight, as listed in the server logs.",
        "manual_steps": ["SSH into the production server", "grep the logs for failed item ids",
                         "copy the ids into rerun.txt", "write a one-off temp_fix.py that re-runs them",
                         "run it, then grep the logs again to check"],
        "pain": "Rewriting temp_fix.py every time is wasted effort, and copy-pasting ids by hand once dropped an id.",
        "systemic_problem": "We lack an automated, idempotent way to find and re-run failed jobs, so every incident "
                            "means manual scripting.",
    },
    "evidence_locker": {
        "environment": "A cron job in a python:3.11-slim container with pandas 2.1 and requests 2.31.",
        "focus": ["src/jobs/**"],
        "files": [],
        "pull_request": True,
        "max_tokens": 60000,
    },
    "rulebook": {
        "constraints": ["The reprocess_item() API and the log format cannot change.",
                        "Standard library and requests only; nothing else can be installed in production."],
        "success_criteria": ["Recovering a night's failures is one command.",
                             "Every failed item id is re-run exactly once."],
        "anti_goals": ["Modifying or deleting the source log files.",
                       "Any step that needs a human to copy ids by hand."],
    },
    "assembly_line": {
        "goal": None,
        "persona": "You are a senior Site Reliability Engineer specialising in Python automation and resilient batch pipelines.",
        "directive": "Simulate at least three pathways for a system that makes this recovery obsolete, evaluate them "
                     "against the constraints, and recommend one.",
        "format": "pathways",
        "stages": [
            {"title": "Finding failed items", "focus": "How should the night's failed item ids be found without a human "
                                                      "reading the logs?"},
            {"title": "Re-running them once", "focus": "Given how failures are found, how are they re-run exactly once, "
                                                      "even if the recovery itself is interrupted?",
             "depends_on": ["finding-failed-items"]},
        ],
        "synthesis": "Integrate the two simulations into one recovery design and recommend one pathway.",
        "model": INIT_MODEL,
    },
    "gate": {"fail_on": "blocker"},
}

_TEMPLATE_NOTES = {
    "pain_journal": "Worksheet 1 of 4: The Pain Journal -> the rulebook's scenario.",
    "evidence_locker": "Worksheet 2 of 4: The Evidence Locker. For a pull-request gate the evidence is the diff.",
    "rulebook": "Worksheet 3 of 4: The Rulebook -> constraints (C1, C2, ...), success_criteria, anti_goals.",
    "assembly_line": "Worksheet 4 of 4: The Assembly Line -> goal/persona, directive, output format, stages, model.",
    "gate": "The gate policy (what fails the required check).",
    "assembly_line.stages": "Stages: one focused simulation per critical question, each in a fresh session (seed 002 "
                            "§7.4).\nid defaults to a slug of the title; depends_on lists the earlier stages whose "
                            "output this one builds on.",
}


def _dump_value(value: Any, indent: int) -> str:
    text = yaml.dump(value, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=10**6, default_flow_style=False)
    if not isinstance(value, (dict, list)) or not value:
        return " " + text.strip().removesuffix("...").strip() + "\n"
    return "\n" + "".join(" " * indent + line + "\n" for line in text.rstrip("\n").splitlines())


def answers_template() -> str:
    """A complete, commented answers file for ``init --answers``: every question of
    the interview (its text and the kit's "why") above the key it fills, with the
    worked example of :data:`TEMPLATE_ANSWERS` as values. :func:`load_answers`
    accepts it as it is; edit the values and run ``designsim init --answers FILE``."""
    questions = {q.key: q for _, qs in WORKSHEETS for q in qs}
    questions[SYNTHESIS_QUESTION.key] = SYNTHESIS_QUESTION
    out = ["# Answers for `designsim init --answers FILE`: the Developer Simulation Starter Kit's four",
           "# worksheets (white paper, seed 001 Appendix E). Replace the example values with yours.",
           "# Lists take one item per entry; a question you skip keeps its default.", ""]

    def comment(key: str, indent: int) -> None:
        pad = " " * indent
        if key in _TEMPLATE_NOTES:
            out.extend(f"{pad}# {line}" for line in _TEMPLATE_NOTES[key].splitlines())
        q = questions.get(key)
        if q is not None:
            out.append(f"{pad}# {q.text}")
            out.append(f"{pad}#   why: {q.why}")

    for top, value in TEMPLATE_ANSWERS.items():
        if isinstance(value, dict):
            out.append("")
            comment(top, 0)
            out.append(f"{top}:")
            for key, sub in value.items():
                comment(f"{top}.{key}", 2)
                out.append(f"  {key}:{_dump_value(sub, 4).rstrip(chr(10))}")
        else:
            comment(top, 0)
            out.append(f"{top}:{_dump_value(value, 2).rstrip(chr(10))}")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- rendering


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40].strip("-")
    return slug or "stage"


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks (``|``), readable in a rulebook."""


def _str_presenter(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_presenter)

#: Comment lines written above each top-level key of the generated rulebook.
KEY_COMMENTS = {
    "name": "Generated by `designsim init` from the Starter Kit worksheets (white paper, seed 001 Appendix E).\n"
            "Check it with `designsim lint`; see examples/ for complete rulebooks.",
    "goal": "Assembly Line: a goal from the component library (prompts/goal_map.yml) brings a persona,\n"
            "protocol and constraints; `designsim components list` shows them.",
    "persona": "Assembly Line 4.1: the expert the model plays.",
    "scenario": "Pain Journal: the task, the manual steps, the pain, the systemic problem.",
    "directive": "Assembly Line 4.3: commission a simulation, not a fix.",
    "constraints": "Rulebook step 1: the laws of physics. Outputs must refer to each by its id.",
    "anti_goals": "Rulebook step 3: what the solution must never do. Add `pattern:` (a regex) to check one\n"
                  "deterministically.",
    "success_criteria": "Rulebook step 2: the winning conditions.",
    "evidence": "Evidence Locker: the diff (budgeted, fenced as untrusted data), focus paths, extra files.",
    "output": "Assembly Line 4.6: the blueprint the scorecard checks (pathways | flaw | custom).",
    "stages": "One focused simulation per critical question, each in a fresh session; `depends_on` chains them.",
    "synthesis": "The final step: receives every stage's output and integrates them (seed 002 Appendix H).",
    "gate": "What fails the pull request: a violated constraint at or above this severity (blocker | major | minor).",
    "model": "Gemini model for the simulations (and the judge unless scorecard.judge_model says otherwise).\n"
             "No temperature: Google's Gemini 3 guide recommends leaving it at its default.",
}


def rulebook_data(answers: Answers) -> dict[str, Any]:
    """The rulebook as plain data (the shape of :class:`designsim.rulebook.Rulebook`)."""
    pj, ev, rb, al = answers.pain_journal, answers.evidence_locker, answers.rulebook, answers.assembly_line
    scenario = [pj.core_task]
    if pj.manual_steps:
        scenario.append("Today this is done by hand:\n" + "\n".join(f"{i}. {s}" for i, s in enumerate(pj.manual_steps, 1)))
    if pj.pain:
        scenario.append(f"What hurts: {pj.pain}")
    if pj.systemic_problem:
        scenario.append(f"The systemic problem: {pj.systemic_problem}")
    if ev.environment:
        scenario.append(f"Environment: {ev.environment}")
    stages = al.stages or [StageAnswer(title="Design simulation", focus=pj.systemic_problem or pj.core_task)]
    used: set[str] = set()
    stage_rows = []
    for s in stages:
        sid = s.id or _slug(s.title)
        base, n = sid, 2
        while sid in used:
            sid, n = f"{base}-{n}", n + 1
        used.add(sid)
        row: dict[str, Any] = {"id": sid, "title": s.title, "focus": s.focus}
        if s.depends_on:
            row["depends_on"] = list(s.depends_on)
        stage_rows.append(row)
    data: dict[str, Any] = {"version": 1, "name": answers.name}
    if al.goal:
        data["goal"] = al.goal
    if al.persona:
        data["persona"] = al.persona
    data["scenario"] = "\n\n".join(scenario)
    data["directive"] = al.directive
    data["constraints"] = [{"id": f"C{i}", "text": t} for i, t in enumerate(rb.constraints, 1)]
    data["anti_goals"] = [{"text": t} for t in rb.anti_goals]
    data["success_criteria"] = list(rb.success_criteria)
    evidence: dict[str, Any] = {"diff": True, "pull_request": ev.pull_request, "max_tokens": ev.max_tokens}
    if ev.focus:
        evidence["focus"] = list(ev.focus)
    if ev.files:
        evidence["files"] = list(ev.files)
    data["evidence"] = evidence
    data["output"] = {"format": al.format}
    data["stages"] = stage_rows
    if al.synthesis:
        data["synthesis"] = {"focus": al.synthesis}
    data["gate"] = {"fail_on": answers.gate.fail_on}
    data["model"] = al.model
    return data


def build_rulebook_text(answers: Answers, *, library: PromptLibrary | None = None, source: str = DEFAULT_RULEBOOK,
                        schema_ref: str | None = None) -> str:
    """The commented ``.simulation.yml`` text for ``answers``. With ``schema_ref``
    (a path relative to the rulebook, or a URL) the first line is the
    ``# yaml-language-server: $schema=…`` comment that gives editors completion.

    Raises :class:`ConfigError` listing every lint error (schema, missing
    component, unknown goal, template) if the result would not lint clean:
    ``init`` never writes a rulebook that ``lint`` rejects."""
    from designsim.kit.lint import lint_text

    body = yaml.dump(rulebook_data(answers), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100,
                     default_flow_style=False)
    lines = []
    for line in body.splitlines():
        key = line.split(":", 1)[0] if line and not line[0].isspace() and not line.startswith("-") else None
        if key in KEY_COMMENTS:
            if lines:
                lines.append("")
            lines.extend(f"# {c}" for c in KEY_COMMENTS[key].splitlines())
        lines.append(line)
    text = (modeline(schema_ref) if schema_ref else "") + "\n".join(lines) + "\n"
    report = lint_text(text, source, library=library)
    if report.errors:
        raise ConfigError("these answers do not make a valid rulebook:\n" + "\n".join(f"  {e}" for e in report.errors), source=source)
    return text


def render_workflow(*, name: str, rulebook_path: str, action: str = DEFAULT_ACTION, library: PromptLibrary | None = None) -> str:
    """The pull-request workflow from ``prompts/init/workflow.yml.j2``
    (overridable in the repository's prompts directory). ``action`` is the
    ``uses:`` reference; it may not contain spaces or quotes."""
    if not re.fullmatch(r"[^\s'\"#]+", action):
        raise ConfigError(f"invalid action reference {action!r}; expected OWNER/REPO@REF", field="action")
    return (library or PromptLibrary()).render(WORKFLOW_TEMPLATE, name=name, rulebook=rulebook_path, action=action)


@dataclass(frozen=True)
class Written:
    """A file ``init`` wrote, and the backup of what it replaced (``None`` if new)."""

    path: Path
    backup: Path | None


def check_targets(paths: list[Path], *, force: bool) -> None:
    """Refuse (``ConfigError``, exit 2) when any target exists and ``force`` is
    off — checked for all targets before anything is written or asked."""
    existing = [str(p) for p in paths if p.exists()]
    if existing and not force:
        raise ConfigError(f"{', '.join(existing)} already exist(s); use --force to replace (a .bak backup is kept)")


def write_outputs(files: dict[Path, str], *, force: bool,
                  writer: Callable[[Path, Callable[[Path], None]], Path | None] = backup_then_replace) -> list[Written]:
    """Write each ``{path: text}`` atomically. Without ``force`` an existing
    target is an error (nothing is written); with it, the old file is kept as
    ``NAME.bak`` (or ``NAME.bak.N``) first."""
    check_targets(list(files), force=force)
    written = []
    for path, text in files.items():
        if path.exists():
            backup = writer(path, lambda p, t=text: p.write_text(t, encoding="utf-8"))
        else:
            atomic_write_text(path, text)
            backup = None
        written.append(Written(path, backup))
    return written
