"""Optional fact extraction through any OpenAI-compatible chat-completions endpoint."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx

SYSTEM_PROMPT = (
    "Extract the atomic facts stated in the user's note. Answer with a JSON array of short strings "
    "and nothing else."
)


class LlmError(Exception):
    """The endpoint failed, timed out or answered something that is not a list of facts."""


class FactExtractor:
    """Calls ``POST {base_url}/chat/completions`` and parses a JSON list of facts from the reply."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str = "gpt-4o-mini",
        timeout: float = 5.0,
        api_key: str | None = None,
        on_duration: Callable[[float, bool], None] | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout, headers=headers)
        self._model = model
        self._on_duration = on_duration

    async def extract(self, text: str) -> list[str]:
        body = {
            "model": self._model,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": text},
            ],
        }
        start = time.perf_counter()
        ok = False
        try:
            resp = await self._client.post("/chat/completions", json=body)
            resp.raise_for_status()
            content = resp.json()["choices"][0]["message"]["content"]
            facts = _parse_facts(content)
            ok = True
            return facts
        except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as exc:
            raise LlmError(f"fact extraction failed: {type(exc).__name__}: {exc}") from exc
        finally:
            if self._on_duration is not None:
                self._on_duration(time.perf_counter() - start, ok)

    async def aclose(self) -> None:
        await self._client.aclose()


def _parse_facts(content: str) -> list[str]:
    text = content.strip()
    if text.startswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    try:
        data = json.loads(text)
    except ValueError:
        # Models that ignore the format still tend to answer one fact per line.
        return [ln.strip("-• ").strip() for ln in text.splitlines() if ln.strip("-• ").strip()]
    if not isinstance(data, list):
        raise ValueError("the model's answer is not a JSON list")
    return [str(x) for x in data]
