"""An offline stand-in for GitHub: record what the action would have posted.

:class:`GitHubRecorder` implements the same calls as the live client
(:class:`designsim.action.github_api.GitHubClient`): it keeps comments in
memory, records every commit status and check run, and serves the pull
request, its diff and files from what you give it. Pass it to the action
runner to see, offline, exactly what a pull request would get::

    from designsim.action.run import run_action
    from designsim.testing import FakeProvider
    from designsim.testing.github import GitHubRecorder

    gh = GitHubRecorder(files={".simulation.yml": open(".simulation.yml").read()},
                        diff=open("change.diff", "rb").read())
    env = {"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": "event.json",
           "GITHUB_REPOSITORY": "me/repo", "INPUT_GEMINI-API-KEY": "unused"}
    code = run_action(env, publisher=gh, provider=FakeProvider(my_replies))
    print(gh.comments[0]["body"])          # the PR comment
    print(gh.statuses[-1]["state"])        # success / failure / error / pending
    print(gh.calls)                        # every call, in order: ("create_comment", …)

Shapes: ``comments`` are dicts like the REST API's (``id``, ``body``,
``user.login``, ``html_url``, ``created_at``); ``statuses`` the bodies POSTed
to ``/statuses/{sha}`` plus ``sha``; ``check_runs`` the current state of each
check run (creation body merged with every update).
"""

from __future__ import annotations

import itertools
from typing import Any

from designsim.errors import GitHubError


class GitHubRecorder:
    """Records comments, statuses and check runs instead of calling GitHub.

    ``files`` maps paths to text served by :meth:`get_file_text` (any ref; or
    ``{(path, ref): text}`` for a specific ref); ``diff`` is the pull
    request's diff (bytes); ``pull`` overrides fields of the pull request JSON;
    ``comments`` seeds existing comments; ``login`` is who we comment as.
    """

    def __init__(self, *, files: dict | None = None, diff: bytes = b"", pull: dict | None = None,
                 comments: list[dict] | None = None, login: str = "github-actions[bot]", repository: str = "owner/repo"):
        self.repository = repository
        self.files = dict(files or {})
        self.diff = diff
        self.pull = pull or {}
        self.login = login
        self._ids = itertools.count(1000)
        self.comments: list[dict] = [dict(c) for c in (comments or [])]
        self.statuses: list[dict] = []
        self.check_runs: dict[int, dict] = {}
        self.deleted: list[int] = []
        self.calls: list[tuple[str, Any]] = []

    # -- reads
    def get_pull(self, number: int) -> dict:
        self.calls.append(("get_pull", number))
        return {"number": number, **self.pull}

    def get_pull_diff(self, number: int) -> bytes:
        self.calls.append(("get_pull_diff", number))
        return self.diff

    def list_pull_files(self, number: int) -> list[dict]:
        self.calls.append(("list_pull_files", number))
        return []

    def get_file_text(self, path: str, ref: str) -> str | None:
        self.calls.append(("get_file_text", (path, ref)))
        return self.files.get((path, ref), self.files.get(path))

    def list_issue_comments(self, number: int) -> list[dict]:
        self.calls.append(("list_issue_comments", number))
        return [dict(c) for c in self.comments]

    # -- writes
    def create_comment(self, number: int, body: str) -> dict:
        cid = next(self._ids)
        comment = {"id": cid, "body": body, "user": {"login": self.login, "type": "Bot"}, "issue_number": number,
                   "html_url": f"https://github.com/{self.repository}/pull/{number}#issuecomment-{cid}",
                   "created_at": f"2030-01-01T00:00:{cid % 60:02d}Z"}
        self.comments.append(comment)
        self.calls.append(("create_comment", number))
        return dict(comment)

    def update_comment(self, comment_id: int, body: str) -> dict:
        self.calls.append(("update_comment", comment_id))
        for c in self.comments:
            if c["id"] == comment_id:
                c["body"] = body
                return dict(c)
        raise GitHubError(f"no comment {comment_id}", status=404)

    def delete_comment(self, comment_id: int) -> None:
        self.calls.append(("delete_comment", comment_id))
        self.comments = [c for c in self.comments if c["id"] != comment_id]
        self.deleted.append(comment_id)

    def create_status(self, sha: str, *, state: str, context: str, description: str, target_url: str | None) -> dict:
        status = {"sha": sha, "state": state, "context": context, "description": description, "target_url": target_url}
        self.statuses.append(status)
        self.calls.append(("create_status", state))
        return dict(status)

    def create_check_run(self, body: dict) -> dict:
        rid = next(self._ids)
        self.check_runs[rid] = {"id": rid, **body}
        self.calls.append(("create_check_run", body.get("status")))
        return dict(self.check_runs[rid])

    def update_check_run(self, check_run_id: int, body: dict) -> dict:
        self.check_runs[check_run_id].update(body)
        self.calls.append(("update_check_run", body.get("conclusion") or body.get("status")))
        return dict(self.check_runs[check_run_id])

    @property
    def last_state(self) -> str | None:
        """The final commit-status state or check-run conclusion, whichever was used last."""
        if self.check_runs:
            run = list(self.check_runs.values())[-1]
            return run.get("conclusion") or run.get("status")
        return self.statuses[-1]["state"] if self.statuses else None


__all__ = ["GitHubRecorder"]
