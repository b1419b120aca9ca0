"""Errors of the container runtime and image service: the node's error tree for images,
containers and sandboxes (the kubelet's own errors are in `kubelet/errors.py`).

Invariant: every error carries a Kubernetes-style `reason` (what the kubelet puts in a
container's `waiting.reason`) and a human `message` like the kubelet's events. The
`ContainerRuntime` calls raise them by step: `pull_image` raises ImagePullError (or
ImageRefError for an unparsable reference), `create_container` CreateContainerError and
`start_container` StartError, whatever failed underneath.
"""
from __future__ import annotations


class NodeError(Exception):
    """The root of the node's error tree (runtime and kubelet alike): a Kubernetes waiting
    reason and a human message."""

    reason = "Error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RuntimeError_(NodeError):
    """Base class of k8py.runtime errors."""

    reason = "RuntimeError"


class ImageRefError(RuntimeError_):
    """An image reference that cannot be parsed (kubelet: InvalidImageName)."""

    reason = "InvalidImageName"


class ImagePullError(RuntimeError_):
    """Pulling an image failed (kubelet: ErrImagePull).

    `cause` is a short machine-friendly classification: "not found", "unauthorized",
    "connection", "digest mismatch", "no matching platform", "bad manifest".
    """

    reason = "ErrImagePull"

    def __init__(self, image: str, detail: str, cause: str = "") -> None:
        super().__init__(f'failed to pull and unpack image "{image}": {detail}')
        self.image = image
        self.detail = detail
        self.cause = cause


class ImageNotFound(RuntimeError_):
    """The image is not present locally (kubelet with pullPolicy Never: ErrImageNeverPull)."""

    reason = "ErrImageNeverPull"


class ImageNeverPullError(ImageNotFound):
    """A pod's image is not present and its pullPolicy is Never (kubelet: ErrImageNeverPull)."""


class ContainerNotFound(RuntimeError_):
    reason = "NotFound"


class SandboxNotFound(RuntimeError_):
    reason = "NotFound"


class CreateContainerError(RuntimeError_):
    """The container could not be created (kubelet: CreateContainerError)."""

    reason = "CreateContainerError"


class StartError(RuntimeError_):
    """The container's process could not be started (kubelet: StartError, as containerd says)."""

    reason = "StartError"


class SandboxError(RuntimeError_):
    """The pod sandbox could not be created (kubelet: FailedCreatePodSandBox)."""

    reason = "FailedCreatePodSandBox"
