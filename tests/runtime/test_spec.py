"""OCI spec generation: Kubernetes command/args semantics, env, users, capabilities, resources."""
from __future__ import annotations

from pathlib import Path

import pytest

from k8py.runtime.errors import CreateContainerError
from k8py.runtime.protocol import ContainerConfig, Mount
from k8py.runtime.spec import DEFAULT_CAPS, build_spec, capabilities, merge_env, process_args, resolve_user

IMAGE = {"Entrypoint": ["/docker-entrypoint.sh"], "Cmd": ["nginx", "-g", "daemon off;"]}


@pytest.mark.parametrize("command, args, expected", [
    (None, None, ["/docker-entrypoint.sh", "nginx", "-g", "daemon off;"]),
    (["sh"], None, ["sh"]),  # command drops the image's Cmd too
    (None, ["-v"], ["/docker-entrypoint.sh", "-v"]),
    (["sh", "-c"], ["echo hi"], ["sh", "-c", "echo hi"]),
    (None, [], ["/docker-entrypoint.sh"]),
])
def test_process_args(command: list[str] | None, args: list[str] | None, expected: list[str]) -> None:
    assert process_args(ContainerConfig(name="c", image="i", command=command, args=args), IMAGE) == expected


def test_no_command_at_all() -> None:
    with pytest.raises(CreateContainerError, match="no command specified"):
        process_args(ContainerConfig(name="c", image="i"), {})


def test_env_merge() -> None:
    env = merge_env(["PATH=/bin", "A=image", "B=image"], [("B", "pod"), ("C", "x=y")], "web-0")
    assert env == ["PATH=/bin", "A=image", "B=pod", "HOSTNAME=web-0", "C=x=y"]


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33::/var/www:/bin/false\n"
                                         "app:x:1000:1001::/home/app:/bin/sh\n")
    (tmp_path / "etc/group").write_text("root:x:0:\nwww-data:x:33:\napp:x:1001:\nstaff:x:50:app\n")
    return tmp_path


@pytest.mark.parametrize("user, run_as_user, run_as_group, expected", [
    ("", None, None, (0, 0, [])),
    ("www-data", None, None, (33, 33, [])),
    ("app", None, None, (1000, 1001, [50])),
    ("1000", None, None, (1000, 1001, [50])),
    ("1000:33", None, None, (1000, 33, [50])),
    ("app:www-data", None, None, (1000, 33, [50])),
    ("4242", None, None, (4242, 0, [])),
    ("app", 33, None, (33, 33, [])),  # runAsUser wins over the image User
    ("", 1000, 7, (1000, 7, [50])),
])
def test_resolve_user(rootfs: Path, user: str, run_as_user: int | None, run_as_group: int | None,
                      expected: tuple[int, int, list[int]]) -> None:
    assert resolve_user(user, rootfs, run_as_user, run_as_group) == expected


def test_unknown_user_name(rootfs: Path) -> None:
    with pytest.raises(CreateContainerError, match="unable to find user nobody"):
        resolve_user("nobody", rootfs)


@pytest.mark.parametrize("add, drop, privileged, has, lacks", [
    ([], [], False, ["CAP_CHOWN", "CAP_NET_RAW", "CAP_KILL"], ["CAP_NET_ADMIN", "CAP_SYS_ADMIN"]),
    (["NET_ADMIN"], ["NET_RAW"], False, ["CAP_NET_ADMIN", "CAP_CHOWN"], ["CAP_NET_RAW"]),
    (["SYS_TIME"], ["ALL"], False, ["CAP_SYS_TIME"], ["CAP_CHOWN"]),
    ([], [], True, ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"], []),
])
def test_capabilities(add: list[str], drop: list[str], privileged: bool, has: list[str], lacks: list[str]) -> None:
    caps = capabilities(ContainerConfig(name="c", image="i", cap_add=add, cap_drop=drop, privileged=privileged))
    assert set(has) <= set(caps) and not set(lacks) & set(caps)
    assert len(caps) == len(set(caps))
    if not (add or drop or privileged):
        assert caps == DEFAULT_CAPS


@pytest.mark.parametrize("cpu_limit, cpu_request, quota, shares", [
    (0, 0, None, 2), (250, 100, 25000, 102), (2000, 0, 200000, 2048), (0, 500, None, 512), (1, 1, 1000, 2),
])
def test_resources(rootfs: Path, cpu_limit: int, cpu_request: int, quota: int | None, shares: int) -> None:
    spec = build_spec(config=ContainerConfig(name="c", image="i", command=["x"], cpu_limit_millis=cpu_limit,
                                             cpu_request_millis=cpu_request, memory_limit_bytes=64 << 20),
                      image_cfg={}, rootfs=rootfs, hostname="h", netns_path="/run/netns/k8py-x",
                      sandbox_dir=rootfs, cgroups_path="/k8py/u/c")
    res = spec["linux"]["resources"]
    assert res["cpu"].get("quota") == quota and res["cpu"]["shares"] == shares
    assert res["memory"]["limit"] == 64 << 20
    assert {"type": "network", "path": "/run/netns/k8py-x"} in spec["linux"]["namespaces"]
    assert spec["linux"]["cgroupsPath"] == "/k8py/u/c"


def test_mounts_and_readonly(rootfs: Path) -> None:
    (rootfs / "hosts").write_text("")
    spec = build_spec(config=ContainerConfig(name="c", image="i", command=["x"], read_only_rootfs=True,
                                             mounts=[Mount("/data", "/srv/data", read_only=True)]),
                      image_cfg={"WorkingDir": "/app"}, rootfs=rootfs, hostname="h", netns_path="",
                      sandbox_dir=rootfs, cgroups_path="/k8py/u/c")
    by_dest = {m["destination"]: m for m in spec["mounts"]}
    assert by_dest["/data"]["options"][-1] == "ro" and by_dest["/data"]["source"] == "/srv/data"
    assert by_dest["/etc/hosts"]["source"] == str(rootfs / "hosts")
    assert "/etc/resolv.conf" not in by_dest  # the sandbox has none here
    assert spec["root"]["readonly"] is True
    assert spec["process"]["cwd"] == "/app"
    assert not any(n["type"] == "network" for n in spec["linux"]["namespaces"])
