"""An in-memory GitHub REST API behind ``responses``, validating every request.

Every request the code under test sends (any method, any URL under the API
base) goes through :meth:`FakeGitHub._dispatch`, which first validates method,
path, query and body against GitHub's OpenAPI description
(``tests/fixtures/realdata/github-openapi/api.github.com.subset.json`` plus the
operations in ``tests/fixtures/action/openapi-supplement.json`` that the subset
lacks). A request the spec does not describe is recorded in ``violations`` and
answered with 599, and the fixture fails the test at teardown.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import responses

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "action"
#: The vendored real data (tests/fixtures/SOURCES.md); the same folder as the ``realdata`` fixture.
REALDATA = FIXTURES.parent / "realdata"


def load_openapi(realdata: Path, extra_servers: list[str] = ()):
    """GitHub's OpenAPI subset + our supplement, as an openapi-core ``OpenAPI``."""
    from openapi_core import OpenAPI

    spec = json.loads((realdata / "github-openapi" / "api.github.com.subset.json").read_text())
    supplement = json.loads((FIXTURES / "openapi-supplement.json").read_text())
    for path, ops in supplement["paths"].items():
        spec["paths"].setdefault(path, {}).update(ops)
    spec["servers"] = spec.get("servers", []) + [{"url": u} for u in extra_servers]
    return OpenAPI.from_dict(spec)


@dataclass
class Injected:
    method: str
    pattern: re.Pattern
    status: int
    body: Any
    headers: dict
    times: int


@dataclass
class FakeGitHub:
    """State of one fake repository. ``pull`` is the PR JSON (from a real
    webhook payload), ``diff`` its diff bytes, ``files`` its files list,
    ``contents`` ``{(path, ref) or path: text}``."""

    openapi: Any
    base: str = "https://api.github.com"
    repository: str = "Codertocat/Hello-World"
    pull: dict = field(default_factory=dict)
    diff: bytes = b""
    diff_too_large: bool = False
    files: list[dict] = field(default_factory=list)
    contents: dict = field(default_factory=dict)
    comments: list[dict] = field(default_factory=list)
    statuses: list[dict] = field(default_factory=list)
    check_runs: dict = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    injected: list[Injected] = field(default_factory=list)
    _next_id: int = 5000

    # -- test helpers
    def inject(self, method: str, path_regex: str, status: int, body: Any = None, headers: dict | None = None, times: int = 1):
        """Answer the next ``times`` matching requests with ``status``/``body`` (after validation)."""
        self.injected.append(Injected(method.upper(), re.compile(path_regex), status, body, headers or {}, times))

    def add_comment(self, body: str, login: str = "github-actions[bot]", **extra) -> dict:
        self._next_id += 1
        c = {"id": self._next_id, "node_id": "IC_x", "body": body, "user": {"login": login, "id": 1, "type": "Bot" if "[bot]" in login else "User"},
             "html_url": f"https://github.com/{self.repository}/pull/2#issuecomment-{self._next_id}",
             "url": f"{self.base}/repos/{self.repository}/issues/comments/{self._next_id}",
             "created_at": f"2024-01-01T00:{self._next_id % 60:02d}:00Z", "updated_at": "2024-01-01T00:00:00Z",
             "author_association": "NONE", **extra}
        self.comments.append(c)
        return c

    def calls(self, method: str, pattern: str) -> list[str]:
        return [p for m, p in self.requests if m == method and re.search(pattern, p)]

    # -- the responses hook
    def install(self, rsps: responses.RequestsMock) -> None:
        host, _, rest = self.base.partition("://")[2].partition("/")
        url = re.compile(re.escape(self.base.partition("://")[0]) + "://" + re.escape(host) + r"(:443)?/" + re.escape(rest) + ".*")
        for method in ("GET", "POST", "PATCH", "PUT", "DELETE"):
            rsps.add_callback(method, url, callback=self._dispatch)

    def _validate(self, request) -> str | None:
        from openapi_core.contrib.requests import RequestsOpenAPIRequest

        try:
            self.openapi.validate_request(RequestsOpenAPIRequest(request))
        except Exception as exc:  # any validation failure, path not found included
            detail = "; ".join(str(e) for e in getattr(exc, "schema_errors", []) or []) or str(exc)
            return f"{request.method} {request.url}: {type(exc).__name__}: {detail}"
        return None

    def _dispatch(self, request):
        request.url = re.sub(r"^(https://[^/:]+):443/", r"\1/", request.url)  # PyGithub spells the default port
        parts = urlsplit(request.url)
        path = parts.path[len(urlsplit(self.base).path):]
        self.requests.append((request.method, path))
        problem = self._validate(request)
        if problem:
            self.violations.append(problem)
            return 599, {}, json.dumps({"message": "request not in GitHub's OpenAPI description: " + problem})
        for inj in self.injected:
            if inj.times > 0 and inj.method == request.method and inj.pattern.search(path):
                inj.times -= 1
                return inj.status, {"Content-Type": "application/json", **inj.headers}, json.dumps(inj.body or {})
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        body = json.loads(request.body) if request.body else {}
        prefix = f"/repos/{self.repository}"
        if not path.startswith(prefix):
            return 404, {}, json.dumps({"message": "Not Found"})
        return self._route(request.method, path[len(prefix):], query, body, request.headers)

    def _json(self, status: int, data: Any):
        return status, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(data)

    def _route(self, method: str, path: str, query: dict, body: dict, headers):
        page, per_page = int(query.get("page", 1)), int(query.get("per_page", 30))
        if m := re.fullmatch(r"/pulls/(\d+)", path):
            if "diff" in headers.get("Accept", ""):
                if self.diff_too_large:
                    return self._json(406, {"message": "Sorry, the diff exceeded the maximum number of files (300). Consider using "
                                                       "'List pull requests files' API or locally cloning the repository instead.",
                                            "errors": [{"resource": "PullRequest", "field": "diff", "code": "too_large"}],
                                            "documentation_url": "https://docs.github.com/rest/pulls/pulls#list-pull-requests-files",
                                            "status": "406"})
                return 200, {"Content-Type": "application/vnd.github.diff; charset=utf-8"}, self.diff.decode("utf-8", "replace")
            return self._json(200, self.pull)
        if re.fullmatch(r"/pulls/\d+/files", path):
            return self._json(200, self.files[(page - 1) * per_page: page * per_page])
        if m := re.fullmatch(r"/contents/(.+)", path):
            name = m.group(1)
            text = self.contents.get((name, query.get("ref")), self.contents.get(name))
            if text is None:
                return self._json(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest/repos/contents#get-repository-content"})
            raw = text.encode()
            return self._json(200, {"type": "file", "encoding": "base64", "size": len(raw), "name": name.split("/")[-1], "path": name,
                                    "content": base64.encodebytes(raw).decode(), "sha": "0" * 40})
        if re.fullmatch(r"/issues/\d+/comments", path):
            if method == "GET":
                return self._json(200, copy.deepcopy(self.comments[(page - 1) * per_page: page * per_page]))
            return self._json(201, self.add_comment(body["body"]))
        if m := re.fullmatch(r"/issues/comments/(\d+)", path):
            cid = int(m.group(1))
            found = [c for c in self.comments if c["id"] == cid]
            if not found:
                return self._json(404, {"message": "Not Found"})
            if method == "DELETE":
                self.comments.remove(found[0])
                return 204, {}, ""
            found[0]["body"] = body["body"]
            return self._json(200, found[0])
        if m := re.fullmatch(r"/statuses/([0-9a-f]+)", path):
            status = {"id": len(self.statuses) + 1, "sha": m.group(1), **body}
            self.statuses.append(status)
            return self._json(201, {**status, "url": "https://api.github.com/x", "state": body["state"]})
        if path == "/check-runs":
            self._next_id += 1
            run = {"id": self._next_id, **body}
            self.check_runs[self._next_id] = run
            return self._json(201, run)
        if m := re.fullmatch(r"/check-runs/(\d+)", path):
            run = self.check_runs[int(m.group(1))]
            run.update(body)
            return self._json(200, run)
        return self._json(404, {"message": f"fake has no route for {method} {path}"})
