"""The GitHub Action: ``designsim action``.

Modules (each small, one job):

* :mod:`.context`    — ``INPUT_*`` variables -> :class:`ActionInputs`; ``GITHUB_*``
  variables -> :class:`ActionEnv`; the event payload (lenient pydantic models)
  -> a :class:`Target` (which pull request) or a :class:`Skip` / :class:`Refusal`.
* :mod:`.github_api` — the PyGithub client (retries on 5xx and secondary rate
  limits) and the one place PyGithub exceptions become
  :class:`~designsim.errors.GitHubError`.
* :mod:`.publisher`  — where results go: the one comment per rulebook, the
  commit status or check run, ``$GITHUB_STEP_SUMMARY`` and ``$GITHUB_OUTPUT``.
* :mod:`.run`        — the orchestration.
* :mod:`.cli`        — the click command.

Everything that comes from the pull request (title, body, diff, comments) is
untrusted data; the Gemini key and the GitHub token are masked first and never
written anywhere.
"""
