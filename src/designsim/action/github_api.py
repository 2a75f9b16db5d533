"""GitHub REST through PyGithub: retries, and the one place its errors are mapped.

:class:`GitHubClient` makes exactly the calls the action needs, each to a
documented endpoint (the tests validate every request against GitHub's OpenAPI
description), through PyGithub's ``Requester`` so that authentication, GitHub
Enterprise base URLs (``GITHUB_API_URL``, e.g. ``https://ghe.example.com/api/v3``)
and retries are PyGithub's:

* retries: :class:`github.GithubRetry` (a ``urllib3.util.Retry``) retries 5xx
  and 403/429 secondary rate limits (``Retry-After`` honoured, else
  ``secondary_rate_wait`` seconds), with exponential backoff. A 403 that is
  not a rate limit is not retried.
* errors: :func:`github_errors` turns every PyGithub / requests / urllib3
  exception into :class:`~designsim.errors.GitHubError`; a 403 or 404 on a
  write names the permission the workflow's ``permissions:`` block lacks
  (``pull-requests: write`` for comments, ``statuses: write``, ``checks: write``).

Limits relied on (shared/realdata/SOURCES.md §2): a pull request's diff
(``application/vnd.github.diff``) is refused with 406 above 300 files or
20,000 lines; the files list then gives up to 3,000 files, ``per_page`` ≤ 100;
a file's ``patch`` is absent for binary or too-large files; the contents API
serves files up to 1 MB.
"""

from __future__ import annotations

import base64
import contextlib
import posixpath
import re
from dataclasses import dataclass
from typing import Any, Iterator
from urllib.parse import quote

from designsim.errors import GitHubError

#: How many pages of commit statuses to read looking for our own (100 each, newest first).
MAX_STATUS_PAGES = 5
#: GitHub's cap on the pull-request files listing.
MAX_PR_FILES = 3000
PER_PAGE = 100
DIFF_MEDIA_TYPE = "application/vnd.github.diff"


@dataclass(frozen=True)
class RetrySettings:
    """Retry policy for GitHub calls. ``total`` tries after the first;
    ``backoff_factor`` seconds × 2^n between tries (urllib3); secondary rate
    limits wait ``secondary_rate_wait`` seconds unless ``Retry-After`` says
    otherwise, and give up rather than wait more than ``max_wait`` seconds.
    Requests are spaced by ``seconds_between_requests`` (writes by
    ``seconds_between_writes``) to stay clear of secondary rate limits."""

    total: int = 4
    backoff_factor: float = 2.0
    secondary_rate_wait: float = 60.0
    max_wait: float = 300.0
    #: PyGithub's own pacing (its defaults): GitHub asks integrators to space writes ~1 s apart
    seconds_between_requests: float = 0.25
    seconds_between_writes: float = 1.0

    def build(self):
        from github import GithubRetry

        return GithubRetry(total=self.total, backoff_factor=self.backoff_factor,
                           secondary_rate_wait=self.secondary_rate_wait, max_rate_limit_wait=self.max_wait)


DEFAULT_RETRY = RetrySettings()


def _message(data: Any) -> str:
    if isinstance(data, dict):
        msg = str(data.get("message") or "")
        errors = data.get("errors")
        if isinstance(errors, list) and errors:
            parts = [str(e.get("message") or e.get("code") or e) if isinstance(e, dict) else str(e) for e in errors[:3]]
            msg = f"{msg} ({'; '.join(parts)})" if msg else "; ".join(parts)
        return msg
    return str(data or "")[:300]


@contextlib.contextmanager
def github_errors(what: str, *, permission: str | None = None) -> Iterator[None]:
    """Translate anything PyGithub or its transport raises into :class:`GitHubError`.

    ``what`` names the call ("create the PR comment"); ``permission`` is the
    workflow permission it needs, named in the message of a 403 (and of a 404,
    which is what GitHub answers for a resource the token may not see)."""
    from github import GithubException
    import requests
    import urllib3.exceptions

    try:
        yield
    except GithubException as exc:
        status = int(exc.status or 0)
        detail = _message(exc.data)
        text = f"GitHub refused to {what}: HTTP {status}" + (f": {detail}" if detail else "")
        if status in (401,):
            text += " — the token is invalid or expired"
        elif status in (403, 404) and permission:
            rate = "rate limit" in detail.lower()
            if not rate:
                text += (f" — the token lacks the `{permission}` permission; add `permissions: {{{permission}}}` to the job"
                         if status == 403 else f" — not found, or the token lacks `{permission}`")
        raise GitHubError(text, status=status) from exc
    except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise GitHubError(f"could not {what}: {type(exc).__name__}: {str(reason)[:300]}") from exc


def repo_path(path: str, *, what: str = "path") -> str:
    """``path`` as a clean repository-relative POSIX path, or :class:`ValueError`.

    Backslashes count as separators, ``.`` segments and repeated slashes go,
    and ``..`` is resolved; the result must stay inside the repository:
    absolute paths (``/etc/passwd``, ``C:/x``), paths that climb out
    (``../../pulls/7``) and empty ones are refused. This runs before any path
    reaches the contents API, so a rulebook's ``evidence.files`` can never
    become another API route (issue 11, API path traversal)."""
    raw = str(path).strip().replace("\\", "/")
    if not raw:
        raise ValueError(f"{what} is empty")
    if raw.startswith("/") or re.match(r"^[A-Za-z]:", raw):
        raise ValueError(f"{what} {path!r} is absolute; give a path relative to the repository root")
    if any(ord(ch) < 0x20 for ch in raw) or "?" in raw or "#" in raw:
        raise ValueError(f"{what} {path!r} contains a control character, '?' or '#'")
    parts: list[str] = []
    for seg in raw.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if not parts:
                raise ValueError(f"{what} {path!r} leaves the repository ('..' above its root)")
            parts.pop()
            continue
        parts.append(seg)
    if not parts:
        raise ValueError(f"{what} {path!r} names the repository root, not a file")
    return posixpath.join(*parts)


def contents_route(path: str) -> str:
    """The contents-API route segment for a repository path: :func:`repo_path`,
    then every segment URL-quoted on its own (``safe=""``), so ``%2e%2e`` or a
    ``?`` in a name stay part of the file name."""
    return "/".join(quote(seg, safe="") for seg in repo_path(path).split("/"))


@dataclass(frozen=True)
class RepoFile:
    """A file read through the contents API: its ``text`` and its git blob ``sha``."""

    path: str
    text: str
    sha: str


#: ``permission`` values of the collaborator-permission endpoint that can write,
#: and the finer ``role_name`` values (GitHub REST docs, "Get repository permissions
#: for a user": ``permission`` is admin/write/read/none; ``role_name`` also says
#: maintain / triage or a custom role's name).
WRITE_PERMISSIONS = frozenset({"admin", "write"})


class DiffTooLarge(Exception):
    """GitHub answered 406 for the diff media type (over 300 files or 20,000 lines)."""


class GitHubClient:
    """The REST calls the action makes. Every method raises :class:`GitHubError`."""

    def __init__(self, token: str, repository: str, *, api_url: str = "https://api.github.com",
                 retry: RetrySettings | None = None, timeout: int = 30):
        from github import Auth, Github

        if "/" not in repository:
            raise GitHubError(f"GITHUB_REPOSITORY must be owner/name, got {repository!r}")
        self.repository = repository
        settings = retry or DEFAULT_RETRY
        self._gh = Github(auth=Auth.Token(token), base_url=api_url, timeout=timeout, retry=settings.build(), per_page=PER_PAGE,
                          seconds_between_requests=settings.seconds_between_requests,
                          seconds_between_writes=settings.seconds_between_writes)
        self._req = self._gh.requester
        self._base = "/repos/" + repository

    # -- low level
    def _json(self, verb: str, path: str, *, what: str, permission: str | None = None,
              parameters: dict | None = None, body: dict | None = None) -> Any:
        with github_errors(what, permission=permission):
            _, data = self._req.requestJsonAndCheck(verb, self._base + path, parameters=parameters, input=body)
        return data

    # -- reading
    def get_pull(self, number: int) -> dict:
        """``GET /repos/{o}/{r}/pulls/{n}`` as JSON."""
        return self._json("GET", f"/pulls/{number}", what=f"read pull request #{number}", permission="pull-requests: read")

    def get_pull_diff(self, number: int) -> bytes:
        """The pull request's diff against its merge base (``Accept:
        application/vnd.github.diff``). Raises :class:`DiffTooLarge` on 406."""
        return self._get_diff(f"/pulls/{number}", what=f"read the diff of #{number}", permission="pull-requests: read")

    def list_pull_files(self, number: int, *, limit: int = MAX_PR_FILES) -> list[dict]:
        """``GET /repos/{o}/{r}/pulls/{n}/files``, every page (≤ 3,000 files)."""
        files: list[dict] = []
        page = 1
        while len(files) < limit:
            batch = self._json("GET", f"/pulls/{number}/files", what=f"list the files of #{number}",
                               permission="pull-requests: read", parameters={"per_page": PER_PAGE, "page": page})
            if not batch:
                break
            files.extend(batch)
            if len(batch) < PER_PAGE:
                break
            page += 1
        return files[:limit]

    def get_file(self, path: str, ref: str) -> RepoFile | None:
        """A file at ``ref`` through the contents API (text and blob SHA), or
        ``None`` if absent (404) or not a file. ``path`` goes through
        :func:`contents_route` (a path leaving the repository raises
        :class:`GitHubError` without any request)."""
        from github import GithubException

        try:
            route = contents_route(path)
        except ValueError as exc:
            raise GitHubError(f"refused to read {path!r}: {exc}") from exc
        with github_errors(f"read {path} at {ref}", permission="contents: read"):
            try:
                _, data = self._req.requestJsonAndCheck("GET", f"{self._base}/contents/{route}", parameters={"ref": ref})
            except GithubException as exc:
                if exc.status == 404:
                    return None
                raise
        if isinstance(data, list) or not isinstance(data, dict) or data.get("type") not in (None, "file"):
            return None
        content = data.get("content")
        if content is None or (data.get("encoding") not in (None, "base64")):
            raise GitHubError(f"{path} at {ref} is too large for the contents API (over 1 MB)")
        text = base64.b64decode(content).decode("utf-8", errors="replace")
        return RepoFile(repo_path(path), text, str(data.get("sha") or ""))

    def get_file_text(self, path: str, ref: str) -> str | None:
        """A file's text at ``ref`` through the contents API, or ``None`` if absent (404)."""
        found = self.get_file(path, ref)
        return found.text if found else None

    def compare_diff(self, base: str, head: str) -> bytes:
        """The diff of exactly ``base...head`` (two commit SHAs: from their merge
        base to ``head``, what a pull request shows), ``GET /compare/{base}...{head}``
        with the diff media type. Raises :class:`DiffTooLarge` on 406."""
        return self._get_diff(f"/compare/{quote(base, safe='')}...{quote(head, safe='')}",
                              what=f"compare {base[:12]}...{head[:12]}", permission="contents: read")

    def _get_diff(self, path: str, *, what: str, permission: str) -> bytes:
        """GET ``path`` (under the repository) with the diff media type; the body
        as UTF-8 bytes. Raises :class:`DiffTooLarge` on 406 (GitHub refuses diffs
        over 300 files / 20,000 lines) and GitHubError for other failures."""
        from github import GithubException

        with github_errors(what, permission=permission):
            status, headers, output = self._req.requestJson("GET", f"{self._base}{path}", headers={"Accept": DIFF_MEDIA_TYPE})
            if status == 406:
                raise DiffTooLarge(output[:300] if isinstance(output, str) else "")
            if status >= 400:
                import json

                try:
                    data = json.loads(output)
                except ValueError:
                    data = {"message": str(output)[:300]}
                raise GithubException(status, data, headers)
        return (output or "").encode("utf-8")

    def get_collaborator_permission(self, login: str) -> dict:
        """``GET /collaborators/{username}/permission``: ``{"permission": admin|write|read|none,
        "role_name": admin|maintain|write|triage|read|<custom>}``. A 404 (not a
        collaborator, or no such user) comes back as ``{"permission": "none"}``."""
        from github import GithubException

        with github_errors(f"read {login}'s permission", permission="metadata: read"):
            try:
                _, data = self._req.requestJsonAndCheck("GET", f"{self._base}/collaborators/{quote(login, safe='')}/permission")
            except GithubException as exc:
                if exc.status == 404:
                    return {"permission": "none", "role_name": "none"}
                raise
        return data if isinstance(data, dict) else {"permission": "none"}

    def list_commit_statuses(self, sha: str) -> list[dict]:
        """``GET /commits/{sha}/statuses``: the statuses on ``sha``, newest first
        (each with ``context``, ``state``, ``description``, ``target_url`` and
        ``creator.login``), at most :data:`MAX_STATUS_PAGES` pages of 100."""
        out: list[dict] = []
        for page in range(1, MAX_STATUS_PAGES + 1):
            batch = self._json("GET", f"/commits/{quote(sha, safe='')}/statuses", what=f"list the statuses of {sha[:12]}",
                               permission="statuses: read", parameters={"per_page": PER_PAGE, "page": page})
            out.extend(batch or [])
            if not batch or len(batch) < PER_PAGE:
                break
        return out

    def list_check_runs(self, sha: str, name: str) -> list[dict]:
        """``GET /commits/{sha}/check-runs?check_name=NAME``: check runs of that
        name on ``sha`` (each with ``app.slug``, ``external_id``, ``conclusion``), newest first."""
        data = self._json("GET", f"/commits/{quote(sha, safe='')}/check-runs", what=f"list the check runs of {sha[:12]}",
                          permission="checks: read", parameters={"check_name": name, "per_page": PER_PAGE})
        runs = list((data or {}).get("check_runs") or []) if isinstance(data, dict) else []
        return sorted(runs, key=lambda r: int(r.get("id") or 0), reverse=True)  # ids increase: newest first

    def list_issue_comments(self, number: int) -> list[dict]:
        """Every comment on issue/PR ``number`` (``per_page=100``, all pages)."""
        out: list[dict] = []
        page = 1
        while True:
            batch = self._json("GET", f"/issues/{number}/comments", what=f"list the comments of #{number}",
                               permission="pull-requests: read", parameters={"per_page": PER_PAGE, "page": page})
            out.extend(batch or [])
            if not batch or len(batch) < PER_PAGE:
                return out
            page += 1

    # -- writing
    def create_comment(self, number: int, body: str) -> dict:
        return self._json("POST", f"/issues/{number}/comments", what="create the PR comment",
                          permission="pull-requests: write", body={"body": body})

    def update_comment(self, comment_id: int, body: str) -> dict:
        return self._json("PATCH", f"/issues/comments/{comment_id}", what="update the PR comment",
                          permission="pull-requests: write", body={"body": body})

    def delete_comment(self, comment_id: int) -> None:
        self._json("DELETE", f"/issues/comments/{comment_id}", what="delete a duplicate PR comment",
                   permission="pull-requests: write")

    def create_status(self, sha: str, *, state: str, context: str, description: str, target_url: str | None) -> dict:
        body = {"state": state, "context": context, "description": description}
        if target_url:
            body["target_url"] = target_url
        return self._json("POST", f"/statuses/{sha}", what="set the commit status", permission="statuses: write", body=body)

    def create_check_run(self, body: dict) -> dict:
        return self._json("POST", "/check-runs", what="create the check run", permission="checks: write", body=body)

    def update_check_run(self, check_run_id: int, body: dict) -> dict:
        return self._json("PATCH", f"/check-runs/{check_run_id}", what="update the check run", permission="checks: write", body=body)


def unified_diff_from_files(files: list[dict]) -> tuple[bytes, list[str]]:
    """Rebuild a unified diff from the files list's ``patch`` fields.

    Returns ``(diff bytes, notes)``. Renames keep ``rename from/to`` headers;
    a file without ``patch`` (binary, or too large for GitHub to show) becomes
    a ``Binary files … differ`` stanza so the evidence lists it as omitted."""
    out: list[str] = []
    notes: list[str] = []
    no_patch = 0
    for f in files:
        name = str(f.get("filename") or "")
        old = str(f.get("previous_filename") or name)
        status = f.get("status") or "modified"
        out.append(f"diff --git a/{old} b/{name}")
        if status == "renamed" and old != name:
            out += [f"rename from {old}", f"rename to {name}"]
        if status == "added":
            out.append("new file mode 100644")
        elif status == "removed":
            out.append("deleted file mode 100644")
        a = "/dev/null" if status == "added" else f"a/{old}"
        b = "/dev/null" if status == "removed" else f"b/{name}"
        patch = f.get("patch")
        if patch is None:
            if status == "renamed" and not f.get("changes"):
                continue
            no_patch += 1
            out.append(f"Binary files {a} and {b} differ")
            continue
        if not patch:
            continue
        out += [f"--- {a}", f"+++ {b}"]
        out.append(patch)
    if no_patch:
        notes.append(f"{no_patch} file(s) had no patch from GitHub (binary or too large)")
    text = "\n".join(line.rstrip("\n") for line in out) + "\n"
    return text.encode("utf-8"), notes


def changes_path(diff: bytes, path: str) -> bool:
    """True when the unified diff touches ``path`` (either side of a rename)."""
    pattern = re.compile(rb"^diff --git a/(\S+) b/(\S+)", re.MULTILINE)
    wanted = (path[2:] if path.startswith("./") else path).encode()
    return any(wanted in (m.group(1), m.group(2)) for m in pattern.finditer(diff))
