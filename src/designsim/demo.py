"""The bundled demo cases of ``designsim demo``, and the cassette builder behind them.

Each case is a folder under ``examples/`` holding a rulebook (``.simulation.yml``),
a real unified diff (``change.diff``), the pull request's description
(``pr_body.md``), the model replies the demo replays (``cassette.json``) and the
hand-written sources of those replies (``replies/``):

* ``jit`` — ``examples/jit-generation``: the white paper's proposed, flawed JIT
  function (seed 002, Appendix F). Its simulations find the paper's flaws
  (C1 and C3 violated, blocker for C1), so the decision is **fail**, as the
  paper's own simulations concluded.
* ``fixed`` — ``examples/jit-generation-fixed``: the same repository with the
  synthesised algorithm of seed 002, Appendix H implemented instead (the
  conceptual name kept, an idempotent existence check, an atomic
  create-if-absent of the component, no edit of ``goal_map.json``). Every
  constraint is respected, so the decision is **pass**.

``replies/`` holds one file per model call, in call order:
``NN-stage-<stage id>[-k].md`` for a stage attempt's output and
``NN-judge-<stage id>[-k].json`` for the judge's reply (an object keyed by the
criterion ids, each ``{evidence_quote, reasoning, verdict}``).
:func:`build_cassette` replays them through the real review pipeline and
records each call as a cassette interaction with the digest of the prompt it
answered and token estimates (input = (system + prompt characters) / 4,
output = reply characters / 4; the heuristic of :mod:`designsim.evidence`).
``python -m designsim.demo`` rewrites every case's ``cassette.json``.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from designsim.errors import ConfigError, PermanentProviderError
from designsim.providers.base import Completion, GenerationRequest, Usage
from designsim.resources import examples_dir

_REPLY_NAME = re.compile(r"^(?P<n>\d+)-(?P<kind>stage|judge)-(?P<stage>[A-Za-z0-9_-]+?)(?:-(?P<k>\d+))?\.(?P<ext>md|json)$")


@dataclass(frozen=True)
class DemoCase:
    """One demo case: ``name`` (``--case``), ``folder`` (under ``root``, by
    default the bundled ``examples/``), the pull request's ``pr_title``, the
    ``decision`` its cassette is written to reach (``pass`` or ``fail``) and a
    one-line ``summary``. A folder of your own, laid out like
    ``examples/jit-generation/``, works with :func:`build_cassette` too:
    ``DemoCase("mine", "my-case", "PR title", "fail", "…", root=Path("cases"))``."""

    name: str
    folder: str
    pr_title: str
    decision: str
    summary: str
    #: the directory holding ``folder``; ``None`` means the bundled ``examples/``
    root: Path | None = None

    @property
    def path(self) -> Path:
        """The case's folder: ``root / folder``, by default under the bundled examples."""
        return (self.root or examples_dir()) / self.folder


CASES: dict[str, DemoCase] = {
    "jit": DemoCase("jit", "jit-generation", "JIT component generation for missing library parts", "fail",
                    "the white paper's proposed JIT function (seed 002, Appendix F)"),
    "fixed": DemoCase("fixed", "jit-generation-fixed", "JIT generation under the component's own name", "pass",
                      "the synthesised JIT algorithm (seed 002, Appendix H)"),
}


def demo_plan(case: DemoCase, library=None):
    """The :class:`~designsim.simulation.ReviewPlan` of ``case``: its rulebook,
    diff and pull-request title and body, as ``designsim demo`` reviews them.
    Raises :class:`ConfigError` if the case's files are missing or invalid."""
    from designsim.prompts import PromptLibrary
    from designsim.review import build_plan
    from designsim.rulebook import load_rulebook

    folder = case.path
    rulebook = load_rulebook(folder / ".simulation.yml")
    return build_plan(rulebook, (folder / "change.diff").read_bytes(), pr_title=case.pr_title,
                      pr_body=(folder / "pr_body.md").read_text(encoding="utf-8"),
                      library=library or PromptLibrary(), source=str(folder / "change.diff"))


def load_replies(folder: str | Path) -> list[tuple[str, str]]:
    """``[(label, text)]`` from ``folder`` (a case's ``replies/``), in file
    order: label ``stage:<id>`` or ``judge:<id>``. A judge reply must be a JSON
    object (it is stored re-serialised, compact). Raises :class:`ConfigError`
    naming the file for a name that does not follow ``NN-stage|judge-<id>.md|json``
    or a judge reply that is not JSON."""
    folder = Path(folder)
    replies: list[tuple[int, str, str]] = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        m = _REPLY_NAME.match(path.name)
        if not m or (m["kind"] == "judge") != (m["ext"] == "json"):
            raise ConfigError("reply file names are NN-stage-<id>.md or NN-judge-<id>.json", source=str(path))
        text = path.read_text(encoding="utf-8")
        if m["kind"] == "judge":
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"judge reply is not JSON: {exc.msg}", source=f"{path}:{exc.lineno}") from exc
            if not isinstance(data, dict):
                raise ConfigError("judge reply must be a JSON object keyed by criterion id", source=str(path))
            text = json.dumps(data, ensure_ascii=False)
        replies.append((int(m["n"]), f"{m['kind']}:{m['stage']}", text))
    return [(label, text) for _, label, text in sorted(replies, key=lambda r: r[0])]


class _SourceProvider:
    """Serves ``replies`` by label in order (through :class:`ReplayProvider`, so
    a judge reply is parsed exactly as a replayed cassette's is), with token
    estimates as its usage, and records each call."""

    name = "replay"

    def __init__(self, replies: list[tuple[str, str]], model: str):
        from designsim.providers.replay import Cassette, Interaction, ReplayProvider

        self.inner = ReplayProvider(Cassette(model=model, interactions=[Interaction(label=l, text=x) for l, x in replies]))
        self.supplied = Counter(label for label, _ in replies)
        self.calls: list[tuple[GenerationRequest, str]] = []
        self.missing: list[str] = []

    async def generate(self, request: GenerationRequest) -> Completion:
        try:
            completion = await self.inner.generate(request)
        except PermanentProviderError:
            self.missing.append(request.label)
            raise
        self.calls.append((request, completion.text))
        return completion.model_copy(update={"usage": _usage(request, completion.text)})

    def unused(self) -> dict[str, int]:
        """Replies per label that no call asked for."""
        asked = Counter(request.label for request, _ in self.calls)
        return {label: n - asked[label] for label, n in self.supplied.items() if n > asked[label]}


def _usage(request: GenerationRequest, text: str) -> Usage:
    return Usage(input_tokens=(len(request.system or "") + len(request.prompt)) // 4, output_tokens=len(text) // 4)


def build_cassette(case: DemoCase) -> dict:
    """Run ``case``'s review on its ``replies/`` and return the cassette (a
    dict in :class:`~designsim.providers.replay.Cassette` shape) in the order
    the review made its calls. Raises :class:`ConfigError` if a call found no
    reply or a reply was never asked for (the replies and the rulebook disagree)."""
    from designsim.providers.replay import prompt_digest
    from designsim.review import review_diff

    plan = demo_plan(case)
    provider = _SourceProvider(load_replies(case.path / "replies"), plan.rulebook.model)
    review_diff(plan, provider)
    if provider.missing:
        raise ConfigError(f"no reply for the call(s) {', '.join(provider.missing)}: add NN-stage-<id>.md / "
                          "NN-judge-<id>.json files", source=str(case.path / "replies"))
    left = provider.unused()
    if left:
        raise ConfigError(f"replies never asked for: {left}", source=str(case.path / "replies"))
    return {"version": 1, "model": plan.rulebook.model, "interactions": [
        {"label": req.label, "text": text, "usage": _usage(req, text).model_dump(), "prompt_sha256": prompt_digest(req)}
        for req, text in provider.calls]}


def cassette_text(cassette: dict) -> str:
    """The bytes ``cassette.json`` holds for ``cassette`` (indented JSON, UTF-8, final newline)."""
    return json.dumps(cassette, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m designsim.demo [CASE...]``: rewrite each case's cassette.json
    (atomically) from its replies/. ``--check`` only reports stale cassettes (exit 1)."""
    from designsim.fileio import atomic_write_text

    args = list(sys.argv[1:] if argv is None else argv)
    check = "--check" in args
    names = [a for a in args if a != "--check"] or list(CASES)
    stale = []
    for name in names:
        case = CASES[name]
        text = cassette_text(build_cassette(case))
        target = case.path / "cassette.json"
        current = target.read_text(encoding="utf-8") if target.is_file() else ""
        if text != current:
            stale.append(name)
            if not check:
                atomic_write_text(target, text)
        print(f"{name}: {target} {'stale' if check and text != current else ('written' if text != current else 'up to date')}")
    return 1 if check and stale else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
