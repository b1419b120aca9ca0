"""Unpack an OCI layer tarball into its own directory, in overlayfs form.

Each layer gets an independent directory (keyed by its diff_id) that can be stacked as an
overlayfs lowerdir: OCI whiteouts are converted to overlay's own markers — `.wh.NAME`
becomes a character device 0/0 named NAME, `.wh..wh..opq` becomes the xattr
`trusted.overlay.opaque=y` on its directory — so stacking the directories in order gives
exactly the image's filesystem.

Invariants: gzip, zstd and uncompressed tars are recognised by their magic bytes; the
uncompressed stream's sha256 (the diff_id) is computed while extracting and returned;
extraction goes to `<dest>.partial` and is renamed into place only on success. GNU tar
does the extraction (ownership, modes, device nodes, hard links, capabilities xattrs;
it refuses `..` members and delays symlinks so none is followed out of the tree).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"


def _chunks(f: BinaryIO, size: int = 1 << 20) -> Iterator[bytes]:
    while chunk := f.read(size):
        yield chunk


def decompressed(f: BinaryIO) -> Iterator[bytes]:
    """The uncompressed byte stream of a layer blob (gzip, zstd or plain tar)."""
    head = f.read(4)
    f.seek(0)
    if head[:2] == GZIP_MAGIC:
        d = zlib.decompressobj(wbits=47)  # gzip, possibly multi-member
        for chunk in _chunks(f):
            while chunk:
                out = d.decompress(chunk)
                if out:
                    yield out
                if d.eof:
                    chunk = d.unused_data
                    d = zlib.decompressobj(wbits=47)
                else:
                    chunk = b""
        tail = d.flush()
        if tail:
            yield tail
    elif head == ZSTD_MAGIC:
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True)
        yield from _chunks(reader)
    else:
        yield from _chunks(f)


def convert_whiteouts(root: Path) -> None:
    """Turn OCI whiteout files under `root` into overlayfs whiteouts/opaque dirs."""
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            if not name.startswith(WHITEOUT_PREFIX):
                continue
            d = Path(dirpath)
            os.unlink(d / name)
            if name == OPAQUE:
                os.setxattr(d, "trusted.overlay.opaque", b"y")
                continue
            target = d / name[len(WHITEOUT_PREFIX):]
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            os.mknod(target, 0o020000 | 0o000, os.makedev(0, 0))


def unpack_layer(blob: Path, dest: Path) -> str:
    """Extract `blob` into `dest` (which must not exist yet); returns the diff_id."""
    partial = dest.with_name(dest.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    proc = subprocess.Popen(
        ["tar", "-x", "--numeric-owner", "--same-owner", "--same-permissions", "--xattrs",
         # file capabilities and user xattrs only: a layer must not set trusted.overlay.* itself
         "--xattrs-include=security.capability", "--xattrs-include=user.*",
         "--no-overwrite-dir", "-C", str(partial), "-f", "-"],
        stdin=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stderr is not None
    h = hashlib.sha256()
    try:
        with open(blob, "rb") as f:
            for chunk in decompressed(f):
                h.update(chunk)
                proc.stdin.write(chunk)
        proc.stdin.close()
    except (BrokenPipeError, zlib.error, OSError) as e:
        proc.kill()
        proc.wait()
        shutil.rmtree(partial, ignore_errors=True)
        raise ValueError(f"cannot unpack layer {blob.name}: {e}: {proc.stderr.read().decode(errors='replace')}") from e
    err = proc.stderr.read().decode(errors="replace")
    if proc.wait() != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise ValueError(f"cannot unpack layer {blob.name}: tar: {err.strip()}")
    convert_whiteouts(partial)
    os.rename(partial, dest)
    return "sha256:" + h.hexdigest()
