"""Errors of the node agent (kubelet). Each carries the Kubernetes waiting reason it maps to.

Invariant: `reason` is what appears in a container's `state.waiting.reason`
(CreateContainerConfigError, ErrImagePull, ...), `message` is the human text.
"""

from __future__ import annotations


class KubeletError(Exception):
    reason = "Error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ContainerConfigError(KubeletError):
    """A referenced Secret/ConfigMap/key is missing (CreateContainerConfigError)."""

    reason = "CreateContainerConfigError"


class ImagePullError(KubeletError):
    reason = "ErrImagePull"


class ImageNeverPullError(KubeletError):
    reason = "ErrImageNeverPull"


class VolumeError(KubeletError):
    """A volume could not be set up (the pod stays ContainerCreating, FailedMount event)."""

    reason = "FailedMount"


class CreateContainerError(KubeletError):
    reason = "CreateContainerError"


class StartError(KubeletError):
    reason = "StartError"
