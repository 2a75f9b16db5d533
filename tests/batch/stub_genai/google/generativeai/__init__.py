"""A stand-in for the deprecated ``google.generativeai`` SDK, for running the
legacy batch script offline. Only what the script touches: ``configure`` and
``GenerativeModel(...).generate_content(text)`` returning an object with ``.text``.

Behaviour (environment variables, read per call):

* the answer is ``"stub answer to: " + prompt`` (a function of the prompt, so
  tests can check each id got its own prompt's answer);
* ``STUB_GENAI_FAIL`` — comma-separated substrings; a prompt containing one
  raises ``Exception("504 Deadline Exceeded")`` (the error the legacy runs hit);
* ``STUB_GENAI_FAIL_TIMES`` — fail each such prompt only this many times
  (counted in files under ``STUB_GENAI_STATE``), then answer; unset = always;
* ``STUB_GENAI_FAIL_ALWAYS`` — substrings whose prompts fail on every call;
* every call is appended to ``$STUB_GENAI_STATE/calls.log``.

It is not the google-genai SDK and patches nothing.
"""

from __future__ import annotations

import hashlib
import os

_configured: dict = {}


def configure(api_key=None, **kwargs):
    if not api_key:
        raise ValueError("stub google.generativeai: configure() needs api_key")
    _configured["api_key_set"] = True


class GenerateContentResponse:
    """Picklable like the real response objects (the legacy script pickles them)."""

    def __init__(self, text: str):
        self.text = text


def _state_dir():
    path = os.environ.get("STUB_GENAI_STATE")
    if path:
        os.makedirs(path, exist_ok=True)
    return path


def _should_fail(prompt: str) -> bool:
    if any(m and m in prompt for m in os.environ.get("STUB_GENAI_FAIL_ALWAYS", "").split(",")):
        return True
    marks = [m for m in os.environ.get("STUB_GENAI_FAIL", "").split(",") if m]
    if not any(m in prompt for m in marks):
        return False
    times = os.environ.get("STUB_GENAI_FAIL_TIMES")
    if times is None:
        return True
    state = _state_dir()
    counter = os.path.join(state, "fail-" + hashlib.sha256(prompt.encode()).hexdigest()[:16])
    count = int(open(counter).read()) if os.path.exists(counter) else 0
    if count >= int(times):
        return False
    with open(counter, "w") as fh:
        fh.write(str(count + 1))
    return True


class GenerativeModel:
    def __init__(self, model_name=None, generation_config=None, safety_settings=None, **kwargs):
        if not _configured.get("api_key_set"):
            raise RuntimeError("stub google.generativeai: configure() was not called")
        self.model_name = model_name

    def generate_content(self, contents, **kwargs):
        prompt = contents if isinstance(contents, str) else str(contents)
        state = _state_dir()
        if state:
            with open(os.path.join(state, "calls.log"), "a", encoding="utf-8") as fh:
                fh.write(prompt.replace("\n", " ") + "\n")
        if _should_fail(prompt):
            raise Exception("504 Deadline Exceeded")
        return GenerateContentResponse("stub answer to: " + prompt)
