"""The GitHub Action: ``designsim action``.

Modules (each small, one job):

* :mod:`.context`    — ``INPUT_*`` variables -> :class:`ActionInputs`; ``GITHUB_*``
  variables -> :class:`ActionEnv`; the event payload (lenient pydantic models)
  -> a :class:`Target` (which pull request, and the ``/simulate`` :class:`Command`)
  or a :class:`Skip`.
* :mod:`.github_api` — the PyGithub client (retries on 5xx and secondary rate
  limits) and the one place PyGithub exceptions become
  :class:`~designsim.errors.GitHubError`.
* :mod:`.publisher`  — where results go: the one comment per rulebook, the
  commit status or check run (carrying a :class:`ResultTag`, the only thing
  later runs trust), ``$GITHUB_STEP_SUMMARY`` and ``$GITHUB_OUTPUT``.
* :mod:`.run`        — the orchestration: who may run it (collaborator
  permission), forks, the trusted skip, the review, ``/simulate accept``, the
  batch modes, and the one catch-all error path.
* :mod:`.cli`        — the click command.

Everything that comes from the pull request (title, body, diff, comments) is
untrusted data; the Gemini key and the GitHub token are masked first and never
written anywhere.
"""
