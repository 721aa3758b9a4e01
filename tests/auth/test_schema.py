"""The auth migration branch: up and down on both backends, and in agreement with the models."""

from __future__ import annotations

from builtin_plugins.auth.models import TABLES
from tests.support.schema import check_branch_up_down_up, check_models_match_migrations

AUTH_TABLES = {"users", "user_sessions", "api_tokens", "auth_audit_log", "auth_login_throttle"}


async def test_auth_branch_up_down_up(make_settings, fresh_database_url):
    await check_branch_up_down_up(make_settings(database_url=fresh_database_url), "auth", AUTH_TABLES)


async def test_models_agree_with_the_migration(make_settings, fresh_database_url):
    await check_models_match_migrations(make_settings(database_url=fresh_database_url), TABLES, AUTH_TABLES)
