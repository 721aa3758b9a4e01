"""Hostile archives are refused (exit 2) before anything is written outside the scratch folder."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from sandbox.scanner import Limits, UnusableInput, scan
from sandbox.scanner.archive import unpack
from tests.scanner.builders import SAMPLES, build

GOOD_INIT = b'"""fine"""\n'


def _zip(path: Path, members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def _tar(path: Path, members: dict[str, bytes], links: dict[str, tuple[bytes, str]] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, (kind, target) in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = target
            tf.addfile(info)
    return path


def _assert_refused(run_scan, target: Path, words: str, outside: Path) -> None:
    done = run_scan(target)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], done.stderr
    assert not outside.exists()


def test_zip_path_traversal(run_scan, tmp_path: Path):
    archive = _zip(tmp_path / "evil.zip", {"pkg/__init__.py": GOOD_INIT, "../../escaped.py": b"x = 1\n"})
    _assert_refused(run_scan, archive, "path traversal", tmp_path.parent / "escaped.py")


def test_wheel_with_absolute_member(run_scan, tmp_path: Path):
    archive = _zip(tmp_path / "evil-1.0-py3-none-any.whl", {"/tmp/absolute_escape.py": b"x = 1\n"})
    _assert_refused(run_scan, archive, "absolute path", tmp_path / "never")


def test_sdist_path_traversal(run_scan, tmp_path: Path):
    archive = _tar(tmp_path / "evil-1.0.tar.gz", {"evil-1.0/ok.py": GOOD_INIT, "evil-1.0/../../../escaped.py": b"1\n"})
    _assert_refused(run_scan, archive, "path traversal", tmp_path.parent / "escaped.py")


def test_sdist_symlink_out_of_the_archive(run_scan, tmp_path: Path):
    archive = _tar(
        tmp_path / "evil-1.0.tar.gz",
        {"evil-1.0/ok.py": GOOD_INIT},
        {"evil-1.0/passwd": (tarfile.SYMTYPE, "/etc/passwd")},
    )
    _assert_refused(run_scan, archive, "points out of the archive", tmp_path / "never")


def test_sdist_relative_symlink_escaping(run_scan, tmp_path: Path):
    archive = _tar(
        tmp_path / "evil-1.0.tar.gz",
        {"evil-1.0/ok.py": GOOD_INIT},
        {"evil-1.0/pkg/up": (tarfile.SYMTYPE, "../../../../home"), "evil-1.0/hard": (tarfile.LNKTYPE, "../x")},
    )
    _assert_refused(run_scan, archive, "points out of the archive", tmp_path / "never")


def test_zip_symlink_out_of_the_archive(run_scan, tmp_path: Path):
    archive = _zip(tmp_path / "evil.zip", {"pkg/__init__.py": GOOD_INIT}, {"pkg/key": "../../../../root/.ssh/id_rsa"})
    _assert_refused(run_scan, archive, "points out of the archive", tmp_path / "never")


def test_zip_bomb(run_scan, tmp_path: Path):
    archive = _zip(tmp_path / "bomb.zip", {"pkg/__init__.py": GOOD_INIT, "pkg/data.bin": bytes(32 * 1024 * 1024)})
    assert archive.stat().st_size < 200_000
    _assert_refused(run_scan, archive, "zip bomb", tmp_path / "never")


def test_tar_with_a_device_file(run_scan, tmp_path: Path):
    archive = _tar(
        tmp_path / "evil-1.0.tar.gz", {"evil-1.0/ok.py": GOOD_INIT}, {"evil-1.0/null": (tarfile.CHRTYPE, "")}
    )
    _assert_refused(run_scan, archive, "device, FIFO", tmp_path / "never")


def test_symlinks_inside_the_archive_are_skipped_not_followed(tmp_path: Path):
    archive = _tar(
        tmp_path / "ok-1.0.tar.gz",
        {"ok-1.0/pkg/__init__.py": GOOD_INIT},
        {"ok-1.0/pkg/alias.py": (tarfile.SYMTYPE, "__init__.py")},
    )
    root = unpack(archive, "sdist", tmp_path / "out")
    assert root.name == "ok-1.0"
    assert sorted(p.name for p in (root / "pkg").iterdir()) == ["__init__.py"]


def test_streaming_caps_stop_archives_that_lie_or_sprawl(tmp_path: Path):
    many = _zip(tmp_path / "many.zip", {f"pkg/m{i}.py": GOOD_INIT for i in range(30)})
    with pytest.raises(UnusableInput, match="more than 20"):
        scan([many], limits=Limits(max_files=20))
    big = _tar(tmp_path / "big-1.0.tar.gz", {"big-1.0/a.py": b"#" * 40_000, "big-1.0/b.py": b"#" * 40_000})
    with pytest.raises(UnusableInput, match="more than 60000 bytes"):
        scan([big], limits=Limits(max_total_bytes=60_000))
    with pytest.raises(UnusableInput, match="exceeds 10000 bytes"):
        scan([big], limits=Limits(max_file_bytes=10_000))


def test_a_failed_unpack_leaves_no_files(tmp_path: Path):
    archive = _zip(tmp_path / "evil.zip", {"pkg/a.py": GOOD_INIT, "../b.py": GOOD_INIT})
    with pytest.raises(UnusableInput):
        unpack(archive, "zip", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_wheel_layout_is_read(tmp_path: Path):
    wheel = build("wheel", SAMPLES / "malicious" / "typosquat", tmp_path)
    result = scan([wheel]).targets[0]
    assert result.kind == "wheel" and result.name == "reqeusts" and result.version == "1.0.0"
    messages = " ".join(f.message for f in result.findings if f.rule_id == "TD113")
    assert "imitates 'requests'" in messages and "'urlib3', which imitates 'urllib3'" in messages


def test_zip_member_with_an_empty_name_is_skipped(tmp_path: Path):
    archive = _zip(tmp_path / "odd.zip", {"pkg/__init__.py": GOOD_INIT})
    with zipfile.ZipFile(archive, "a") as zf:
        nameless = zipfile.ZipInfo("x")
        zf.writestr(nameless, b"nameless")
        nameless.filename = ""  # the central directory, which readers list, names it ""
    root = unpack(archive, "wheel", tmp_path / "out", Limits())
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == ["pkg", "pkg/__init__.py"]


def test_zip_member_whose_local_name_is_not_utf8_is_refused_in_one_line(tmp_path: Path):
    archive = _zip(tmp_path / "odd.zip", {"pkg/__init__.py": GOOD_INIT, "pkg/a.py": "x = 1\n"})
    data = bytearray(archive.read_bytes())
    local = data.index(b"pkg/a.py") - 30  # the first mention of the name is its local header
    assert bytes(data[local : local + 4]) == b"PK\x03\x04" and bytes(data[local + 30 : local + 38]) == b"pkg/a.py"
    # The local header claims a UTF-8 name that is not UTF-8; the central directory stays intact.
    flags = int.from_bytes(data[local + 6 : local + 8], "little") | 0x800
    data[local + 6 : local + 8] = flags.to_bytes(2, "little")
    data[local + 30 : local + 32] = b"\xc3\x28"
    archive.write_bytes(bytes(data))
    with pytest.raises(UnusableInput) as refused:
        unpack(archive, "wheel", tmp_path / "out", Limits())
    message = str(refused.value)
    assert message.startswith(f"{archive}: ") and "\n" not in message
    assert not (tmp_path / "out").exists()
