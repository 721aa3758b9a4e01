"""A 200 MB attachment through the real HTTP server: streamed, so the server's memory barely grows."""

from __future__ import annotations

from tests.storage.bigfile import MB, server, server_env, upload_and_download

SIZE = 200 * MB
RSS_BUDGET = 50 * MB


def test_200_mb_upload_and_download_stream(storage_url, tmp_path, record_property):
    env = server_env(tmp_path / "data", storage_url, max_upload=300 * MB)
    with server(env, tmp_path / "server.log") as (base, pid):
        upload, download = upload_and_download(base, pid, SIZE)
    record_property("upload", upload.describe("upload"))
    record_property("download", download.describe("download"))
    print(upload.describe("upload"))
    print(download.describe("download"))
    assert upload.rss_growth < RSS_BUDGET, upload.describe("upload")
    assert download.rss_growth < RSS_BUDGET, download.describe("download")
