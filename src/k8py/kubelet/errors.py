"""The kubelet's own errors: those of the pod worker's steps that are not the runtime's
(container configuration, volumes, image pull back-off), on the node's one error tree
(`runtime.errors.NodeError`). Images, container creation and start raise the runtime's
errors (`runtime/errors.py`).

Invariant: `reason` is what appears in a container's `state.waiting.reason`
(CreateContainerConfigError, ImagePullBackOff, ...), `message` is the human text.
"""

from __future__ import annotations

from k8py.runtime.errors import NodeError


class KubeletError(NodeError):
    """Base class of the kubelet's errors: a Kubernetes waiting reason and a message."""


class ContainerConfigError(KubeletError):
    """A referenced Secret/ConfigMap/key is missing (CreateContainerConfigError)."""

    reason = "CreateContainerConfigError"


class VolumeError(KubeletError):
    """A volume could not be set up (the pod stays ContainerCreating, FailedMount event)."""

    reason = "FailedMount"


class ImagePullBackOff(KubeletError):
    """The image's last pull failed and its back-off has not expired: the container waits."""

    reason = "ImagePullBackOff"


class RuntimeHandlerError(KubeletError):
    """The pod's RuntimeClass is missing or names a handler this node cannot run: no
    sandbox is created (FailedCreatePodSandBox event, the pod stays ContainerCreating)."""

    reason = "FailedCreatePodSandBox"
