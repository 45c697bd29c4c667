"""A small async client for OpenAI-compatible endpoints, with bounded retries.

Retries (exponential backoff with jitter) on 429, 5xx, timeouts, connection errors and answers
that are not the JSON the API promises; everything else fails at once. The API key comes from
the environment variable the Model names and is sent only in the Authorization header: it never
appears in an error message, a record or a log.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

import httpx

from evalhub.core.errors import UnitError
from evalhub.core.spec.model import Endpoint

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # the first try and three retries
    backoff: float = 0.5  # seconds before the first retry; doubles each time
    max_backoff: float = 8.0


class OpenAIClient:
    def __init__(
        self,
        endpoint: Endpoint,
        api_key: str | None,
        timeout: float,
        retry: RetryPolicy = RetryPolicy(),
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.endpoint = endpoint
        self.retry = retry
        self.requests = 0  # HTTP requests sent, retries included
        self._client = httpx.AsyncClient(
            base_url=endpoint.url.rstrip("/") + "/",
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
        )

    async def __aenter__(self) -> OpenAIClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    async def generate(self, prompt: str, system: str | None, options: dict[str, Any]) -> str:
        """One answer, through the endpoint's API flavour (chat or completions)."""
        body: dict[str, Any] = {"model": self.endpoint.served_name, **options}
        if self.endpoint.api == "chat":
            messages = [{"role": "system", "content": system}] if system else []
            messages.append({"role": "user", "content": prompt})
            data = await self.post("chat/completions", {**body, "messages": messages})
            return str(_choice(data)["message"]["content"] or "")
        full = f"{system}\n\n{prompt}" if system else prompt
        data = await self.post("completions", {**body, "prompt": full})
        return str(_choice(data)["text"] or "")

    async def models(self) -> Any:
        """The endpoint's /models answer (recorded with each unit as provenance)."""
        response = await self._client.get("models")
        response.raise_for_status()
        return response.json()

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        last = ""
        for attempt in range(self.retry.attempts):
            if attempt:
                delay = min(self.retry.max_backoff, self.retry.backoff * 2 ** (attempt - 1))
                await asyncio.sleep(delay * (0.5 + random.random() / 2))
            self.requests += 1
            try:
                response = await self._client.post(path, json=body)
            except httpx.TimeoutException:
                last = "timed out"
                continue
            except httpx.TransportError as exc:
                last = f"cannot connect ({type(exc).__name__})"
                continue
            if response.status_code in RETRY_STATUS:
                last = f"HTTP {response.status_code}"
                continue
            if response.status_code >= 400:
                raise UnitError(
                    f"{self.endpoint.url}/{path} answered HTTP {response.status_code}: "
                    f"{response.text[:200]}",
                    "check the Model's endpoint, served_name and api",
                )
            try:
                data = response.json()
                _choice(data)
            except (ValueError, KeyError, IndexError, TypeError):
                last = f"answered something that is not an OpenAI {path} response"
                continue
            return dict(data)
        raise UnitError(
            f"model endpoint {self.endpoint.url} failed after "
            f"{self.retry.attempts} attempts: {last}",
            "is the model server running and healthy?",
        )


def _choice(data: Any) -> dict[str, Any]:
    choice = data["choices"][0]
    if not isinstance(choice, dict):
        raise TypeError("choice is not an object")
    return choice


def fetch_models(endpoint: Endpoint, api_key: str | None, timeout: float = 5.0) -> Any:
    """The endpoint's /models answer, recorded with each unit as provenance; an error is
    recorded as such (the units themselves decide whether the endpoint works)."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = httpx.get(endpoint.url.rstrip("/") + "/models", headers=headers, timeout=timeout)
        response.raise_for_status()
        return response.json()
    except (httpx.HTTPError, ValueError) as exc:
        return {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
