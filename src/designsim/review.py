"""The review flow as one call, shared by ``designsim review``, ``demo`` and ``action``.

``build_plan`` turns a rulebook and a raw diff into a :class:`ReviewPlan`
(evidence budgeted and fenced, personas resolved, every stage asked for a
"Verdict on this change" citing the diff's files); ``review_diff`` runs it and
returns the :class:`Review`; the caller renders it with :mod:`designsim.report`.
"""

from __future__ import annotations

from pathlib import Path

from designsim.evidence import Evidence, evidence_from_bytes, read_extra_files
from designsim.prompts import PromptLibrary
from designsim.providers.base import Provider
from designsim.rulebook import Rulebook
from designsim.simulation import EvidenceSummary, ProgressCallback, Review, ReviewPlan, resolve_plan, run_review_sync


def summarise_evidence(evidence: Evidence) -> EvidenceSummary:
    """The part of :class:`Evidence` the report shows."""
    return EvidenceSummary(
        tokens=evidence.tokens, omitted=evidence.omitted_summary, notes=list(evidence.notes),
        files=evidence.stats.files, additions=evidence.stats.additions, deletions=evidence.stats.deletions,
    )


def build_plan(
    rulebook: Rulebook,
    raw_diff: bytes,
    *,
    pr_title: str | None = None,
    pr_body: str | None = None,
    extra_files: dict[str, str] | None = None,
    workdir: str | Path | None = None,
    library: PromptLibrary | None = None,
    source: str | None = None,
) -> ReviewPlan:
    """Build the evidence from ``raw_diff`` (bytes of a unified diff) under the
    rulebook's budget and resolve every stage.

    ``extra_files`` (``{path: text}``) wins over reading the rulebook's
    ``evidence.files`` globs from ``workdir`` (the action passes files fetched
    from the base branch instead). A diff with at least one file makes the plan
    review a change (``review_change``: every stage must end with a "Verdict on
    this change" citing its files); an empty diff grades against the blueprint
    alone. Raises :class:`~designsim.errors.ConfigError`.
    """
    if extra_files is None and rulebook.evidence.files and workdir is not None:
        extra_files = read_extra_files(rulebook.evidence.files, workdir)
    evidence = evidence_from_bytes(raw_diff, rulebook.evidence, source=source, pr_title=pr_title, pr_body=pr_body,
                                   extra_files=extra_files or None)
    diff_files = list(dict.fromkeys(p for f in evidence.files for p in (f.path, f.old_path) if p))
    return resolve_plan(rulebook, evidence.included_text, library, summarise_evidence(evidence),
                        review_change=bool(diff_files), diff_files=diff_files)


def review_diff(plan: ReviewPlan, provider: Provider, *, head_sha: str | None = None, overrides=(),
                on_progress: ProgressCallback | None = None) -> Review:
    """Run the review (blocking). ``overrides``: maintainers' acceptances
    (:class:`designsim.decision.Override`) applied to the decision; ``on_progress``
    gets live :class:`~designsim.simulation.ProgressEvent` s."""
    return run_review_sync(plan, provider, head_sha=head_sha, overrides=overrides, on_progress=on_progress)
