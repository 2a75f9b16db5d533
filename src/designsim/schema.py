"""``designsim schema``: the rulebook's JSON Schema, generated from the pydantic models.

Editors read it for completion and checking while a ``.simulation.yml`` is being
written (the YAML language server honours a first-line comment
``# yaml-language-server: $schema=PATH-OR-URL``; CodeRabbit and promptfoo publish
such schemas for their config files). The committed copy is
``schema/simulation.schema.json``; regenerate it after changing a rulebook model::

    designsim schema > schema/simulation.schema.json

(``tests/test_schema.py`` fails while the two differ). The schema is JSON Schema
draft 2020-12, as pydantic v2 emits it, with three additions:

* a description (and examples where they help) on every field, from
  :data:`FIELD_DOCS` when the pydantic field has none;
* ``output`` also accepts the shorthand string (``output: flaw``), which
  :class:`~designsim.rulebook.OutputBlueprint` accepts;
* ``$schema``, ``$id`` and ``title`` at the top.

Only what a schema can say is checked here (types, enums, ranges, unknown keys);
cross-field rules (``depends_on`` naming a stage, cycles) stay with ``designsim lint``.
"""

from __future__ import annotations

import json
from typing import Any

import click
from pydantic import BaseModel

__all__ = ["FIELD_DOCS", "SCHEMA_ID", "SCHEMA_PATH", "rulebook_json_schema", "render_schema", "schema"]

#: Where the committed copy lives in this repository, and the name ``init`` gives the copy it writes.
SCHEMA_PATH = "schema/simulation.schema.json"
#: The ``$id`` of the schema (a name, not fetched by anything here).
SCHEMA_ID = "https://designsim.dev/schema/simulation.schema.json"

#: ``"Model.field" -> (description, examples)`` for fields whose pydantic definition
#: has no ``description``. Kept here rather than in ``rulebook.py`` so the models
#: stay short; a test fails when a rulebook field is missing from both.
FIELD_DOCS: dict[str, tuple[str, list[Any]]] = {
    "Rulebook.version": ("Rulebook format version. Only 1 exists.", [1]),
    "Rulebook.name": ("Short id of this rulebook, used in the PR comment's marker and the check run's name.",
                      ["payments-review"]),
    "Rulebook.goal": ("A goal from the component library's goal map (prompts/goal_map.yml) that picks a persona "
                      "and protocol; see `designsim components list`.", ["reliability"]),
    "Rulebook.persona": ("Who the model plays: inline text, or {component: NAME} from prompts/personas/.",
                         ["You are a senior Site Reliability Engineer.", {"component": "senior_systems_architect"}]),
    "Rulebook.scenario": ("The situation the simulation starts from: the system, its users, what is at stake "
                          "(the white paper's Scenario worksheet).", ["A nightly job sends 500 prompts to Gemini."]),
    "Rulebook.directive": ("What to simulate. Ask for pathways to be simulated and judged, not for a fix.",
                           ["Simulate solution pathways that make manual recovery obsolete."]),
    "Rulebook.constraints": ("Non-negotiable rules (laws of physics); every pathway is judged against each one.",
                             [[{"id": "C1", "text": "No data may be lost."}]]),
    "Rulebook.anti_goals": ("Outcomes to avoid; an optional regex pattern is checked deterministically.",
                            [[{"text": "Hard-coded API keys", "pattern": "AIza[0-9A-Za-z_-]{10,}"}]]),
    "Rulebook.success_criteria": ("What a good outcome looks like, in the team's words.",
                                  [["A failed request is retried without a human."]]),
    "Rulebook.evidence": ("What the review sends the model about the change, and how much.", []),
    "Rulebook.output": ("The output blueprint every stage follows unless it overrides it: a format name "
                        "(shorthand) or a mapping.", ["pathways", {"format": "flaw", "min_chars": 400}]),
    "Rulebook.stages": ("The focused simulations, one fresh session each; chain them with depends_on "
                        "(seed 002 §7.4: one critical question per stage).",
                        [[{"id": "state", "title": "State management", "focus": "What if the job dies mid-run?",
                           "format": "flaw"}]]),
    "Rulebook.synthesis": ("A final stage that receives every stage's output and integrates them "
                           "(seed 002 Appendix H).", [{"focus": "Integrate the simulations into one design."}]),
    "Rulebook.scorecard": ("How outputs are graded and how many fresh attempts a stage gets.", []),
    "Rulebook.model": ("Gemini model id for the stages.", ["gemini-3.8-flash"]),
    "Rulebook.temperature": ("Sampling temperature. Google's Gemini 3 guide recommends 1.0 (read 2026-12-01): "
                             "leave this out unless you have measured a reason.", [1.0]),
    "Rulebook.max_output_tokens": ("Output-token limit of each stage's reply (tokens).", [8192]),
    "Rulebook.concurrency": ("Model calls in flight at once (stages without dependencies overlap).", [3]),
    "Rulebook.gate": ("What the required check decides about the change: the lowest severity of a violated "
                      "blocking constraint that fails the pull request.", [{"fail_on": "major"}]),
    "Rulebook.samples": ("Independent fresh sessions per stage (1-9); with more than one, the samples must agree "
                         "on each constraint's verdict for the stage to count.", [1, 3]),
    "Gate.fail_on": ("blocker: only blocker violations fail; major: major and blocker; minor: any violation.",
                     ["blocker", "major"]),
    "Gate.min_agreement": ("With samples > 1: the fraction of samples (0.5-1.0) that must give a constraint the "
                           "same verdict; unset means a strict majority.", [0.67]),
    "Stage.samples": ("Overrides the rulebook's samples for this stage.", [3]),
    "Synthesis.samples": ("Overrides the rulebook's samples for the synthesis.", [1]),
    "Rulebook.policy": ("How stage outcomes become the review's verdict.", []),
    "Rulebook.pricing": ("Prices per million tokens, for the cost line of the report.",
                         [{"input_per_million": 0.3, "output_per_million": 2.5, "currency": "USD"}]),
    "ComponentRef.component": ("Name of a library component (a file name without .md).", ["senior_systems_architect"]),
    "Constraint.id": ("Short id the matrix and the verdict refer to.", ["C1"]),
    "Constraint.blocking": ("false makes the constraint advisory: its violations are reported but never fail "
                            "the gate.", [True]),
    "Constraint.text": ("The rule, stated so a violation can be recognised.", ["goal_map.json is never half-written."]),
    "AntiGoal.text": ("The outcome to avoid.", ["Silently dropping a failed prompt"]),
    "AntiGoal.pattern": ("Python regular expression (case-insensitive); a match anywhere in an output fails "
                         "the anti-goal check.", ["(?i)TODO: handle errors"]),
    "OutputBlueprint.format": ("pathways: five steps ending in a decision matrix (seed 001 Appendix C); flaw: Flaw "
                               "Analysis, Proposed Solution, Revised Algorithm (seed 002 Appendix D); custom: the "
                               "headings in sections.", ["pathways", "flaw"]),
    "OutputBlueprint.sections": ("Required headings, in order (format custom).", [["Risks", "Plan"]]),
    "OutputBlueprint.min_pathways": ("Fewest pathways a pathways output must simulate.", [3]),
    "OutputBlueprint.min_chars": ("Shortest acceptable output (characters).", [400]),
    "OutputBlueprint.max_chars": ("Longest acceptable output (characters).", [60000]),
    "Stage.id": ("Stage id, used by depends_on, policy.required and the report.", ["state"]),
    "Stage.title": ("Heading of the stage in the report.", ["State management"]),
    "Stage.focus": ("The one critical question this stage simulates.", ["What happens if the process dies between "
                                                                         "the two writes?"]),
    "Stage.format": ("Overrides output.format for this stage.", ["flaw"]),
    "Stage.sections": ("Overrides output.sections for this stage.", [["Risks", "Plan"]]),
    "Stage.depends_on": ("Stage ids whose final outputs this stage receives as its baseline "
                         "(seed 002 §7.4.3).", [["state"]]),
    "Stage.persona": ("Overrides the rulebook's persona for this stage.", [{"component": "security_auditor"}]),
    "Synthesis.id": ("Id of the synthesis stage.", ["synthesis"]),
    "Synthesis.title": ("Heading of the synthesis in the report.", ["Synthesis"]),
    "Synthesis.focus": ("What the synthesis should integrate and decide.", ["Integrate the stages; say whether one "
                                                                              "makes another unnecessary."]),
    "Synthesis.format": ("Output format of the synthesis (default pathways: one integration is Recommended).",
                         ["pathways"]),
    "Synthesis.sections": ("Required headings, in order (format custom).", [["Integration", "Plan"]]),
    "Synthesis.persona": ("Overrides the rulebook's persona for the synthesis.", [{"component": "senior_systems_architect"}]),
    "Criterion.id": ("Criterion id.", ["reproducible"]),
    "Criterion.name": ("The criterion as a question.", ["Is the failure reproducible from the output alone?"]),
    "Criterion.pass_when": ("What excellent performance looks like; the judge rules PASS or FAIL against it.",
                            ["The output names the exact step and input that trigger the failure."]),
    "ScorecardSettings.criteria": ("Criteria for the LLM judge (default: the white paper's five plus "
                                   "\"Does this help?\").", []),
    "ScorecardSettings.judge": ("Use the LLM judge; false grades with deterministic checks only.", [True]),
    "ScorecardSettings.judge_model": ("Gemini model id for the judge (default: the rulebook's model).",
                                      ["gemini-3.8-flash"]),
    "ScorecardSettings.attempts": ("Fresh sessions a stage gets before it is failed (1-5).", [2]),
    "ScorecardSettings.grade_attempts": ("How often a GRADER_ERROR is re-graded (1-5).", [2]),
    "Policy.on_failed": ("What a stage whose grades never passed does to the verdict: fail, or warn.", ["fail"]),
    "Policy.on_inconclusive": ("What an unavailable model or grader does: error (exit 3), fail, or neutral.",
                               ["error"]),
    "Policy.required": ("Stage ids that count (default: all, synthesis included).", [["state", "synthesis"]]),
    "Pricing.input_per_million": ("Price of one million input tokens.", [0.3]),
    "Pricing.output_per_million": ("Price of one million output tokens.", [2.5]),
    "Pricing.currency": ("Currency of the prices (ISO 4217 code).", ["USD"]),
    "EvidenceSettings.diff": ("Include the diff at all.", [True]),
    "EvidenceSettings.files": ("Extra files from the repository to include, as globs relative to its root; "
                               "a glob that matches nothing is an error.", [["docs/ARCHITECTURE.md", "src/jobs/*.py"]]),
    "EvidenceSettings.pull_request": ("Include the pull request's title and body (untrusted, fenced).", [True]),
    "EvidenceSettings.focus": ("Globs of files shown first and cut last; a focus match overrides exclude.",
                               [["src/jobs/**"]]),
    "EvidenceSettings.max_tokens": ("Budget of the whole evidence block (estimated tokens, 4 characters each). "
                                    "A larger diff is cut by whole files, then whole hunks, and says so.", [60000]),
    "EvidenceSettings.exclude": ("Globs never inlined (listed as omitted): lock files, minified and vendored "
                                 "code by default.", [["**/*.lock", "**/vendor/**"]]),
}


def _model_classes() -> dict[str, type[BaseModel]]:
    """Every model reachable from :class:`~designsim.rulebook.Rulebook`, by class name."""
    from designsim.rulebook import Rulebook

    seen: dict[str, type[BaseModel]] = {}

    def visit(cls: type[BaseModel]) -> None:
        if cls.__name__ in seen:
            return
        seen[cls.__name__] = cls
        for f in cls.model_fields.values():
            for arg in _walk_types(f.annotation):
                if isinstance(arg, type) and issubclass(arg, BaseModel):
                    visit(arg)

    visit(Rulebook)
    return seen


def _walk_types(tp: Any):
    yield tp
    for arg in getattr(tp, "__args__", ()) or ():
        yield from _walk_types(arg)


def undocumented_fields() -> list[str]:
    """``Model.field`` names with neither a pydantic description nor a :data:`FIELD_DOCS` entry."""
    return sorted(f"{name}.{field}" for name, cls in _model_classes().items() for field, info in cls.model_fields.items()
                  if not info.description and f"{name}.{field}" not in FIELD_DOCS)


def _first_paragraph(doc: str | None) -> str | None:
    if not doc:
        return None
    para = doc.strip().split("\n\n", 1)[0]
    return " ".join(para.replace("``", "`").split())


def rulebook_json_schema() -> dict[str, Any]:
    """The rulebook's JSON Schema (draft 2020-12) as a dict, deterministic for one
    version of the models: descriptions and examples on every documented field, the
    ``output`` shorthand, ``$schema``/``$id``/``title`` on top."""
    from designsim.rulebook import Rulebook

    schema = Rulebook.model_json_schema(mode="validation")
    classes = _model_classes()
    defs = schema.setdefault("$defs", {})
    for name, cls in classes.items():
        node = schema if cls is Rulebook else defs.get(name)
        if node is None:
            continue
        desc = _first_paragraph(cls.__doc__)
        if desc:
            node["description"] = desc
        for field, info in cls.model_fields.items():
            prop = node.get("properties", {}).get(field)
            if prop is None:
                continue
            prop.pop("title", None)
            doc, examples = FIELD_DOCS.get(f"{name}.{field}", (None, []))
            if info.description:
                doc = info.description
            if doc:
                prop["description"] = doc
            if examples and "examples" not in prop:
                prop["examples"] = examples
    output = schema["properties"].get("output")
    if output is not None and "anyOf" not in output:  # OutputBlueprint also takes `output: flaw`
        formats = defs.get("OutputBlueprint", {}).get("properties", {}).get("format", {}).get("enum")
        ref = {k: output.pop(k) for k in list(output) if k in ("$ref", "allOf")}
        output["anyOf"] = [ref, {"type": "string", **({"enum": formats} if formats else {})}]
    ordered = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
               "title": "designsim rulebook (.simulation.yml)"}
    ordered.update({k: v for k, v in schema.items() if k != "title"})
    return ordered


def render_schema() -> str:
    """:func:`rulebook_json_schema` as the text of the committed file (2-space JSON, newline at the end)."""
    return json.dumps(rulebook_json_schema(), indent=2, ensure_ascii=False) + "\n"


def modeline(path_or_url: str) -> str:
    """The first-line comment that points the YAML language server at the schema."""
    return f"# yaml-language-server: $schema={path_or_url}\n"


@click.command()
@click.option("--out", "-o", default="-", show_default=True,
              help="Write the schema here (atomically) instead of stdout.")
def schema(out: str) -> int:
    """Print the rulebook's JSON Schema (for editors: completion and checking of .simulation.yml).

    Regenerate the committed copy with `designsim schema > schema/simulation.schema.json`.
    """
    text = render_schema()
    if out == "-":
        click.echo(text, nl=False)
    else:
        from designsim.fileio import atomic_write_text

        atomic_write_text(out, text)
        click.echo(f"designsim: wrote {out}", err=True)
    return 0
