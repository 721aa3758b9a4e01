"""Settings of the sandbox (``[plugins.sandbox]`` / ``TD_PLUGINS__SANDBOX__<FIELD>``)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from sandbox.runner.limits import Limits


class SandboxSettings(BaseModel):
    """Limits every sandbox worker runs under, and how the kernel looks after workers."""

    memory_mb: int = Field(256, ge=64, le=65536, description="Address-space limit of a worker")
    cpu_seconds_per_call: float = Field(5.0, gt=0, le=600, description="CPU time one call may use")
    call_timeout: float = Field(10.0, gt=0, le=600, description="Wall-clock seconds before a call's worker is killed")
    max_output_bytes: int = Field(1024 * 1024, ge=1024, description="Largest result or printed output of a call")
    open_files: int = Field(16, ge=8, le=1024, description="RLIMIT_NOFILE of a worker")
    recursion: int = Field(400, ge=50, le=5000, description="Frames plugin code may stack")
    regex_seconds: float = Field(1.0, gt=0, le=60, description="Time one regular-expression operation may take")
    restart_backoff_cap: float = Field(30.0, gt=0, description="Longest wait before restarting a crashed worker")
    access_flush_seconds: float = Field(1.0, gt=0, description="How often api call tallies are written")

    def limits(self) -> Limits:
        return Limits(
            memory_mb=self.memory_mb,
            cpu_seconds_per_call=self.cpu_seconds_per_call,
            call_timeout=self.call_timeout,
            max_output_bytes=self.max_output_bytes,
            open_files=self.open_files,
            recursion=self.recursion,
            regex_seconds=self.regex_seconds,
        )
