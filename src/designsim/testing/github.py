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
to ``/statuses/{sha}`` plus ``sha`` and ``creator.login``; ``check_runs`` the
current state of each check run (creation body merged with every update, plus
``app.slug``). ``permissions`` maps a login to its repository role for
``/simulate`` (``admin``, ``maintain``, ``write``, ``triage``, ``read``); a login
not listed gets ``default_role`` (``write``: the recorder is for trying a
rulebook, not for testing who may run it).
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
                 comments: list[dict] | None = None, login: str = "github-actions[bot]", repository: str = "owner/repo",
                 permissions: dict[str, str] | None = None, default_role: str = "write"):
        self.repository = repository
        self.permissions = dict(permissions or {})
        self.default_role = default_role
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

    def get_file(self, path: str, ref: str):
        """The served file as a :class:`~designsim.action.github_api.RepoFile`
        (blob SHA: git's ``blob <size>\\0<bytes>`` SHA-1 of the text), or ``None``."""
        import hashlib

        from designsim.action.github_api import RepoFile, repo_path

        try:
            clean = repo_path(path)
        except ValueError as exc:
            raise GitHubError(f"refused to read {path!r}: {exc}") from exc
        self.calls.append(("get_file_text", (clean, ref)))
        text = self.files.get((clean, ref), self.files.get(clean))
        if text is None:
            return None
        data = text.encode("utf-8")
        return RepoFile(clean, text, hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest())

    def get_file_text(self, path: str, ref: str) -> str | None:
        found = self.get_file(path, ref)
        return found.text if found is not None else None

    def compare_diff(self, base: str, head: str) -> bytes:
        self.calls.append(("compare_diff", (base, head)))
        return self.diff

    def get_collaborator_permission(self, login: str) -> dict:
        self.calls.append(("get_collaborator_permission", login))
        role = self.permissions.get(login, self.default_role)
        return {"permission": {"maintain": "write", "triage": "read"}.get(role, role), "role_name": role}

    def list_commit_statuses(self, sha: str) -> list[dict]:
        self.calls.append(("list_commit_statuses", sha))
        return [dict(s) for s in reversed(self.statuses) if s["sha"] == sha]

    def list_check_runs(self, sha: str, name: str) -> list[dict]:
        self.calls.append(("list_check_runs", sha))
        return [dict(r) for r in reversed(list(self.check_runs.values())) if r.get("head_sha") == sha and r.get("name") == name]

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
        status = {"sha": sha, "state": state, "context": context, "description": description, "target_url": target_url,
                  "creator": {"login": self.login}}
        self.statuses.append(status)
        self.calls.append(("create_status", state))
        return dict(status)

    def create_check_run(self, body: dict) -> dict:
        rid = next(self._ids)
        slug = self.login[: -len("[bot]")] if self.login.endswith("[bot]") else self.login
        self.check_runs[rid] = {"id": rid, **body, "app": {"slug": slug}}
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
