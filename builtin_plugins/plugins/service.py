"""The plugin registry: upload, scan, lifecycle, configuration and violations of third-party plugins,
plus enable/disable of the builtin and entry-point plugins the kernel discovered (which take effect
at the next start, through the kernel's ``plugin_state`` table)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from sqlmodel import col, delete, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from builtin_plugins.plugins.config import RegistrySettings
from builtin_plugins.plugins.lifecycle import check_transition, record
from builtin_plugins.plugins.models import (
    PluginApiAccess,
    PluginConfiguration,
    PluginKV,
    PluginRow,
    PluginViolation,
    utcnow,
)
from builtin_plugins.plugins.states import PluginStates
from builtin_plugins.plugins.storage import PackageStore, safe_filename
from kernel.models import PluginState
from sandbox.scanner.errors import UnusableInput
from sandbox.scanner.pool import scan_async
from sdk import BadRequest, Conflict, NotFound, Principal, ProblemError, ValidationFailed


class UnusablePackage(ProblemError):
    status, slug, title = 422, "unusable-package", "Unusable Package"


class VerdictFail(Conflict):
    slug = "scan-failed"


class BuiltinPlugin(Conflict):
    slug = "builtin-plugin"


class RegistryService:
    """Everything the registry does, for the HTTP layer, the CLI and the sandbox runner
    (``kernel.services["plugins"]``)."""

    def __init__(self, kernel: Any, settings: RegistrySettings) -> None:
        self.kernel = kernel
        self.db = kernel.db
        self.settings = settings
        self.store = PackageStore(kernel.settings.data_dir, settings.max_upload_bytes)
        self.states = PluginStates(self._enabled_names, settings.state_cache_seconds)
        self.states.connect(getattr(kernel, "bus", None))
        self.states.watch(self._sandbox_follow)
        self._announcing: set[asyncio.Task[None]] = set()

    # -- reading --------------------------------------------------------------------------------
    async def _row(self, session: AsyncSession, name: str) -> PluginRow:
        row = (await session.exec(select(PluginRow).where(PluginRow.name == name))).first()
        if row is None or row.status == "removed":
            raise NotFound(f"no plugin named {name!r}", slug="plugin-not-found")
        return row

    async def rows(self, include_removed: bool = False) -> list[PluginRow]:
        async with self.db.session() as session:
            query = select(PluginRow).order_by(col(PluginRow.name))
            if not include_removed:
                query = query.where(PluginRow.status != "removed")
            return list((await session.exec(query)).all())

    async def get(self, name: str) -> PluginRow:
        async with self.db.session() as session:
            return await self._row(session, name)

    async def api_access(self, row: PluginRow) -> list[PluginApiAccess]:
        async with self.db.session() as session:
            query = select(PluginApiAccess).where(PluginApiAccess.plugin_id == row.id)
            return list((await session.exec(query.order_by(col(PluginApiAccess.permission)))).all())

    async def _enabled_names(self) -> set[str]:
        async with self.db.session() as session:
            query = select(PluginRow.name).where(PluginRow.status == "enabled")
            return set((await session.exec(query)).all())

    async def persisted_choices(self) -> dict[str, bool]:
        """The ``plugin_state`` of every plugin: name -> enabled."""
        async with self.db.session() as session:
            return {s.name: s.enabled for s in (await session.exec(select(PluginState))).all()}

    # -- upload and scan ------------------------------------------------------------------------
    async def _scan(self, path: Path) -> dict[str, Any]:
        try:
            report = await scan_async(path, self.settings.fail_on, self.settings.scan_timeout_seconds)
        except UnusableInput as exc:
            raise UnusablePackage(str(exc)) from None
        except TimeoutError:
            raise UnusablePackage(f"the scan took longer than {self.settings.scan_timeout_seconds}s") from None
        except RuntimeError as exc:
            raise UnusablePackage(str(exc)) from None
        return report

    async def install_upload(
        self, chunks: AsyncIterator[bytes], filename: str | None, principal: Principal
    ) -> PluginRow:
        """Quarantine an uploaded package as it arrives, scan it and register it with its verdict."""
        path, sha256, size = await self.store.save(chunks, safe_filename(filename))
        return await self._install(path, sha256, size, principal)

    async def install_file(self, path: Path, principal: Principal) -> PluginRow:
        """Quarantine the package at ``path`` (the command line), scan it and register it."""
        if not await asyncio.to_thread(path.is_file):
            raise BadRequest(f"{path}: no such file", slug="missing-file")
        stored, sha256, size = await self.store.save_path(path)
        return await self._install(stored, sha256, size, principal)

    async def _install(self, path: Path, sha256: str, size: int, principal: Principal) -> PluginRow:
        relative = self.store.relative(path)
        try:
            report = await self._scan(path)
            target = report["targets"][0]
            manifest = target.get("manifest")
            if manifest is None:
                problems = [f for f in target["findings"] if f["rule_id"] in ("TD201", "TD202")]
                raise UnusablePackage(
                    "the package has no valid taylordash-plugin.toml", slug="invalid-manifest", findings=problems
                )
            name = manifest["name"]
            if self._is_kernel_plugin(name):
                raise Conflict(f"{name!r} is the name of a builtin or installed plugin", slug="name-taken")
            async with self.db.session() as session:
                existing = (await session.exec(select(PluginRow).where(PluginRow.name == name))).first()
                if existing is not None and existing.status != "removed":
                    raise Conflict(
                        f"plugin {name!r} is already installed ({existing.status}); remove it first",
                        slug="already-installed",
                    )
                if existing is not None:
                    await session.delete(existing)
                    await session.flush()
                row = PluginRow(
                    name=name,
                    version=manifest["version"],
                    type=manifest["type"],
                    description=manifest["description"][:500],
                    author=manifest["author"][:200],
                    status="uploaded",
                    manifest=manifest,
                    filename=path.name,
                    package_path=relative,
                    package_sha256=sha256,
                    package_size=size,
                    uploaded_by=principal.id[:200],
                )
                session.add(row)
                await session.flush()
                await record(self.kernel, session, "uploaded", str(row.id), principal, self._payload(row, None))
                self._apply_scan(row, report)
                await record(self.kernel, session, "scanned", str(row.id), principal, self._payload(row, "uploaded"))
                for permission in manifest.get("permissions", []):
                    session.add(PluginApiAccess(plugin_id=row.id, permission=permission, granted=False))
                await self._set_state(session, name, enabled=False)
                await session.commit()
                return row
        except BaseException:
            await self.store.delete(relative)
            raise

    def _apply_scan(self, row: PluginRow, report: dict[str, Any]) -> None:
        row.scan_report = report
        row.verdict = report["verdict"]
        row.scanned_at = row.updated_at = utcnow()
        if row.status == "uploaded":
            row.status = "scanned"

    @staticmethod
    def _payload(row: PluginRow, previous: str | None, **extra: Any) -> dict[str, Any]:
        return {
            "name": row.name,
            "version": row.version,
            "from": previous,
            "to": row.status,
            "verdict": row.verdict,
            **extra,
        }

    async def _set_state(self, session: AsyncSession, name: str, *, enabled: bool) -> None:
        state = await session.get(PluginState, name)
        if state is None:
            state = PluginState(name=name, enabled=enabled)
        state.enabled = enabled
        state.updated_at = utcnow()
        session.add(state)

    async def _grant(self, session: AsyncSession, row: PluginRow, granted: bool) -> None:
        query = select(PluginApiAccess).where(PluginApiAccess.plugin_id == row.id)
        for access in (await session.exec(query)).all():
            access.granted = granted
            access.updated_at = utcnow()
            session.add(access)

    # -- lifecycle ------------------------------------------------------------------------------
    async def _builtin_choice(self, name: str, enabled: bool, principal: Principal) -> dict[str, Any]:
        async with self.db.session() as session:
            await self._set_state(session, name, enabled=enabled)
            action = "enabled" if enabled else "disabled"
            payload = {"name": name, "builtin": True, "to": action, "applies": "at the next start"}
            await record(self.kernel, session, action, name, principal, payload)
            await session.commit()
        await self.states.announce(name)
        return {"name": name, "enabled": enabled, "restart_required": True}

    def _is_kernel_plugin(self, name: str) -> bool:
        record = self.kernel.host.records.get(name)
        return record is not None and not getattr(record, "sandboxed", False)

    async def _sandbox_follow(self, name: str) -> None:
        """A watcher of :attr:`states`: tell this instance's sandbox (when it runs) that plugin
        ``name`` changed state on some instance, so that it starts or stops the worker here."""
        sandbox = self.kernel.services.get("sandbox")
        if sandbox is None:
            return
        async with self.db.session() as session:
            row = (await session.exec(select(PluginRow).where(PluginRow.name == name))).first()
        if row is not None:
            await sandbox.follow(row)

    def _announce_soon(self, name: str) -> None:
        task = asyncio.get_running_loop().create_task(self.states.announce(name))
        self._announcing.add(task)
        task.add_done_callback(self._announcing.discard)

    async def enable(self, name: str, principal: Principal, override_reason: str | None = None) -> Any:
        """Enable ``name``. Refused (409 ``scan-failed``) while its verdict is fail or it is quarantined,
        unless ``override_reason`` is given: the override and its reason are stored and audited."""
        if self._is_kernel_plugin(name):
            return await self._builtin_choice(name, True, principal)
        async with self.db.session() as session:
            row = await self._row(session, name)
            if row.status == "enabled":
                return row
            check_transition(name, row.status, "enabled")
            needs_override = row.verdict != "pass" or row.status == "quarantined"
            if needs_override and not override_reason:
                why = "it is quarantined" if row.status == "quarantined" else "its latest scan failed"
                raise VerdictFail(
                    f"plugin {name!r} cannot be enabled: {why}; an administrator may override with a reason",
                    verdict=row.verdict,
                )
            previous = row.status
            extra: dict[str, Any] = {}
            if needs_override:
                row.override_reason, row.override_by, row.override_at = override_reason, principal.id[:200], utcnow()
                extra = {"override": True, "override_reason": override_reason}
            row.status, row.updated_at = "enabled", utcnow()
            session.add(row)
            await self._grant(session, row, True)
            await self._set_state(session, name, enabled=True)
            await record(self.kernel, session, "enabled", str(row.id), principal, self._payload(row, previous, **extra))
            await session.commit()
        await self.states.announce(name)
        return row

    async def disable(self, name: str, principal: Principal) -> Any:
        if self._is_kernel_plugin(name):
            return await self._builtin_choice(name, False, principal)
        async with self.db.session() as session:
            row = await self._row(session, name)
            if row.status == "disabled":
                return row
            check_transition(name, row.status, "disabled")
            await self._transition(session, row, "disabled", principal)
            await session.commit()
        await self.states.announce(name)
        return row

    async def _transition(
        self, session: AsyncSession, row: PluginRow, to: str, principal: Principal | None, **extra: Any
    ) -> None:
        previous = row.status
        row.status, row.updated_at = to, utcnow()
        session.add(row)
        await self._grant(session, row, to == "enabled")
        await self._set_state(session, row.name, enabled=to == "enabled")
        await record(self.kernel, session, to, str(row.id), principal, self._payload(row, previous, **extra))

    async def remove(self, name: str, principal: Principal) -> None:
        """Remove ``name``: its package is deleted, its configuration and API access dropped; the row
        stays (status ``removed``) with its scan report and violations for the record."""
        if self._is_kernel_plugin(name):
            raise BuiltinPlugin(f"{name!r} is part of the installation; disable it instead")
        async with self.db.session() as session:
            row = await self._row(session, name)
            package = row.package_path
            await self._transition(session, row, "removed", principal)
            row.package_path = None
            await session.exec(delete(PluginConfiguration).where(col(PluginConfiguration.plugin_id) == row.id))
            await session.commit()
        await self.states.announce(name)
        await self.store.delete(package)

    async def rescan(self, name: str, principal: Principal) -> PluginRow:
        """Scan the stored package again. An enabled plugin whose new verdict is fail is disabled."""
        if self._is_kernel_plugin(name):
            raise BuiltinPlugin(f"{name!r} is part of the installation and is not scanned")
        row = await self.get(name)
        if row.package_path is None:
            raise Conflict(f"plugin {name!r} has no stored package", slug="no-package")
        report = await self._scan(self.store.absolute(row.package_path))
        async with self.db.session() as session:
            row = await self._row(session, name)
            previous = row.status
            self._apply_scan(row, report)
            session.add(row)
            await record(self.kernel, session, "scanned", str(row.id), principal, self._payload(row, previous))
            changed = row.status == "enabled" and row.verdict != "pass"
            if changed:
                await self._transition(session, row, "disabled", principal, reason="the new scan failed")
            await session.commit()
        await self.states.announce(name)
        return row

    # -- configuration --------------------------------------------------------------------------
    async def get_config(self, name: str) -> dict[str, Any]:
        async with self.db.session() as session:
            row = await self._row(session, name)
            query = select(PluginConfiguration).where(PluginConfiguration.plugin_id == row.id)
            config = (await session.exec(query)).first()
            return {
                "name": name,
                "config": config.config if config else {},
                "revision": config.revision if config else 0,
            }

    async def set_config(self, name: str, values: dict[str, Any], principal: Principal) -> dict[str, Any]:
        """Replace the configuration of ``name`` after validating it against the manifest's schema."""
        if self._is_kernel_plugin(name):
            raise BuiltinPlugin(f"{name!r} is configured through settings ([plugins.{name}] in taylordash.toml)")
        async with self.db.session() as session:
            row = await self._row(session, name)
            schema = (row.manifest.get("contributions") or {}).get("config_schema")
            if schema is None and values:
                raise ValidationFailed(f"plugin {name!r} declares no configuration schema", slug="no-config-schema")
            errors = [
                {"loc": [str(p) for p in error.absolute_path], "msg": error.message, "type": str(error.validator)}
                for error in Draft202012Validator(schema or {}).iter_errors(values)
            ]
            if errors:
                raise ValidationFailed("the configuration does not match the plugin's schema", errors=errors)
            query = select(PluginConfiguration).where(PluginConfiguration.plugin_id == row.id)
            config = (await session.exec(query)).first()
            if config is None:
                config = PluginConfiguration(plugin_id=row.id, config=values, revision=1)
            else:
                config.config, config.revision = values, config.revision + 1
            config.updated_by, config.updated_at = principal.id[:200], utcnow()
            session.add(config)
            payload = {"name": name, "revision": config.revision, "keys": sorted(values)}
            await record(self.kernel, session, "configured", str(row.id), principal, payload)
            await session.commit()
            return {"name": name, "config": values, "revision": config.revision}

    # -- violations -----------------------------------------------------------------------------
    async def violations(self, name: str, limit: int, after: tuple[Any, Any] | None) -> list[PluginViolation]:
        """Violations of ``name``, newest first, ``limit + 1`` of them (the caller pages)."""
        from kernel.pagination import keyset_after

        async with self.db.session() as session:
            row = await self._row(session, name)
            query = select(PluginViolation).where(PluginViolation.plugin_id == row.id)
            if after is not None:
                query = query.where(
                    keyset_after([col(PluginViolation.occurred_at), col(PluginViolation.id)], list(after), True)
                )
            query = query.order_by(col(PluginViolation.occurred_at).desc(), col(PluginViolation.id).desc())
            return list((await session.exec(query.limit(limit + 1))).all())

    async def record_violation(
        self, name: str, kind: str, detail: str, context: dict[str, Any] | None = None
    ) -> PluginRow:
        """Store a violation by the sandboxed plugin ``name`` (the runner calls this); at
        ``quarantine_after`` violations within ``quarantine_window_seconds`` an enabled or disabled
        plugin is quarantined."""
        async with self.db.session() as session:
            row = await self._row(session, name)
            violation = PluginViolation(plugin_id=row.id, kind=kind[:50], detail=detail, context=context or {})
            session.add(violation)
            row.violations_count += 1
            session.add(row)
            payload = {"name": name, "kind": violation.kind, "detail": detail[:500], "count": row.violations_count}
            await record(self.kernel, session, "violation", str(row.id), None, payload)
            await session.flush()
            since = utcnow() - timedelta(seconds=self.settings.quarantine_window_seconds)
            recent_query = select(func.count()).where(
                col(PluginViolation.plugin_id) == row.id, col(PluginViolation.occurred_at) >= since
            )
            recent = (await session.exec(recent_query)).one()
            quarantined = recent >= self.settings.quarantine_after and row.status in ("enabled", "disabled")
            if quarantined:
                await self._transition(
                    session, row, "quarantined", None, violations=row.violations_count, within_window=recent
                )
            await session.commit()
        if quarantined:
            # Not awaited: the sandbox may be reporting this very violation from the worker's call.
            sandbox = self.kernel.services.get("sandbox")
            if sandbox is not None:
                sandbox.stop_soon(name)
            self._announce_soon(name)  # the other instances stop theirs
        return row

    # -- sandbox state (the sandbox runner's api calls) ----------------------------------------------
    async def kv_get(self, plugin_id: Any, key: str, default: Any = None) -> Any:
        """The value of ``key`` in the key-value store of plugin ``plugin_id``."""
        async with self.db.session() as session:
            row = await session.get(PluginKV, (plugin_id, key))
            return default if row is None else row.value

    async def kv_set(self, plugin_id: Any, key: str, value: Any) -> None:
        async with self.db.session() as session:
            row = await session.get(PluginKV, (plugin_id, key))
            if row is None:
                row = PluginKV(plugin_id=plugin_id, key=key, value=value)
            row.value, row.updated_at = value, utcnow()
            session.add(row)
            await session.commit()

    async def kv_delete(self, plugin_id: Any, key: str) -> bool:
        async with self.db.session() as session:
            row = await session.get(PluginKV, (plugin_id, key))
            if row is None:
                return False
            await session.delete(row)
            await session.commit()
            return True

    async def kv_keys(self, plugin_id: Any, prefix: str = "") -> list[str]:
        async with self.db.session() as session:
            query = select(PluginKV.key).where(PluginKV.plugin_id == plugin_id).order_by(PluginKV.key)
            return [k for k in (await session.exec(query)).all() if k.startswith(prefix)]

    async def config_of(self, plugin_id: Any) -> dict[str, Any]:
        """The configuration of plugin ``plugin_id`` (``{}`` when none was set)."""
        async with self.db.session() as session:
            query = select(PluginConfiguration).where(PluginConfiguration.plugin_id == plugin_id)
            row = (await session.exec(query)).first()
            return dict(row.config) if row is not None else {}

    async def add_api_calls(self, tallies: dict[tuple[Any, str], dict[str, Any]]) -> None:
        """Add tallies of api calls, ``{(plugin_id, permission): {calls, refused, failed, total_ms,
        max_ms, last_outcome, last_method}}``, to ``plugin_api_access`` in one transaction."""
        async with self.db.session() as session:
            for (plugin_id, permission), tally in tallies.items():
                query = select(PluginApiAccess).where(
                    PluginApiAccess.plugin_id == plugin_id, PluginApiAccess.permission == permission
                )
                row = (await session.exec(query)).first()
                if row is None:
                    row = PluginApiAccess(plugin_id=plugin_id, permission=permission, granted=False)
                row.calls += tally["calls"]
                row.refused += tally["refused"]
                row.failed += tally["failed"]
                row.total_ms += tally["total_ms"]
                row.max_ms = max(row.max_ms, tally["max_ms"])
                row.last_outcome, row.last_method = tally["last_outcome"], tally["last_method"]
                row.last_called_at = row.updated_at = utcnow()
                session.add(row)
            await session.commit()
