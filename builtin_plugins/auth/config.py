"""Settings of the auth plugin (``[plugins.auth]`` or ``TD_PLUGINS__AUTH__<FIELD>``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator

DEFAULT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)


class AuthSettings(BaseModel):
    """Tokens, password hashing, throttling, OIDC and response headers. Defaults are production-safe."""

    model_config = {"extra": "forbid"}

    jwt_algorithm: Literal["HS256", "EdDSA"] = Field(
        "HS256", description="Access-token signature: HS256, or EdDSA (Ed25519) derived from the secret key"
    )
    access_token_seconds: int = Field(900, ge=30, le=3600, description="Lifetime of an access JWT")
    refresh_token_seconds: int = Field(7 * 86400, ge=300, description="A session ends when not refreshed for this long")
    session_max_seconds: int = Field(30 * 86400, ge=300, description="Absolute lifetime of a session")
    cache_seconds: float = Field(
        30.0, ge=0, le=300, description="Longest time an instance trusts a cached session or API token"
    )
    cache_max_entries: int = Field(50_000, ge=100)
    revocation_wait_seconds: float = Field(
        2.0, ge=0, le=30, description="How long a revocation waits for the bus to confirm fan-out"
    )

    argon2_time_cost: int = Field(3, ge=1, le=20)
    argon2_memory_kib: int = Field(65_536, ge=8, le=4_194_304)
    argon2_parallelism: int = Field(4, ge=1, le=64)
    password_min_length: int = Field(12, ge=12, le=128)

    api_token_default_days: int = Field(90, ge=1, le=3650)
    api_token_max_days: int = Field(365, ge=1, le=3650)

    throttle_user_failures: int = Field(5, ge=1, description="Failed logins per username before lockout")
    throttle_ip_failures: int = Field(20, ge=1, description="Failed logins per client address before lockout")
    throttle_window_seconds: int = Field(900, ge=1, description="Failures older than this are forgotten")
    throttle_base_seconds: float = Field(1.0, gt=0, description="First lockout; doubles with each failure")
    throttle_max_seconds: float = Field(900.0, gt=0, description="Longest lockout")

    oidc_issuer: str | None = Field(None, description="OpenID Provider issuer URL; enables OIDC login")
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_scopes: str = "openid profile email"
    oidc_redirect_url: str | None = Field(None, description="Public callback URL; default: derived from the request")
    oidc_username_claim: str = "preferred_username"
    oidc_link_by_username: bool = Field(True, description="Bind a first OIDC login to the local user of the same name")
    oidc_auto_create: bool = Field(False, description="Create unknown OIDC users with oidc_default_role")
    oidc_default_role: Literal["admin", "viewer"] = "viewer"

    content_security_policy: str = DEFAULT_CSP
    referrer_policy: str = "no-referrer"
    hsts_seconds: int = Field(31_536_000, ge=0, description="Strict-Transport-Security on HTTPS; 0 disables it")

    @model_validator(mode="after")
    def _consistent(self) -> AuthSettings:
        if self.oidc_issuer and not self.oidc_client_id:
            raise ValueError("oidc_client_id is required when oidc_issuer is set")
        if self.api_token_default_days > self.api_token_max_days:
            raise ValueError("api_token_default_days exceeds api_token_max_days")
        if self.argon2_memory_kib < 8 * self.argon2_parallelism:
            raise ValueError("argon2_memory_kib must be at least 8 * argon2_parallelism")
        return self

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id)
