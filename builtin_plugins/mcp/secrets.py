"""Server env and headers at rest: one Fernet token per map, under a key derived from a setting.

Every value of ``env`` and ``headers`` is treated as a secret: API keys travel there. Outputs show the
names with :data:`MASK` in place of each value; only an explicit export by an administrator reveals them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping

from cryptography.fernet import Fernet, InvalidToken

MASK = "********"
PURPOSE = b"taylordash/mcp/secrets"


class SecretsUnreadable(Exception):
    """A stored secret cannot be decrypted: the key material changed since it was written."""


class SecretBox:
    """Encrypts and decrypts ``{name: value}`` maps."""

    def __init__(self, material: bytes) -> None:
        key = hmac.new(material, PURPOSE, hashlib.sha256).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal(self, values: Mapping[str, str] | None) -> str | None:
        if not values:
            return None
        return self._fernet.encrypt(json.dumps(dict(values), sort_keys=True).encode()).decode()

    def open(self, token: str | None) -> dict[str, str]:
        if not token:
            return {}
        try:
            return json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken:
            raise SecretsUnreadable("stored secrets cannot be decrypted with the configured key") from None


def masked(values: Mapping[str, str] | None) -> dict[str, str]:
    """``values`` with every value replaced by :data:`MASK`."""
    return {name: MASK for name in values or {}}


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of a secret value (4 characters or longer) replaced by the mask."""
    for secret in secrets:
        if len(secret) >= 4 and secret in text:
            text = text.replace(secret, MASK)
    return text
