"""The action with Vertex AI and no API key (issue 10 item 6): the vertex-project
input selects Vertex AI, Application Default Credentials come from the file
google-github-actions/auth leaves in the workspace (its runner path rewritten to
the container's), and the real google-genai client talks to the fake."""

from __future__ import annotations

from actionkit import gemini_handler

from designsim.testing import FakeGeminiServer, offline_adc_file
from designsim.testing.fake_gemini import FAKE_ACCESS_TOKEN


def test_vertex_project_input_reviews_without_a_key(github, runner, sync_payload, tmp_path, monkeypatch, capfd):
    runner.env(sync_payload, **{"vertex-project": "wif-proj", "vertex-location": "us-central1"})
    with FakeGeminiServer(gemini_handler) as gemini:
        offline_adc_file(tmp_path / "gha-creds-0123abcd.json", gemini)  # in GITHUB_WORKSPACE (= tmp_path)
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/home/runner/work/Hello-World/Hello-World/gha-creds-0123abcd.json")
        code = runner.run()
    out, err = capfd.readouterr()
    assert code == 0, out + err
    reqs = gemini.generate_requests()
    assert reqs and all(r.vertex and (r.project, r.location) == ("wif-proj", "us-central1") for r in reqs)
    assert all(r.headers.get("Authorization") == f"Bearer {FAKE_ACCESS_TOKEN}" for r in reqs)
    assert all("x-goog-api-key" not in {k.lower() for k in r.headers} for r in reqs)
    assert [s["state"] for s in github.statuses] == ["pending", "success"]
    # the cost estimate went to the step summary before the review: countTokens only, then the review
    summary = runner.summary.read_text()
    assert "cost estimate before the review" in summary and summary.index("cost estimate") < summary.index("designsim —", 30)
    counts = gemini.count_requests()
    assert counts and max(r.started for r in counts) < min(r.started for r in reqs)
