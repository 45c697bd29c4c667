"""One redactor for every string evalhub writes or prints that may hold outside text.

An endpoint that repeats the Authorization header in its 401 body, a framework that logs its
configuration, an adapter that prints its environment: their text reaches MLflow tags and
artifacts, result.json, run-unit.log and the console. Whoever writes such text passes it
through a Redactor built from the secret values in play (evalhub.core.secrets), which masks
each value in the forms it travels in:

- verbatim (also inside `Bearer <value>`, a URL, a longer line);
- JSON- and URL-encoded (a PEM key's newlines become `\\n` in result.json);
- base64 (an HTTP basic-auth header, a dumped config);
- each long line of a multi-line secret (a PEM body quoted line by line);
- a long enough beginning of the value followed by the rest of its token: error messages are
  cut at a length, and a cut key is still a key.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable

MASK = "{redacted}"  # not [..] (console markup) nor <..> (markdown, HTML)
LINE = 16  # a line of a multi-line secret this long is masked on its own
PREFIX = 12  # a value's first characters that, followed by token characters, are masked
_TOKEN = r"[A-Za-z0-9_\-+/=.~%]*"


_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _percent(secret: str, space: str) -> str:
    """URL (percent) encoding, RFC 3986; `space` is how a space is written ("%20" or "+")."""
    return "".join(
        chr(b) if b in _UNRESERVED else space if b == 0x20 else f"%{b:02X}" for b in secret.encode()
    )


def _forms(secret: str) -> set[str]:
    forms = {secret, json.dumps(secret)[1:-1], _percent(secret, "%20"), _percent(secret, "+")}
    forms.add(base64.b64encode(secret.encode()).decode().rstrip("="))
    forms.update(line.strip() for line in secret.splitlines() if len(line.strip()) >= LINE)
    return {form for form in forms if form}


class Redactor:
    """Masks the given secret values in text and bytes. Pure: built from values, not from the
    environment; an empty redactor returns its input unchanged."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = frozenset(s for s in secrets if s)
        forms = set().union(*(_forms(s) for s in self.secrets)) if self.secrets else set()
        alternatives = [re.escape(f) for f in sorted(forms, key=len, reverse=True)]
        alternatives += [
            re.escape(s[:PREFIX]) + _TOKEN for s in self.secrets if len(s) >= 2 * PREFIX
        ]
        source = "|".join(alternatives)
        self._text = re.compile(source) if source else None
        self._bytes = re.compile(source.encode()) if source else None

    def __bool__(self) -> bool:
        return bool(self.secrets)

    def __or__(self, other: Redactor) -> Redactor:
        return Redactor(self.secrets | other.secrets)

    def text(self, value: str) -> str:
        return self._text.sub(MASK, value) if self._text else value

    def optional(self, value: str | None) -> str | None:
        return None if value is None else self.text(value)

    def bytes(self, value: bytes) -> bytes:
        return self._bytes.sub(MASK.encode(), value) if self._bytes else value
