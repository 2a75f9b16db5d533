"""Constants and fake-Gemini replies shared by the action tests.

A module of its own (not conftest): several test directories have a conftest,
and ``from conftest import ...`` picks whichever was imported first."""

from __future__ import annotations

from designsim.testing import json_reply, text_reply

from fakegh import FIXTURES  # noqa: F401  (re-exported for the tests)

SYNC = "octokit__pull_request_synchronize.payload.json"
TOKEN = "ghs_fakeInstallationToken0000000000000000"
GHE = "https://ghe.example.com/api/v3"

FLAW_OUTPUT = """## Flaw Analysis

The connection pool keys connections on the hostname only, so two services behind one proxy share sockets and can leak state between tenants.

## Proposed Solution

Key the pool on scheme, host and port together, following the standard pool-manager pattern.

## Revised Algorithm

```python
def pool_key(url):
    return (url.scheme, url.host, url.port)
```
"""

#: A passing judge reply in the pinned schema (criterion ids as keys, quotes of at least 4 words).
JUDGE_PASS = {
    cid: {"evidence_quote": quote, "reasoning": "It does what the criterion asks.", "verdict": "PASS"}
    for cid, quote in [
        ("blueprint", "so two services behind one proxy share sockets"),
        ("analysis", "keys connections on the hostname only"),
        ("solution", "Key the pool on scheme, host and port together"),
        ("algorithm", "return (url.scheme, url.host, url.port)"),
        ("persona", "following the standard pool-manager pattern"),
        ("helps", "Key the pool on scheme, host and port together"),
    ]
}


def gemini_handler(req):
    """Stage calls get a valid flaw-format output; judge calls (JSON mode) a passing verdict."""
    return json_reply(JUDGE_PASS, input_tokens=50, output_tokens=40) if req.wants_json else text_reply(FLAW_OUTPUT, input_tokens=120, output_tokens=80)
