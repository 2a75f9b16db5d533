"""A local fake of the Gemini REST API, for driving the *real* google-genai client.

The SDK honours ``GOOGLE_GEMINI_BASE_URL``; point it at :attr:`FakeGeminiServer.url`
and every ``generate_content`` call lands here instead of Google. Nothing in
the SDK is patched. Replies are decided by a plain function (like httpx's
``MockTransport``)::

    def handler(req: FakeRequest) -> FakeReply:
        if "explode" in req.prompt:
            return error_reply(504, "DEADLINE_EXCEEDED", "Deadline expired")
        return text_reply(f"echo: {req.prompt}")

    with FakeGeminiServer(handler, latency_s=0.05) as server:
        ...  # os.environ["GOOGLE_GEMINI_BASE_URL"] == server.url inside the block
        assert server.requests[0].user_turns == 1

Also served: ``countTokens`` (counted as ~4 characters per token, or by a
``count_tokens`` function), Vertex AI paths
(``/v1beta1/projects/P/locations/L/publishers/google/models/M:…``, the same
handler; :attr:`FakeRequest.vertex` tells them apart), and, with ``models=``,
Gemini's 404 NOT_FOUND for any other model id. Every reply carries
``modelVersion`` (the requested id unless the reply sets another).

Shapes follow the recorded responses in ``shared/realdata/gemini`` (proto3 JSON
mapping of ``GenerateContentResponse``; errors are ``google.rpc.Status``).
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

_GENERATE = re.compile(
    r"^/(?P<version>v1\w*)/(?:projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/publishers/google/)?"
    r"models/(?P<model>[^/:]+):generateContent$")
_COUNT = re.compile(
    r"^/(?P<version>v1\w*)/(?:projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/publishers/google/)?"
    r"models/(?P<model>[^/:]+):countTokens$")


@dataclass
class FakeRequest:
    """One request the fake received. ``body`` is the JSON the SDK sent;
    ``started``/``finished`` are ``time.monotonic()`` seconds."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    started: float
    finished: float = 0.0
    model: str = ""
    #: Vertex AI project and location from the path (empty for the Gemini API)
    project: str = ""
    location: str = ""

    @property
    def vertex(self) -> bool:
        """True for a Vertex AI path (``projects/…/locations/…/publishers/google/models/…``)."""
        return bool(self.project)

    @property
    def generation_config(self) -> dict[str, Any]:
        """``generationConfig`` with every key in lowerCamelCase. The proto3 JSON
        mapping accepts both spellings and google-genai 3.6 sends nested configs
        as given (``thinkingConfig: {"thinking_level": …}``), so tests compare the
        canonical form."""
        return _camel(dict(self.body.get("generationConfig") or {}))

    @property
    def contents(self) -> list[dict]:
        return list(self.body.get("contents") or [])

    @property
    def user_turns(self) -> int:
        """How many ``user`` turns ``contents`` holds (a fresh session has one)."""
        return sum(1 for c in self.contents if c.get("role", "user") == "user")

    @property
    def prompt(self) -> str:
        """All text parts of all turns, joined."""
        return "\n".join(p.get("text", "") for c in self.contents for p in c.get("parts", []) if "text" in p)

    @property
    def system(self) -> str:
        sys_ = self.body.get("systemInstruction") or {}
        return "\n".join(p.get("text", "") for p in sys_.get("parts", []))

    @property
    def wants_json(self) -> bool:
        return (self.body.get("generationConfig") or {}).get("responseMimeType") == "application/json"


def _camel(value: Any) -> Any:
    if isinstance(value, dict):
        return {re.sub(r"_([a-z])", lambda m: m.group(1).upper(), k): _camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


@dataclass
class FakeReply:
    """What to answer: HTTP ``status``, a JSON ``body``, after ``delay_s`` seconds
    (on top of the server's fixed latency). ``drop`` closes the connection
    without answering (a connection reset). ``headers`` are extra response
    headers (the File API's resumable upload answers in ``x-goog-upload-*``
    headers); ``raw`` bytes, when set, are sent instead of the JSON ``body``
    (a file download)."""

    status: int = 200
    body: dict[str, Any] = field(default_factory=dict)
    delay_s: float = 0.0
    drop: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None


def text_reply(text: str, *, input_tokens: int = 10, output_tokens: int | None = None, finish_reason: str = "STOP",
               cached_tokens: int = 0, thinking_tokens: int = 0, model_version: str | None = None) -> FakeReply:
    """A successful ``generateContent`` reply carrying ``text``. ``model_version``
    sets ``modelVersion`` (default: the model the request named, filled in by the
    server); ``thinking_tokens`` sets ``thoughtsTokenCount``."""
    out = output_tokens if output_tokens is not None else max(1, len(text) // 4)
    usage = {"promptTokenCount": input_tokens, "candidatesTokenCount": out, "totalTokenCount": input_tokens + out + thinking_tokens}
    if cached_tokens:
        usage["cachedContentTokenCount"] = cached_tokens
    if thinking_tokens:
        usage["thoughtsTokenCount"] = thinking_tokens
    body: dict[str, Any] = {
        "candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": finish_reason, "index": 0}],
        "usageMetadata": usage,
    }
    if model_version:
        body["modelVersion"] = model_version
    return FakeReply(200, body)


def json_reply(obj: Any, **kw) -> FakeReply:
    """A reply whose text is ``obj`` serialised as JSON (for ``response_schema`` calls)."""
    return text_reply(json.dumps(obj), **kw)


def blocked_reply(reason: str = "SAFETY") -> FakeReply:
    """HTTP 200 with no candidates and ``promptFeedback.blockReason`` (a blocked prompt)."""
    return FakeReply(200, {"promptFeedback": {"blockReason": reason}, "usageMetadata": {"promptTokenCount": 5, "totalTokenCount": 5}})


def error_reply(code: int, status: str, message: str, *, retry_delay: str | None = None, quota_id: str | None = None) -> FakeReply:
    """A ``google.rpc.Status`` error body; ``retry_delay`` adds ``RetryInfo``
    (e.g. ``"26s"``), ``quota_id`` a ``QuotaFailure`` violation (e.g.
    ``"GenerateRequestsPerDayPerProjectPerModel-FreeTier"``)."""
    details: list[dict] = []
    if quota_id:
        details.append({"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                        "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests", "quotaId": quota_id}]})
    if retry_delay:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay})
    err: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        err["details"] = details
    return FakeReply(code, {"error": err})


def spend_cap_reply(retry_delay: str | None = "600s") -> FakeReply:
    """A 429 from a spend cap (Gemini's per-10-minute spend limits): a
    ``QuotaFailure`` whose quota id names spend, with ``RetryInfo``. The exact
    quota id is designsim's stand-in: Google does not publish it (read 2026-12-01)."""
    return error_reply(429, "RESOURCE_EXHAUSTED", "Spend cap reached for the current 10-minute window.",
                       retry_delay=retry_delay, quota_id="GenerateContentSpendPer10MinutesPerProject")


def not_found_reply(model: str, version: str = "v1") -> FakeReply:
    """Gemini's 404 for a model id it does not serve (the message as the API words it)."""
    return error_reply(404, "NOT_FOUND", f"models/{model} is not found for API version {version}, or is not supported for "
                       "generateContent. Call ListModels to see the list of available models and their supported methods.")


#: The access token the fake's OAuth token endpoint (``POST /token``) hands out.
FAKE_ACCESS_TOKEN = "fake-adc-access-token"


def offline_adc_file(path: "str | os.PathLike[str]", server: "FakeGeminiServer", *, project: str = "designsim-test") -> str:
    """Write a service-account credentials file for Application Default Credentials
    (``GOOGLE_APPLICATION_CREDENTIALS``) whose ``token_uri`` is ``server``'s
    ``/token``: google-auth's own token exchange then runs offline and every
    Vertex AI request carries ``Bearer`` :data:`FAKE_ACCESS_TOKEN`. The RSA key is
    generated on the spot (``cryptography``, a dependency of google-auth) and
    is good for nothing else. Returns the path."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    info = {"type": "service_account", "project_id": project, "private_key_id": "fake", "private_key": pem,
            "client_email": f"designsim@{project}.iam.gserviceaccount.com", "client_id": "0", "token_uri": server.url + "/token"}
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(info, fh)
    return str(path)


def count_by_chars(req: "FakeRequest") -> int:
    """The fake's default ``countTokens``: about four characters per token."""
    text = req.prompt + req.system
    return max(1, (len(text) + 3) // 4)


Handler = Callable[[FakeRequest], "FakeReply | str | dict"]
Route = Callable[[FakeRequest, "re.Match[str]"], FakeReply]
#: The SDK's endpoint variables the server points at itself inside ``with``.
_ENV_VARS = ("GOOGLE_GEMINI_BASE_URL", "GOOGLE_VERTEX_BASE_URL")


class FakeGeminiServer:
    """A threaded HTTP server on 127.0.0.1 speaking enough of Gemini's REST API.

    ``handler`` decides each ``generateContent`` reply (a :class:`FakeReply`, or a
    ``str`` for a plain text reply, or a ``dict`` for a JSON reply).
    ``latency_s`` is added to every reply (seconds). ``routes`` maps extra path
    regexes to functions, e.g. for Batch Mode endpoints. ``models``, when given,
    is the set of model ids served: any other gets Gemini's 404 NOT_FOUND.
    ``count_tokens`` decides ``countTokens`` answers (default
    :func:`count_by_chars`). All requests are kept in :attr:`requests`
    (thread-safe append). Use as a context manager: it sets
    ``GOOGLE_GEMINI_BASE_URL`` and ``GOOGLE_VERTEX_BASE_URL`` for the block and
    restores them after.
    """

    def __init__(self, handler: Handler | None = None, *, latency_s: float = 0.0, routes: dict[str, Route] | None = None,
                 models: set[str] | frozenset[str] | None = None, count_tokens: Callable[[FakeRequest], int] | None = None):
        self.handler = handler or (lambda req: text_reply(f"echo: {req.prompt}"))
        self.models = set(models) if models is not None else None
        self.count_tokens = count_tokens or count_by_chars
        self.latency_s = latency_s
        self.routes = [(re.compile(k), v) for k, v in (routes or {}).items()]
        self.requests: list[FakeRequest] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._saved_env: dict[str, str | None] = {}

    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> "FakeGeminiServer":
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                # headers and body go out in two writes; without TCP_NODELAY, Nagle's
                # algorithm meets the client's delayed ACK and each reply stalls ~40 ms
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _serve(self):
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    body = {"_raw": raw.decode("utf-8", "replace")}
                req = FakeRequest(self.command, self.path.split("?")[0], dict(self.headers), body, time.monotonic())
                reply = fake._dispatch(req)
                time.sleep(fake.latency_s + reply.delay_s)
                req.finished = time.monotonic()
                with fake._lock:
                    fake.requests.append(req)
                if reply.drop:
                    self.close_connection = True
                    self.connection.close()
                    return
                data = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("content-type", "application/json; charset=UTF-8")
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
                    self.close_connection = True

            do_POST = do_GET = do_DELETE = do_PATCH = _serve

            def log_message(self, *args):  # keep test output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def _dispatch(self, req: FakeRequest) -> FakeReply:
        for pattern, route in self.routes:
            match = pattern.search(req.path)
            if match:
                return route(req, match)
        if req.path == "/token" and req.method == "POST":  # OAuth token exchange (see offline_adc_file)
            return FakeReply(200, {"access_token": FAKE_ACCESS_TOKEN, "expires_in": 3600, "token_type": "Bearer"})
        match = _GENERATE.match(req.path) or _COUNT.match(req.path)
        if not match:
            return error_reply(404, "NOT_FOUND", f"fake Gemini has no route {req.method} {req.path}")
        req.model = match.group("model")
        req.project, req.location = match.group("project") or "", match.group("location") or ""
        if self.models is not None and req.model not in self.models:
            return not_found_reply(req.model, match.group("version"))
        if match.re is _COUNT:
            return FakeReply(200, {"totalTokens": int(self.count_tokens(req))})
        try:
            reply = self.handler(req)
        except Exception as exc:  # a bug in a test handler should be loud, not a hang
            return error_reply(500, "INTERNAL", f"fake handler raised {exc!r}")
        if isinstance(reply, str):
            reply = text_reply(reply)
        elif isinstance(reply, dict):
            reply = json_reply(reply)
        if reply.status == 200 and "candidates" in reply.body and "modelVersion" not in reply.body:
            reply = FakeReply(reply.status, {**reply.body, "modelVersion": req.model}, reply.delay_s, reply.drop)
        return reply

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeGeminiServer":
        self.start()
        for name in _ENV_VARS:
            self._saved_env[name] = os.environ.get(name)
            os.environ[name] = self.url
        return self

    def __exit__(self, *exc) -> None:
        for name in _ENV_VARS:
            saved = self._saved_env.get(name)
            if saved is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = saved
        self.stop()

    def generate_requests(self) -> list[FakeRequest]:
        """Only the ``generateContent`` requests, in arrival order."""
        return [r for r in self.requests if _GENERATE.match(r.path)]

    def count_requests(self) -> list[FakeRequest]:
        """Only the ``countTokens`` requests, in arrival order."""
        return [r for r in self.requests if _COUNT.match(r.path)]
