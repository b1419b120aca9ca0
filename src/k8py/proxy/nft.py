"""Applying nftables transactions with the `nft` command (atomic: all or nothing)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

from k8py.proxy.errors import NftError
from k8py.proxy.rules import FAMILY, TABLE


async def apply(script: str) -> None:
    if not script:
        return
    proc = await asyncio.create_subprocess_exec(
        "nft", "-f", "-", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate(script.encode())
    if proc.returncode != 0:
        raise NftError(err.decode().strip()[:4000])


def delete_table(table: str = TABLE) -> None:
    """Remove the table if present (for `k8py reset` and teardown)."""
    if shutil.which("nft"):
        subprocess.run(["nft", "delete", "table", FAMILY, table], capture_output=True, check=False)


def list_table(table: str = TABLE) -> str:
    r = subprocess.run(["nft", "list", "table", FAMILY, table], capture_output=True, text=True, check=False)
    return r.stdout


async def table_exists(table: str = TABLE) -> bool:
    proc = await asyncio.create_subprocess_exec("nft", "list", "table", FAMILY, table,
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    return await proc.wait() == 0
