"""A large attachment through the real HTTP server: upload and download throughput, and how much the
server's resident memory grows while streaming (the budget is 50 MB for 200 MB).

The server is uvicorn serving the app in a subprocess (embedded SQLite); its RSS is sampled every
10 ms from outside. With ``--backend s3`` the objects go to a moto S3 server on loopback.

    .venv/bin/python tests/bench/bench_storage.py [--size-mb 200] [--backend file|s3|both]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.storage.bigfile import MB, server, server_env, upload_and_download  # noqa: E402
from tests.storage.conftest import MotoServer  # noqa: E402

BUDGET = 50 * MB


def measure(kind: str, size: int, root: Path) -> bool:
    moto = MotoServer() if kind == "s3" else None
    try:
        url = moto.url(f"bench-{uuid.uuid4().hex[:8]}") if moto else f"file://{root / kind / 'objects'}"
        env = server_env(root / kind, url, max_upload=size + MB)
        with server(env, root / f"{kind}.log") as (base, pid):
            upload, download = upload_and_download(base, pid, size)
    finally:
        if moto is not None:
            moto.stop()
    print(f"[{kind}] {upload.describe('upload  ')}")
    print(f"[{kind}] {download.describe('download')}")
    return upload.rss_growth < BUDGET and download.rss_growth < BUDGET


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--backend", choices=("file", "s3", "both"), default="both")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="td-bench-storage-"))
    kinds = ("file", "s3") if args.backend == "both" else (args.backend,)
    try:
        ok = all([measure(kind, args.size_mb * MB, root) for kind in kinds])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"RSS growth {'within' if ok else 'OVER'} the {BUDGET // MB} MB budget")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
