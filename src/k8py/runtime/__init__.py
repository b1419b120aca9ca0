"""k8py.runtime: the node's container runtime and image service (CRI-like).

    protocol.py      ContainerRuntime / PodNetwork contracts and their data types
    runc.py          RuncRuntime: runc + overlayfs + one shim per container
    shim.py          the per-container process: runc create, CRI logs, exit status, attach
    sandbox.py       pod sandboxes: netns (k8py-...), shared IPC/UTS, hosts/resolv.conf
    spec.py          OCI config.json from a ContainerConfig and the image config
    cgroups.py       cgroup paths, usage, removal;  mounts.py  overlay mounts
    jsoncache.py     parsed record files, re-read only when changed (status relists)
    exec_session.py  streaming exec (pipes or a pty);  attach.py  attach sessions
    logs.py          reading CRI log files (kubectl logs)
    reference.py     image references normalized as Docker does
    mirrors.py       registries.yaml (k3s format): mirrors and credentials
    registry.py      registry v2 client: manifests, manifest lists, token auth, blobs
    images.py        ImageStore: content store, unpacked layers, tags, archives
    unpack.py        layer tarballs -> overlayfs-form directories (whiteouts)
    fake.py          FakeRuntime for kubelet tests;  cleanup.py  for `k8py reset`
Only the kubelet (and the CLI: `k8py image` is `cli/image.py`) import this package. Helper
commands run off the event loop with `k8py.host.proc`.
"""
