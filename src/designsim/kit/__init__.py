"""The starter kit: preparing a good simulation, as part of the tool.

The white paper's Simulation Starter Kit (seed 001, Appendix E: Pain Journal,
Evidence Locker, Rulebook, Assembly Line) and its META_PROMPTING case (seed
002, Appendices F and H: a component library assembled by goal, and
just-in-time generation of a missing component) become four commands:

* ``designsim init`` (:mod:`designsim.kit.init`) — the four worksheets,
  interactively or from an answers file, written as a ``.simulation.yml`` and a
  pull-request workflow;
* ``designsim lint`` (:mod:`designsim.kit.lint`) — schema errors with
  ``file:line:column``, components and templates that must exist and render,
  prompt size against the model's context window, and advice drawn from the
  paper's Simulation Litmus Test (seed 001, Appendix D);
* ``designsim components`` (:mod:`designsim.kit.components`) — list, show and
  generate persona/protocol/constraint components (Appendix H's algorithm);
* ``designsim test`` (:mod:`designsim.kit.golden`) — a rulebook's own
  regression suite of labelled outputs.

The click commands are in :mod:`designsim.kit.cli`.
"""

#: Where a repository keeps its own prompt overrides and components
#: (searched before the bundled ``prompts/``), relative to the repository root.
USER_PROMPTS_DIR = ".designsim/prompts"
#: Where a rulebook's golden outputs live, relative to the rulebook's directory.
GOLDEN_DIR = ".designsim/golden"
