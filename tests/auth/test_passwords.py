"""Password hashing: argon2id, the policy, and an unknown user costing as much as a wrong password."""

from __future__ import annotations

import time

from builtin_plugins.auth.config import AuthSettings
from builtin_plugins.auth.passwords import Passwords, policy_problems


def test_policy():
    assert policy_problems("twelve chars", "alice", 12) == []
    assert len(policy_problems("short", "alice", 12)) == 1
    assert policy_problems("Alice-Alice1", "alice-alice1", 12) == ["the password must not equal the username"]
    assert policy_problems("x" * 1025, "alice", 12) == ["the password must have at most 1024 characters"]


async def test_hashes_are_argon2id_and_defaults_are_production_grade():
    defaults = AuthSettings()
    assert (defaults.argon2_time_cost, defaults.argon2_memory_kib, defaults.argon2_parallelism) == (3, 65536, 4)
    passwords = Passwords(AuthSettings(argon2_time_cost=1, argon2_memory_kib=64, argon2_parallelism=1))
    stored = await passwords.hash("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert await passwords.verify(stored, "correct horse battery") == (True, False)
    assert await passwords.verify(stored, "wrong") == (False, False)
    assert await passwords.verify(None, "anything") == (False, False)
    stronger = Passwords(AuthSettings(argon2_time_cost=2, argon2_memory_kib=64, argon2_parallelism=1))
    assert await stronger.verify(stored, "correct horse battery") == (True, True)  # upgraded at next login


async def test_no_user_costs_a_full_verification():
    passwords = Passwords(AuthSettings(argon2_time_cost=2, argon2_memory_kib=32768, argon2_parallelism=1))
    await passwords.prepare()
    stored = await passwords.hash("the real password")

    async def timed(hash_: str | None) -> float:
        start = time.perf_counter()
        for _ in range(3):
            await passwords.verify(hash_, "a wrong guess")
        return time.perf_counter() - start

    wrong_password, unknown_user = await timed(stored), await timed(None)
    assert 0.33 < unknown_user / wrong_password < 3.0  # a missing user is not a shortcut
