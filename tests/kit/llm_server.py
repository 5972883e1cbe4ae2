"""Test kit: a loopback HTTP server that speaks the LLM wire formats our providers use.

OpenAI chat completions (`/v1/chat/completions`, also Ollama's and OpenRouter's), Anthropic
messages (`/v1/messages`) and Gemini generateContent (`/v1beta/models/<model>:generateContent`).
Answers come from `answer(prompt)`; every request is recorded (path, headers, body, time); queued
`faults` are served first, one per request: an HTTP status with headers, or a hang.
"""

from __future__ import annotations

import http.server
import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional


@dataclass
class Fault:
    status: int = 0                 # an HTTP error status to answer with
    headers: dict = field(default_factory=dict)
    body: str = '{"error": {"message": "injected fault"}}'
    hang: float = 0.0               # seconds to wait before answering normally (or failing)


@dataclass
class Request:
    path: str
    headers: dict
    body: dict
    at: float


def _tokens(text: str) -> int:
    return len(text.split())


class LLMServer:
    def __init__(self, answer: Callable[[str], str], key: Optional[str] = None):
        self.answer, self.key = answer, key
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self.usage = {"input": 0, "output": 0}
        self._lock = threading.Lock()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                owner._handle(self)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.root = f"http://127.0.0.1:{self.httpd.server_port}"

    def __enter__(self) -> "LLMServer":
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- one request ------------------------------------------------------------------------
    def _send(self, handler, status: int, payload: str, headers: Optional[dict] = None) -> None:
        data = payload.encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        try:
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)

    def _handle(self, handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = json.loads(handler.rfile.read(length) or b"{}")
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self._lock:
            self.requests.append(Request(handler.path, headers, body, time.monotonic()))
            fault = self.faults.pop(0) if self.faults else None
        if fault and fault.hang:
            time.sleep(fault.hang)
        if fault and fault.status:
            return self._send(handler, fault.status, fault.body, fault.headers)
        path = handler.path
        if path.endswith("/chat/completions"):
            key = (headers.get("authorization") or "").removeprefix("Bearer ")
            prompt = body["messages"][-1]["content"]
        elif path.endswith("/v1/messages"):
            key, prompt = headers.get("x-api-key"), body["messages"][-1]["content"]
        elif re.search(r"/v1beta/models/[^/]+:generateContent$", path):
            key, prompt = headers.get("x-goog-api-key"), body["contents"][-1]["parts"][0]["text"]
        else:
            return self._send(handler, 404, '{"error": "no such route"}')
        if self.key is not None and key != self.key:
            return self._send(handler, 401, '{"error": {"message": "invalid x-api-key"}}')
        text = self.answer(prompt)
        used_in, used_out = _tokens(prompt), _tokens(text)
        with self._lock:
            self.usage["input"] += used_in
            self.usage["output"] += used_out
        if path.endswith("/chat/completions"):
            reply = {"id": "x", "object": "chat.completion", "model": body.get("model"),
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                  "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": used_in, "completion_tokens": used_out,
                               "total_tokens": used_in + used_out}}
        elif path.endswith("/v1/messages"):
            reply = {"id": "x", "type": "message", "role": "assistant", "model": body.get("model"),
                     "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
                     "usage": {"input_tokens": used_in, "output_tokens": used_out}}
        else:
            reply = {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}],
                     "usageMetadata": {"promptTokenCount": used_in, "candidatesTokenCount": used_out,
                                       "totalTokenCount": used_in + used_out}}
        self._send(handler, 200, json.dumps(reply))


#: How each provider name reaches the server: (env for the base URL, the URL's suffix, key variable).
ROUTES = {
    "openai": ("OPENAI_BASE_URL", "/v1", "OPENAI_API_KEY"),
    "openrouter": ("OPENROUTER_BASE_URL", "/v1", "OPENROUTER_API_KEY"),
    "ollama": ("OLLAMA_BASE_URL", "", None),
    "openai-compatible": ("SPECHESTRA_BASE_URL", "/v1", "SPECHESTRA_API_KEY"),
    "anthropic": ("ANTHROPIC_BASE_URL", "", "ANTHROPIC_API_KEY"),
    "gemini": ("GEMINI_BASE_URL", "", "GEMINI_API_KEY"),
}


def provider_env(name: str, server: LLMServer, key: str = "sk-loopback-test") -> dict:
    """Environment that points provider `name` at `server` (and gives it `key`)."""
    url_var, suffix, key_var = ROUTES[name]
    env = {"SPECHESTRA_PROVIDER": name, url_var: server.root + suffix}
    if key_var:
        env[key_var] = key
    if name == "openai-compatible":
        env["SPECSOLOIST_LLM_MODEL"] = "local-model"  # such servers serve the model they were started with
    return env
