"""Fixtures for the action tests: a validated fake GitHub API (``responses``),
a fake Gemini server driving the real google-genai client, and an
environment that looks like a GitHub Actions runner."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import responses

from fakegh import FIXTURES, REALDATA, FakeGitHub, load_openapi  # tests/action is on sys.path (rootdir-relative imports, as tests/batch)

from actionkit import FLAW_OUTPUT, GHE, JUDGE_PASS, SYNC, TOKEN, gemini_handler  # noqa: F401


@pytest.fixture(autouse=True)
def _unpaced_github(monkeypatch):
    """PyGithub spaces writes 1 s apart by default; the fake API needs no pacing."""
    from designsim.action import github_api

    monkeypatch.setattr(github_api, "DEFAULT_RETRY", github_api.RetrySettings(seconds_between_requests=0, seconds_between_writes=0))


@pytest.fixture(scope="session")
def openapi():
    return load_openapi(REALDATA, extra_servers=[GHE])


@pytest.fixture
def payloads(realdata) -> Path:
    return realdata / "webhooks"


@pytest.fixture
def sync_payload(payloads) -> dict:
    return json.loads((payloads / SYNC).read_text())


@pytest.fixture
def small_diff(realdata) -> bytes:
    return (realdata / "diffs" / "01-small-bugfix__PyGithub__e3321f0a.diff").read_bytes()


@pytest.fixture
def rulebook_text() -> str:
    return (FIXTURES / "simulation.yml").read_text()


def _make_github(openapi, sync_payload, small_diff, rulebook_text, base="https://api.github.com"):
    gh = FakeGitHub(openapi=openapi, base=base, pull=copy.deepcopy(sync_payload["pull_request"]), diff=small_diff)
    gh.contents[".simulation.yml"] = rulebook_text
    return gh


@pytest.fixture
def github(openapi, sync_payload, small_diff, rulebook_text):
    """The fake GitHub API, installed in ``responses``; fails the test on any
    request that GitHub's OpenAPI description does not allow."""
    gh = _make_github(openapi, sync_payload, small_diff, rulebook_text)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_passthru("http://127.0.0.1")
        gh.install(rsps)
        yield gh
    assert not gh.violations, "requests outside GitHub's OpenAPI description:\n" + "\n".join(gh.violations)


@pytest.fixture
def ghe_github(openapi, sync_payload, small_diff, rulebook_text):
    gh = _make_github(openapi, sync_payload, small_diff, rulebook_text, base=GHE)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        gh.install(rsps)
        yield gh
    assert not gh.violations, "\n".join(gh.violations)


class Runner:
    """Sets up a runner-like environment in ``tmp_path`` and runs ``designsim action``."""

    def __init__(self, tmp_path: Path, monkeypatch):
        self.tmp = tmp_path
        self.mp = monkeypatch
        self.summary = tmp_path / "step_summary.md"
        self.output = tmp_path / "github_output.txt"
        monkeypatch.chdir(tmp_path)

    def env(self, payload: dict | Path, event: str = "pull_request", *, repo: str = "Codertocat/Hello-World",
            api_url: str | None = None, **inputs: str) -> None:
        path = self.tmp / "event.json"
        if isinstance(payload, Path):
            path = payload
        else:
            path.write_text(json.dumps(payload))
        values = {"GITHUB_EVENT_NAME": event, "GITHUB_EVENT_PATH": str(path), "GITHUB_REPOSITORY": repo,
                  "GITHUB_STEP_SUMMARY": str(self.summary), "GITHUB_OUTPUT": str(self.output), "GITHUB_WORKSPACE": str(self.tmp),
                  "GITHUB_RUN_ID": "42", "GITHUB_SERVER_URL": "https://github.com"}
        if api_url:
            values["GITHUB_API_URL"] = api_url
        inputs.setdefault("github-token", TOKEN)
        for name, value in inputs.items():
            values["INPUT_" + name.upper()] = value  # hyphens kept, as GitHub does
        for k, v in values.items():
            self.mp.setenv(k, v)

    def run(self, *args: str) -> int:
        from designsim.cli import main

        return main(["action", *args])

    def outputs(self) -> dict[str, str]:
        """Parse ``$GITHUB_OUTPUT`` (``name<<DELIM`` blocks)."""
        out: dict[str, str] = {}
        lines = self.output.read_text().splitlines() if self.output.exists() else []
        i = 0
        while i < len(lines):
            name, delim = lines[i].split("<<", 1)
            j = lines.index(delim, i + 1)
            out[name] = "\n".join(lines[i + 1:j])
            i = j + 1
        return out


@pytest.fixture
def runner(tmp_path, monkeypatch) -> Runner:
    return Runner(tmp_path, monkeypatch)
