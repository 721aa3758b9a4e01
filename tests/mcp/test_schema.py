"""The mcp migration branch: up and down on both backends, and in agreement with the models."""

from __future__ import annotations

from builtin_plugins.mcp.models import TABLES
from tests.support.schema import check_branch_up_down_up, check_models_match_migrations

MCP_TABLES = {"mcp_servers"}


async def test_mcp_branch_up_down_up(make_settings, fresh_database_url):
    await check_branch_up_down_up(make_settings(database_url=fresh_database_url), "mcp", MCP_TABLES)


async def test_models_agree_with_the_migration(make_settings, fresh_database_url):
    await check_models_match_migrations(make_settings(database_url=fresh_database_url), TABLES, MCP_TABLES)
