"""Hypothesis-generated hostile archives for the scanner: truncated or corrupt zips, wheels and
sdists, path traversal in every spelling, links in and out, device files, duplicate and clashing
members, names in odd encodings or too long for the file system, bombs and member floods. Unpacking
either succeeds with everything inside the destination, or refuses with :class:`UnusableInput` and a
one-line message naming the archive — never another exception, never a file outside."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import tempfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.scanner import Limits, UnusableInput, scan
from sandbox.scanner.archive import target_kind, unpack

pytestmark = pytest.mark.filterwarnings("ignore:Duplicate name")
LIMITS = Limits(max_files=40, max_total_bytes=300_000, max_file_bytes=150_000, max_ratio=200)
FUZZ = settings(max_examples=250, deadline=None, database=None, suppress_health_check=list(HealthCheck))

member_names = st.one_of(
    st.from_regex(r"\A[a-z]{1,6}(/[a-z]{1,6}){0,3}\.py\Z"),
    st.sampled_from(
        [
            "../escape.py",
            "../../../../tmp/escape.py",
            "/etc/escape.py",
            "C:\\escape.py",
            "c:/escape.py",
            "pkg\\..\\..\\escape.py",
            "pkg/../../escape.py",
            "pkg/./x.py",
            "./",
            ".",
            "",
            "pkg//double.py",
            "pkg/",
            "pkg/x.py/",
            "é/ü.py",
            "\u202etxt.py",
            "pkg/" + "n" * 300 + ".py",
            "/".join(["d"] * 200) + "/x.py",
            "pkg/x.py\x00.txt",
        ]
    ),
    st.text(min_size=1, max_size=30),
)
contents = st.one_of(st.binary(max_size=200), st.just(b"x = 1\n"), st.just(b"\x00" * 120_000))


@st.composite
def zips(draw: st.DrawFn) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))) as zf:
        for _ in range(draw(st.integers(min_value=0, max_value=8))):
            name = draw(member_names)
            info = zipfile.ZipInfo(name or "empty")
            kind = draw(st.sampled_from(["file", "file", "symlink", "dir", "fifo", "device"]))
            mode = {
                "file": stat.S_IFREG | 0o644,
                "symlink": stat.S_IFLNK | 0o777,
                "dir": stat.S_IFDIR | 0o755,
                "fifo": stat.S_IFIFO | 0o644,
                "device": stat.S_IFCHR | 0o644,
            }[kind]
            info.external_attr = mode << 16
            if draw(st.booleans()):
                info.flag_bits &= ~0x800  # names decoded as cp437
            data = draw(member_names).encode("utf-8", "replace") if kind == "symlink" else draw(contents)
            zf.writestr(info, data)
        if draw(st.booleans()):  # a member flood
            for n in range(draw(st.integers(min_value=30, max_value=60))):
                zf.writestr(f"flood/{n}.py", b"")
    return buffer.getvalue()


@st.composite
def tars(draw: st.DrawFn) -> bytes:
    buffer = io.BytesIO()
    fmt = draw(st.sampled_from([tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT]))
    with tarfile.open(fileobj=buffer, mode="w:gz", format=fmt) as tf:
        for _ in range(draw(st.integers(min_value=0, max_value=8))):
            name = draw(member_names).replace("\x00", "")
            info = tarfile.TarInfo("pkg-1.0/" + name if draw(st.booleans()) else name)
            info.type = draw(
                st.sampled_from(
                    [
                        tarfile.REGTYPE,
                        tarfile.REGTYPE,
                        tarfile.SYMTYPE,
                        tarfile.LNKTYPE,
                        tarfile.DIRTYPE,
                        tarfile.CHRTYPE,
                        tarfile.FIFOTYPE,
                        tarfile.BLKTYPE,
                    ]
                )
            )
            data = b""
            if info.type == tarfile.REGTYPE:
                data = draw(contents)
                info.size = len(data)
            elif info.type in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = draw(member_names).replace("\x00", "")
            try:
                tf.addfile(info, io.BytesIO(data) if data else None)
            except ValueError:  # a name this format cannot hold
                continue
    return buffer.getvalue()


@st.composite
def archives(draw: st.DrawFn) -> tuple[str, bytes]:
    """``(file name, bytes)``: a generated archive, maybe truncated or with bytes flipped, or noise."""
    kind = draw(st.sampled_from(["zip", "whl", "sdist", "noise"]))
    if kind == "noise":
        return draw(st.sampled_from(["x.zip", "x-1.0-py3-none-any.whl", "x-1.0.tar.gz", "x.tgz"])), draw(
            st.binary(max_size=2000)
        )
    data = draw(tars()) if kind == "sdist" else draw(zips())
    damage = draw(st.sampled_from(["none", "none", "truncate", "flip"]))
    if damage == "truncate" and data:
        data = data[: draw(st.integers(min_value=0, max_value=len(data) - 1))]
    elif damage == "flip" and data:
        at = draw(st.integers(min_value=0, max_value=len(data) - 1))
        data = data[:at] + bytes([data[at] ^ draw(st.integers(min_value=1, max_value=255))]) + data[at + 1 :]
    name = {"zip": "x.zip", "whl": "x-1.0-py3-none-any.whl", "sdist": "x-1.0.tar.gz"}[kind]
    return name, data


def _inside(root: Path, path: Path) -> bool:
    return os.path.realpath(path).startswith(os.path.realpath(root) + os.sep)


@given(archive=archives())
@FUZZ
def test_unpack_refuses_cleanly_or_stays_inside(archive: tuple[str, bytes]) -> None:
    name, data = archive
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        target = work / "in" / name
        target.parent.mkdir()
        target.write_bytes(data)
        dest = work / "out" / "unpacked"
        try:
            root = unpack(target, target_kind(target), dest, LIMITS)
        except UnusableInput as exc:
            message = str(exc)
            assert message and "\n" not in message and str(target) in message, message
            assert not dest.exists(), "a refused archive leaves nothing behind"
        else:
            assert root == dest or _inside(dest, root)
            files = [p for p in dest.rglob("*")]
            assert all(not p.is_symlink() for p in files), "links are never created"
            assert all(_inside(dest, p) for p in files)
            regular = [p for p in files if p.is_file()]
            assert len(regular) <= LIMITS.max_files
            assert sum(p.stat().st_size for p in regular) <= LIMITS.max_total_bytes
        outside = {p.name for p in work.iterdir()} | {p.name for p in (work / "out").glob("*")}
        assert outside <= {"in", "out", "unpacked"}, outside


@given(archive=archives())
@settings(FUZZ, max_examples=25)
def test_scan_reports_every_bad_archive(archive: tuple[str, bytes]) -> None:
    """The whole scan (bandit included) on a few of them: a report, or one clear refusal."""
    name, data = archive
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / name
        target.write_bytes(data)
        try:
            report = scan([target], limits=LIMITS)
        except UnusableInput as exc:
            assert str(exc) and "\n" not in str(exc)
        else:
            # No generated archive carries a plugin manifest: that alone is a finding.
            (result,) = report.targets
            assert result.findings and report.verdict == "fail"
