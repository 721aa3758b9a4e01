"""Settings of the storage plugin (``[plugins.storage]`` / ``TD_PLUGINS__STORAGE__<FIELD>``).

The backend itself is chosen by the kernel-level ``TD_STORAGE_URL``: ``file:///path`` or
``s3://ACCESS_KEY:SECRET_KEY@host[:port]/bucket[/prefix]?region=…&secure=true|false``. The fields
below tune it; the ``s3_*`` ones override what the URL says.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

MIB = 1024 * 1024


class StorageSettings(BaseModel):
    """Upload limits, S3 connection details, presigned-URL lifetime and backup tooling."""

    model_config = ConfigDict(extra="forbid")

    max_upload_bytes: int = Field(256 * MIB, ge=1, description="Largest attachment accepted (413 above)")
    presign_expiry_seconds: int = Field(900, ge=1, le=7 * 86400, description="Lifetime of presigned download URLs")
    s3_region: str | None = Field(None, description="Region (default: the URL's ?region=, else us-east-1)")
    s3_access_key: SecretStr | None = Field(None, description="Access key (default: the URL's user)")
    s3_secret_key: SecretStr | None = Field(None, description="Secret key (default: the URL's password)")
    s3_secure: bool | None = Field(None, description="Use HTTPS (default: the URL's ?secure=, else true)")
    s3_verify_tls: bool = Field(True, description="Verify the endpoint's TLS certificate")
    s3_ca_file: Path | None = Field(None, description="CA bundle for a private endpoint certificate (PEM)")
    s3_create_bucket: bool = Field(True, description="Create the bucket at start-up when it is missing")
    s3_part_size_bytes: int = Field(
        5 * MIB,
        ge=5 * MIB,
        le=512 * MIB,
        description="Multipart part size; about three parts are held in memory per upload",
    )
    s3_public_url: str | None = Field(
        None, description="Endpoint browsers reach (e.g. https://files.example.com), used to sign download URLs"
    )
    pg_bin_dir: Path | None = Field(None, description="Folder holding pg_dump/pg_restore (default: found on PATH)")
