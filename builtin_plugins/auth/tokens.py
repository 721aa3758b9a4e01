"""Credentials: access JWTs, rotating refresh tokens and ``td_`` API tokens.

Every key is derived from the deployment's secret key, so all instances of one deployment verify each
other's tokens without sharing anything else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey, OKPKey
from joserfc.jwt import JWTClaimsRegistry

ISSUER = "taylordash"
AUDIENCE = "taylordash-api"
API_TOKEN_PREFIX = "td_"  # noqa: S105 - a prefix, not a secret
REFRESH_PREFIX = "tdr_"
# JWS names: EdDSA with Ed25519 is the fully-specified "Ed25519" (RFC 9864).
JWS_ALGORITHMS = {"HS256": "HS256", "EdDSA": "Ed25519"}


def derive(secret: bytes, purpose: str) -> bytes:
    """A 32-byte key for one ``purpose``, derived from the deployment secret."""
    return hmac.new(secret, f"taylordash/auth/{purpose}".encode(), hashlib.sha256).digest()


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class InvalidToken(Exception):
    """A credential that is malformed, forged, expired or of the wrong kind."""


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """What a verified access JWT says."""

    user_id: str
    session_id: str
    expires_at: float


class AccessTokens:
    """Issues and verifies access JWTs; verified tokens are remembered until they expire."""

    def __init__(self, secret: bytes, algorithm: str, lifetime: int, cache_size: int = 50_000) -> None:
        self.algorithm = JWS_ALGORITHMS[algorithm]
        self.lifetime = lifetime
        if self.algorithm == "HS256":
            self.key: OctKey | OKPKey = OctKey.import_key(derive(secret, "access-token/hs256"))
        else:
            private = Ed25519PrivateKey.from_private_bytes(derive(secret, "access-token/ed25519"))
            pem = private.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            self.key = OKPKey.import_key(pem)
        self.kid = hashlib.sha256(repr(self.key.as_dict(private=False)).encode()).hexdigest()[:16]
        self.claims = JWTClaimsRegistry(
            leeway=5,
            iss={"essential": True, "value": ISSUER},
            aud={"essential": True, "value": AUDIENCE},
            sub={"essential": True},
            sid={"essential": True},
            exp={"essential": True},
        )
        self._verified: dict[str, AccessClaims] = {}
        self._cache_size = cache_size

    def issue(self, user_id: str, session_id: str) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": user_id,
            "sid": session_id,
            "iat": now,
            "nbf": now,
            "exp": now + self.lifetime,
            "jti": uuid.uuid4().hex,
        }
        header = {"alg": self.algorithm, "typ": "at+jwt", "kid": self.kid}
        return jwt.encode(header, claims, self.key, algorithms=[self.algorithm])

    def verify(self, token: str) -> AccessClaims:
        """The claims of a genuine, unexpired access token, else :class:`InvalidToken`."""
        known = self._verified.get(token)
        if known is not None:
            if known.expires_at > time.time():
                return known
            self._verified.pop(token, None)
            raise InvalidToken("the access token has expired")
        if len(token) > 4096:
            raise InvalidToken("the access token is too long")
        try:
            decoded = jwt.decode(token, self.key, algorithms=[self.algorithm])
            self.claims.validate(decoded.claims)
        except (JoseError, ValueError, TypeError) as exc:
            raise InvalidToken(f"invalid access token ({type(exc).__name__})") from None
        payload = decoded.claims
        if decoded.header.get("typ") != "at+jwt" or not isinstance(payload.get("exp"), int | float):
            raise InvalidToken("not an access token")
        claims = AccessClaims(str(payload["sub"]), str(payload["sid"]), float(payload["exp"]))
        if len(self._verified) >= self._cache_size:
            self._verified.clear()
        self._verified[token] = claims
        return claims

    def forget(self) -> None:
        self._verified.clear()


class RefreshTokens:
    """Refresh tokens ``tdr_<session>_<generation>_<mac>``. Nothing secret is stored: the MAC over the
    session id, the generation and the session's random salt proves a token genuine, and a genuine
    token of an earlier generation proves reuse."""

    def __init__(self, secret: bytes) -> None:
        self._key = derive(secret, "refresh-token")

    def _mac(self, session_id: uuid.UUID, generation: int, salt: str) -> str:
        message = f"{session_id.hex}:{generation}:{salt}".encode()
        return _b64(hmac.new(self._key, message, hashlib.sha256).digest())

    def issue(self, session_id: uuid.UUID, generation: int, salt: str) -> str:
        return f"{REFRESH_PREFIX}{session_id.hex}_{generation}_{self._mac(session_id, generation, salt)}"

    @staticmethod
    def parse(token: str) -> tuple[uuid.UUID, int, str]:
        """``(session_id, generation, mac)`` of a well-formed token, else :class:`InvalidToken`."""
        if not token.startswith(REFRESH_PREFIX) or len(token) > 200:
            raise InvalidToken("not a refresh token")
        parts = token[len(REFRESH_PREFIX) :].split("_", 2)
        if len(parts) != 3 or not parts[1].isdigit() or len(parts[1]) > 9:
            raise InvalidToken("malformed refresh token")
        try:
            session_id = uuid.UUID(hex=parts[0])
        except ValueError:
            raise InvalidToken("malformed refresh token") from None
        return session_id, int(parts[1]), parts[2]

    def genuine(self, session_id: uuid.UUID, generation: int, salt: str, mac: str) -> bool:
        return hmac.compare_digest(self._mac(session_id, generation, salt), mac)


def new_salt() -> str:
    return secrets.token_hex(16)


def new_api_token() -> tuple[str, str, str]:
    """``(token, sha256, display prefix)`` of a fresh API token."""
    token = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, sha256_hex(token), token[: len(API_TOKEN_PREFIX) + 6]


def looks_like_jwt(credential: str) -> bool:
    return credential.count(".") == 2 and credential.startswith("eyJ")
