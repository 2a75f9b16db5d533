"""``designsim test``: a rulebook's own regression suite of labelled outputs.

A *golden set* is a folder (default ``<rulebook dir>/.designsim/golden/``)
of recorded simulation outputs, each labelled with the grade it should get::

    golden/
      good_answer.md        the output, as the model wrote it
      good_answer.yml       its label (sidecar)
      two_recommended.md    an output with YAML front matter instead of a sidecar:
                            ---
                            stage: recovery
                            expect: fail
                            ---
      evidence/pr.diff      any other file is ignored unless a label names it

Label keys (:class:`GoldenLabel`): ``stage`` (a stage id of the rulebook, or
its synthesis id); the expected grade, as ``trust`` (``trusted`` or
``untrusted``: does the scorecard trust this output?) or its older spelling
``expect`` (``pass`` = trusted, ``fail`` = untrusted), one of the two;
optional ``decision`` (``pass``, ``fail``, ``warn`` or ``inconclusive``: what
the gate decides about the *change* when this output is the stage's only
attempt — an untrusted output is ``inconclusive``, a trusted one is ``fail``
when its "Verdict on this change" reports a violated blocking constraint at or
above ``gate.fail_on``); optional ``reason``; optional ``failing`` (check
names or criterion ids that must be among the failures, so a bad output fails
*for the right reason*; ``anti_goal`` matches every ``anti_goal: …`` check);
optional ``evidence`` (a diff, relative to the label's file, used as the
evidence for this output instead of the default). For example::

    stage: state
    trust: trusted
    decision: fail          # its verdict finds C1 violated (blocker)
    reason: names the crash windows and proposes an atomic commit point

Trust and decision are separate questions (issue 8; seed 002, Appendix D):
a sound simulation that finds a blocker is *trusted* and *fails* the change.

Each output is graded exactly as a review grades it
(:func:`designsim.simulation.grade_output`): the deterministic checks, then
the LLM judge when a provider is given (a recorded cassette: labels
``judge:<stage id>`` in order; or Gemini with a key). The evidence — what the
``analysis_not_restated`` check compares a flaw analysis against — is built
from the label's ``evidence`` diff, else ``<rulebook dir>/change.diff`` when
present, else an empty diff, under the rulebook's evidence settings.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from designsim.errors import ConfigError, ProviderError
from designsim.prompts import PromptLibrary
from designsim.providers.base import Provider
from designsim.rulebook import Rulebook
from designsim.scorecard import Scorecard

DEFAULT_EVIDENCE = "change.diff"


class GoldenLabel(BaseModel):
    """The expected grade of one golden output (sidecar ``NAME.yml`` or front
    matter). ``trust`` and ``expect`` say the same thing (give one; both must
    agree); after validation ``expect`` is always set."""

    model_config = ConfigDict(extra="forbid")
    stage: str = Field(min_length=1)
    expect: Literal["pass", "fail"] | None = None
    trust: Literal["trusted", "untrusted"] | None = None
    decision: Literal["pass", "fail", "warn", "inconclusive"] | None = None
    reason: str = ""
    failing: list[str] = []
    evidence: str | None = None

    @model_validator(mode="after")
    def _one_grade(self) -> "GoldenLabel":
        if self.expect is None and self.trust is None:
            raise ValueError("give the expected grade: trust (trusted | untrusted) or expect (pass | fail)")
        implied = {"trusted": "pass", "untrusted": "fail"}.get(self.trust or "")
        if self.expect is not None and implied is not None and implied != self.expect:
            raise ValueError(f"trust: {self.trust} contradicts expect: {self.expect}; keep one")
        if self.expect is None:
            self.expect = implied  # type: ignore[assignment]
        if self.trust is None:
            self.trust = "trusted" if self.expect == "pass" else "untrusted"
        if self.trust == "untrusted" and self.decision not in (None, "inconclusive"):
            raise ValueError(f"an untrusted output cannot decide the change (decision: {self.decision}); "
                             "its decision is inconclusive")
        return self


@dataclass
class GoldenCase:
    """One labelled output: ``name`` (file stem), ``output`` text (front matter
    removed), ``label``, and the files it came from."""

    name: str
    output: str
    label: GoldenLabel
    output_path: Path
    label_path: Path


@dataclass
class GoldenResult:
    """The outcome of grading one case. ``actual`` is ``pass``, ``fail`` or
    ``error`` (the judge was unavailable or never gave a usable verdict);
    ``decision`` the gate's decision on the change from this output alone
    (``None`` when it could not be computed); ``matched`` is true when
    ``actual == expect``, every ``failing`` name is among the failures and, if
    the label gives one, ``decision`` is the expected decision; ``failures``
    lists failed checks and criteria."""

    case: GoldenCase
    actual: str
    matched: bool
    failures: list[str] = field(default_factory=list)
    detail: str = ""
    scorecard: Scorecard | None = None
    decision: str | None = None
    decision_reason: str = ""

    def as_dict(self) -> dict:
        return {"name": self.case.name, "stage": self.case.label.stage, "expect": self.case.label.expect,
                "trust": self.case.label.trust, "actual": self.actual,
                "expected_decision": self.case.label.decision, "decision": self.decision,
                "matched": self.matched, "failures": self.failures, "detail": self.detail}


def _split_front_matter(text: str) -> tuple[str | None, str]:
    """``(front matter YAML or None, body)`` for a Markdown file."""
    if text.startswith("---\n") or text.startswith("---\r\n"):
        end = text.find("\n---", 4)
        if end != -1:
            after = text.find("\n", end + 4)
            return text[4:end], ("" if after == -1 else text[after + 1:])
    return None, text


def _parse_label(raw: str, where: Path) -> GoldenLabel:
    from designsim.rulebook import check_yaml_limits

    check_yaml_limits(raw, str(where))  # repository content: depth, size and alias limits, exit 2 with file:line
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"label is not valid YAML: {exc}", source=str(where)) from exc
    if not isinstance(data, dict):
        raise ConfigError("label must be a mapping with 'stage' and 'trust' (or 'expect')", source=str(where))
    try:
        return GoldenLabel.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(label)'}: {e['msg']}" for e in exc.errors(include_url=False))
        raise ConfigError(f"bad label: {problems}", source=str(where)) from exc


def load_golden(directory: str | Path, rulebook: Rulebook) -> list[GoldenCase]:
    """Read every ``*.md`` output in ``directory`` (not recursive) with its label.

    Raises :class:`ConfigError` (exit 2) naming the file for: a missing
    directory or an empty one, an output without a label, a bad label, an
    unknown stage, a ``failing`` list on an output expected to pass, an
    ``evidence`` file that does not exist.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError("golden directory not found (give --golden DIR, or create it with labelled outputs)", source=str(directory))
    stages = rulebook.stage_ids()
    cases: list[GoldenCase] = []
    for path in sorted(directory.glob("*.md")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read golden output: {exc}", source=str(path)) from exc
        front, body = _split_front_matter(text)
        sidecar = next((p for p in (path.with_suffix(".yml"), path.with_suffix(".yaml")) if p.is_file()), None)
        if front is not None and sidecar is not None:
            raise ConfigError(f"labelled twice (front matter and {sidecar.name}); keep one", source=str(path))
        if front is not None:
            label, label_path, output = _parse_label(front, path), path, body
        elif sidecar is not None:
            label, label_path, output = _parse_label(sidecar.read_text(encoding="utf-8"), sidecar), sidecar, text
        else:
            raise ConfigError(f"no label: add {path.with_suffix('.yml').name} (stage, trust) or YAML front matter", source=str(path))
        if label.stage not in stages:
            raise ConfigError(f"unknown stage {label.stage!r}; the rulebook has {', '.join(stages)}", source=str(label_path), field="stage")
        if label.expect == "pass" and label.failing:
            raise ConfigError("'failing' lists expected failures; it makes no sense with trust: trusted (expect: pass)", source=str(label_path), field="failing")
        if label.evidence and not (label_path.parent / label.evidence).is_file():
            raise ConfigError(f"evidence file {label.evidence!r} not found", source=str(label_path), field="evidence")
        cases.append(GoldenCase(path.stem, output, label, path, label_path))
    if not cases:
        raise ConfigError("no golden outputs (*.md) in this directory", source=str(directory))
    return cases


def _failures(card: Scorecard) -> list[str]:
    return [c.name for c in card.checks if not c.passed] + [c.id for c in card.criteria if not c.passed]


def _has(failures: list[str], wanted: str) -> bool:
    return any(f == wanted or f.startswith(wanted + ":") for f in failures)


def _diff_files(raw: bytes, rulebook: Rulebook) -> list[str]:
    from designsim.evidence import decode_diff, parse_diff

    if not raw.strip():
        return []
    text, _ = decode_diff(raw)
    return [fc.path for fc in parse_diff(text, rulebook.evidence)]


def case_decision(rulebook: Rulebook, stage, output: str, card: Scorecard, diff_files: list[str]):
    """The gate's :class:`~designsim.decision.Decision` on the change if
    ``output`` were the only attempt of ``stage`` and ``stage`` the only
    required one: the stage is trusted when ``card`` passed, its findings are
    the rows of the output's "Verdict on this change" (parsed against the
    rulebook's constraint ids and ``diff_files``), and
    :func:`designsim.decision.decide` applies ``gate.fail_on``, ``blocking``
    and ``policy.on_failed`` exactly as a review does."""
    from designsim.decision import Finding, decide, parse_change_verdict
    from designsim.simulation import StageResult

    trusted = card.passed and not card.grader_error
    findings: list[Finding] = []
    if trusted:
        parsed = parse_change_verdict(output, [c.id for c in rulebook.constraints], diff_files)
        rows = parsed.verdict.rows if parsed.verdict is not None else []
        findings = [Finding(stage=stage.id, constraint=r.constraint, verdict=r.verdict, severity=r.severity,
                            evidence=r.evidence) for r in rows]
    result = StageResult(id=stage.id, title=stage.title, format=stage.format,
                         outcome="passed" if trusted else ("inconclusive" if card.grader_error else "failed"),
                         findings=findings)
    only = rulebook.model_copy(update={"policy": rulebook.policy.model_copy(update={"required": [stage.id]})})
    return decide(only, [result])


async def _grade_all(rulebook: Rulebook, cases: list[GoldenCase], rulebook_dir: Path, library: PromptLibrary,
                     provider: Provider | None) -> list[GoldenResult]:
    from designsim.review import build_plan

    default = rulebook_dir / DEFAULT_EVIDENCE
    plans: dict[Path | None, object] = {}
    files: dict[Path | None, list[str]] = {}
    results: list[GoldenResult] = []
    for case in cases:
        evidence = (case.label_path.parent / case.label.evidence) if case.label.evidence else (default if default.is_file() else None)
        if evidence not in plans:
            raw = evidence.read_bytes() if evidence else b""
            plans[evidence] = build_plan(rulebook, raw, library=library, source=str(evidence) if evidence else None)
            files[evidence] = _diff_files(raw, rulebook)
        plan = plans[evidence]
        stage = next(s for s in plan.stages if s.id == case.label.stage)  # type: ignore[attr-defined]
        try:
            from designsim.simulation import grade_output

            card = await grade_output(plan, stage, case.output, provider, label=f"judge:{stage.id}")  # type: ignore[arg-type]
        except ProviderError as exc:
            results.append(GoldenResult(case, "error", False, detail=f"judge unavailable: {exc}"))
            continue
        failures = _failures(card)
        actual = "error" if card.grader_error else ("pass" if card.passed else "fail")
        missing = [f for f in case.label.failing if not _has(failures, f)]
        decision = case_decision(rulebook, stage, case.output, card, files[evidence])
        wrong_decision = case.label.decision is not None and decision.verdict != case.label.decision
        matched = actual == case.label.expect and not missing and not wrong_decision
        if card.grader_error:
            detail = "the judge never gave a usable verdict"
        elif missing:
            detail = f"expected to fail on {', '.join(missing)}"
        elif wrong_decision:
            detail = f"expected decision {case.label.decision}, got {decision.verdict}: {decision.reason}"
        else:
            detail = f"judge: {card.judge_skipped}" if card.judge_skipped and not failures else ""
        results.append(GoldenResult(case, actual, matched, failures, detail, card, decision.verdict, decision.reason))
    return results


def run_golden(rulebook: Rulebook, cases: list[GoldenCase], *, rulebook_dir: str | Path,
               library: PromptLibrary | None = None, provider: Provider | None = None) -> list[GoldenResult]:
    """Grade every case (blocking); see the module docstring for the evidence
    and the judge. ``provider`` ``None`` means deterministic checks only.
    Raises :class:`ConfigError` for a bad evidence diff or a missing component."""
    return asyncio.run(_grade_all(rulebook, cases, Path(rulebook_dir), library or PromptLibrary(), provider))


def results_table(results: list[GoldenResult], title: str):
    """A rich :class:`~rich.table.Table` of expected vs actual grades."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in ("output", "stage", "expected", "actual", "decision", "", "failed checks / note"):
        table.add_column(column, overflow="fold")
    trust = {"pass": "trusted", "fail": "untrusted", "error": "error"}
    for r in results:
        note = ", ".join(r.failures) if r.failures else ""
        if r.detail:
            note = f"{note} — {r.detail}" if note else r.detail
        decision = r.decision or "—"
        if r.case.label.decision and r.case.label.decision != r.decision:
            decision = f"{decision} (expected {r.case.label.decision})"
        table.add_row(r.case.name, r.case.label.stage, trust[r.case.label.expect or "fail"], trust[r.actual],
                      decision, "✅" if r.matched else "❌", note)
    return table
