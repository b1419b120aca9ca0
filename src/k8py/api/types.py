"""Type aliases shared by every package: how a Kubernetes object looks in k8py.

Objects are kept as Kubernetes writes them on the wire: JSON objects decoded into plain
dicts (`Obj`). Shapes read in many places get a TypedDict of their own beside this alias
(`ObjectMeta`, `OwnerReference`, `ContainerStatus`): a type for the checker only, no
runtime cost (a TypedDict value is a plain dict). Every TypedDict is `total=False`,
because every field of a Kubernetes object is optional on the wire; fields are spelled as
in the API (camelCase) and listed only as far as k8py reads them.
"""

from __future__ import annotations

from typing import Any, TypedDict

Obj = dict[str, Any]
"""A Kubernetes object (or any JSON object inside one), as decoded from JSON."""


class OwnerReference(TypedDict, total=False):
    """metadata.ownerReferences[]: an owner of the object (at most one has controller: true)."""

    apiVersion: str
    kind: str
    name: str
    uid: str
    controller: bool
    blockOwnerDeletion: bool


class ObjectMeta(TypedDict, total=False):
    """An object's metadata (metav1.ObjectMeta)."""

    name: str
    generateName: str
    namespace: str
    uid: str
    resourceVersion: str
    generation: int
    creationTimestamp: str
    deletionTimestamp: str
    deletionGracePeriodSeconds: int
    labels: dict[str, str]
    annotations: dict[str, str]
    ownerReferences: list[OwnerReference]
    finalizers: list[str]
    managedFields: list[Obj]


class ContainerStateWaiting(TypedDict, total=False):
    reason: str
    message: str


class ContainerStateRunning(TypedDict, total=False):
    startedAt: str


class ContainerStateTerminated(TypedDict, total=False):
    exitCode: int
    signal: int
    reason: str
    message: str
    startedAt: str
    finishedAt: str
    containerID: str


class ContainerState(TypedDict, total=False):
    """A container's state: exactly one of waiting, running or terminated is set."""

    waiting: ContainerStateWaiting
    running: ContainerStateRunning
    terminated: ContainerStateTerminated


class ContainerStatus(TypedDict, total=False):
    """status.containerStatuses[] (and initContainerStatuses[]) of a Pod."""

    name: str
    image: str
    imageID: str
    containerID: str
    ready: bool
    started: bool
    restartCount: int
    state: ContainerState
    lastState: ContainerState
