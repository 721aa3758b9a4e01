"""The plugins migration branch: up and down on both backends, and in agreement with the models."""

from __future__ import annotations

from builtin_plugins.plugins.models import TABLES
from tests.support.schema import check_branch_up_down_up, check_models_match_migrations

REGISTRY_TABLES = {
    "plugins",
    "plugin_configurations",
    "plugin_api_access",
    "plugin_security_violations",
    "plugin_kv",
}


async def test_plugins_branch_up_down_up(make_settings, fresh_database_url):
    await check_branch_up_down_up(make_settings(database_url=fresh_database_url), "plugins", REGISTRY_TABLES)


async def test_models_agree_with_the_migration(make_settings, fresh_database_url):
    await check_models_match_migrations(make_settings(database_url=fresh_database_url), TABLES, REGISTRY_TABLES)
