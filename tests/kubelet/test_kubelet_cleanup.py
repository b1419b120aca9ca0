"""`k8py reset`'s kubelet part: pod dirs (with tmpfs mounts) and pod log dirs go, other files stay."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from k8py.kubelet.cleanup import cleanup


def test_removes_pod_dirs_and_pod_logs_only(tmp_path: Path) -> None:
    root, logs = tmp_path / "kubelet", tmp_path / "logs"
    vol = root / "pods" / "u1" / "volumes" / "kubernetes.io~empty-dir" / "cache"
    vol.mkdir(parents=True)
    mounted = False
    if os.geteuid() == 0:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "k8py-test", str(vol)]).returncode == 0
    (logs / "default_web_0b7e6c2a-1111-2222-3333-444455556666" / "nginx").mkdir(parents=True)
    (logs / "not-a-pod-dir").mkdir()
    (root / "keep.txt").write_text("x")
    assert cleanup(root, logs) == []
    assert not (root / "pods").exists() and (root / "keep.txt").exists()
    assert [p.name for p in logs.iterdir()] == ["not-a-pod-dir"]
    if mounted:  # as root the emptyDir was a real tmpfs, unmounted before removal
        assert str(vol) not in Path("/proc/self/mountinfo").read_text()
