"""The three wire formats real LLM services speak, as plain data: what to send, what came back.

OpenAI chat completions (OpenAI, OpenRouter, Ollama's `/v1`, vLLM, LM Studio, llama.cpp's
server), Anthropic messages, and Gemini generateContent. Each `request` returns (path, headers,
body); each `answer` returns (text, input tokens, output tokens) from the decoded JSON reply.
"""

from __future__ import annotations

from typing import Optional

from ..errors import ProviderError

ANTHROPIC_VERSION = "2023-06-01"
MAX_OUTPUT_TOKENS = 8192  # Anthropic requires a cap; SpecSoloist's own provider uses the same


class WireError(ProviderError, ValueError):
    """A reply that does not have the shape its format promises."""


def openai_request(model: str, prompt: str, temperature: float, key: Optional[str]) -> tuple[str, dict, dict]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return "/chat/completions", headers, {"model": model, "temperature": temperature,
                                          "messages": [{"role": "user", "content": prompt}]}


def openai_answer(reply: dict) -> tuple[str, int, int]:
    try:
        text = reply["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise WireError("no choices[0].message.content in the reply") from None
    usage = reply.get("usage") or {}
    return text or "", int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)


def anthropic_request(model: str, prompt: str, temperature: float, key: Optional[str]) -> tuple[str, dict, dict]:
    headers = {"x-api-key": key or "", "anthropic-version": ANTHROPIC_VERSION}
    return "/v1/messages", headers, {"model": model, "max_tokens": MAX_OUTPUT_TOKENS, "temperature": temperature,
                                     "messages": [{"role": "user", "content": prompt}]}


def anthropic_answer(reply: dict) -> tuple[str, int, int]:
    blocks = reply.get("content")
    if not isinstance(blocks, list):
        raise WireError("no content list in the reply")
    usage = reply.get("usage") or {}
    text = "".join(b.get("text", "") for b in blocks if isinstance(b, dict) and b.get("type") == "text")
    return text, int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)


def gemini_request(model: str, prompt: str, temperature: float, key: Optional[str]) -> tuple[str, dict, dict]:
    # The key goes in a header, never in the URL (a URL ends up in error messages and logs).
    return f"/v1beta/models/{model}:generateContent", {"x-goog-api-key": key or ""}, {
        "contents": [{"role": "user", "parts": [{"text": prompt}]}],
        "generationConfig": {"temperature": temperature}}


def gemini_answer(reply: dict) -> tuple[str, int, int]:
    try:
        parts = reply["candidates"][0]["content"]["parts"]
    except (KeyError, IndexError, TypeError):
        raise WireError("no candidates[0].content.parts in the reply") from None
    usage = reply.get("usageMetadata") or {}
    text = "".join(p.get("text", "") for p in parts if isinstance(p, dict))
    return text, int(usage.get("promptTokenCount") or 0), int(usage.get("candidatesTokenCount") or 0)


FORMATS = {
    "openai": (openai_request, openai_answer),
    "anthropic": (anthropic_request, anthropic_answer),
    "gemini": (gemini_request, gemini_answer),
}
