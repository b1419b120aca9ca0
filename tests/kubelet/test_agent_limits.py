"""The agent's log rotation and pids settings (the kubelet's --container-log-max-size,
--container-log-max-files, --pod-max-pids) from K8PY_AGENT_* and into the runtime."""
from __future__ import annotations

from pathlib import Path

import pytest

from k8py.kubelet.agent import AgentOptions, build_runtime, options_from_env


def test_defaults_are_the_kubelets_but_for_pids() -> None:
    o, _ = options_from_env({})
    assert (o.container_log_max_size, o.container_log_max_files) == (10 << 20, 5)
    assert o.pod_max_pids == 4096
    assert o.eviction_hard == "memory.available<100Mi,nodefs.available<10%,pid.available<5%"


def test_from_environment() -> None:
    o, _ = options_from_env({"K8PY_AGENT_CONTAINER_LOG_MAX_SIZE": "1Mi", "K8PY_AGENT_CONTAINER_LOG_MAX_FILES": "3",
                             "K8PY_AGENT_POD_MAX_PIDS": "-1"})
    assert (o.container_log_max_size, o.container_log_max_files, o.pod_max_pids) == (1 << 20, 3, -1)
    o, _ = options_from_env({"K8PY_AGENT_EVICTION_HARD": "memory.available<1Gi"})
    assert o.eviction_hard == "memory.available<1Gi"


@pytest.mark.parametrize("name, value", [
    ("K8PY_AGENT_CONTAINER_LOG_MAX_SIZE", "lots"),
    ("K8PY_AGENT_CONTAINER_LOG_MAX_SIZE", "-1Mi"),
    ("K8PY_AGENT_CONTAINER_LOG_MAX_FILES", "1"),
    ("K8PY_AGENT_POD_MAX_PIDS", "-2"),
    ("K8PY_AGENT_POD_MAX_PIDS", "1.5"),
    ("K8PY_AGENT_EVICTION_HARD", "memory.available>1Gi"),
    ("K8PY_AGENT_EVICTION_HARD", "nodefs.available<200%"),
])
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        options_from_env({name: value})


def test_the_runtime_gets_them(tmp_path: Path) -> None:
    rt = {"base": str(tmp_path / "data"), "state": str(tmp_path / "state"), "cgroup_parent": "k8py-x",
          "netns_prefix": "k8py-x-", "registries": str(tmp_path / "none.yaml")}
    runtime = build_runtime(rt, None, AgentOptions(container_log_max_size=1234, container_log_max_files=2,
                                                   pod_max_pids=77))
    assert (runtime.log_max_size, runtime.log_max_files, runtime.pod_pids_limit) == (1234, 2, 77)
