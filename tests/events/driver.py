"""A kernel process for the crash test: the events plugin, the test batch API and a counting
handler, served by uvicorn on the port given as argument; settings from ``TD_*``."""

from __future__ import annotations

import sys

import uvicorn

from kernel.app import create_app
from kernel.settings import load_settings
from tests.events.batches import Batches
from tests.events.helpers import Recorder


def main() -> None:
    settings = load_settings()
    plugins = [("batches", Batches()), ("rec", Recorder("tracker/events/projects/#", "count"))]
    app = create_app(settings, plugins, builtins=("builtin_plugins.events",), configure_logs=True)
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_config=None, access_log=False)


if __name__ == "__main__":
    main()
