"""runtime.cleanup (what `k8py reset` calls) after an agent died without tidying up."""
from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

from k8py.runtime.cleanup import cleanup
from k8py.runtime.images import ImageStore
from k8py.runtime.mirrors import RegistriesConfig
from k8py.runtime.protocol import ContainerConfig, ContainerState, PodSandboxConfig
from k8py.runtime.registry import RegistryClient
from k8py.runtime.runc import RuncRuntime
from tests.runtime.conftest import leftovers


async def test_cleanup_after_a_crashed_agent(image_root: Path, registries: RegistriesConfig,
                                             tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    dirs: dict[str, Any] = dict(state_dir=Path(f"/run/k8py-test-{tag}"), data_dir=tmp_path / "data",
                cgroup_parent=f"k8py-test-{tag}", netns_prefix=f"k8py-c{tag[:4]}-")
    rt = RuncRuntime(dirs["state_dir"], dirs["data_dir"], images=ImageStore(image_root, RegistryClient(registries)),
                     cgroup_parent=str(dirs["cgroup_parent"]), netns_prefix=str(dirs["netns_prefix"]))
    try:
        for i in range(2):
            sid = await rt.run_pod_sandbox(PodSandboxConfig(name=f"p{i}", namespace="default", uid=str(uuid.uuid4())))
            cid = await rt.create_container(sid, ContainerConfig(name="c", image="busybox", command=["sleep", "1000"]))
            await rt.start_container(cid)
            assert (await rt.container_status(cid)).state == ContainerState.RUNNING
        created = await rt.create_container(sid, ContainerConfig(name="never-started", image="busybox",
                                                                 command=["true"]))
        assert (await rt.container_status(created)).state == ContainerState.CREATED
        assert len(leftovers(rt)) >= 2 + 2 + 3  # runc containers, netns, overlay mounts at least
    finally:
        await rt.close()  # the agent "dies": no rt.cleanup()
    left = await cleanup(**dirs)
    assert left == []
    assert not Path(dirs["state_dir"]).exists()
    assert leftovers(rt) == []  # (runc list recreates its empty root dir)
    shutil.rmtree(dirs["state_dir"], ignore_errors=True)
