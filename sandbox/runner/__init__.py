"""The sandbox runner: RestrictedPython code in a resource-limited worker subprocess per plugin.

- :mod:`sandbox.runner.worker` — the child process (limits, restricted execution, RPC client)
- :mod:`sandbox.runner.supervisor` — the kernel's handle on one worker (calls, timeouts, restarts)
- :mod:`sandbox.runner.api` — the ``api`` capability object's kernel side, checked per permission
- :mod:`sandbox.runner.manager` — enabled registry plugins as pluggy proxies in a running kernel
- :mod:`sandbox.runner.snippet` — ``taylordash sandbox run``
"""
