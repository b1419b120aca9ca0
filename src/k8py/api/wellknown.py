"""Well-known names: namespaces, labels, annotations and users that more than one
component reads or writes.

Each value is spelled exactly as Kubernetes (or, for `k8py.io/...`, k8py) puts it on
objects; each name follows the Go constant it mirrors (`metav1.NamespaceSystem` ->
`NAMESPACE_SYSTEM`, `v1.LabelHostname` -> `LABEL_HOSTNAME`, ...). Invariant: constants
only, no behaviour; a name used by one module alone stays in that module. Well-known
taints live beside their matching rules in `k8py.api.taints`.
"""

from __future__ import annotations

# ------------------------------------------------------------------ namespaces

NAMESPACE_DEFAULT = "default"
NAMESPACE_SYSTEM = "kube-system"
NAMESPACE_PUBLIC = "kube-public"
NAMESPACE_NODE_LEASE = "kube-node-lease"  # one Lease per node: the kubelet's heartbeat

# ------------------------------------------------------------------ labels

LABEL_HOSTNAME = "kubernetes.io/hostname"
LABEL_OS_STABLE = "kubernetes.io/os"
LABEL_ARCH_STABLE = "kubernetes.io/arch"
LABEL_OS_BETA = "beta.kubernetes.io/os"
LABEL_ARCH_BETA = "beta.kubernetes.io/arch"
LABEL_NODE_ROLE_PREFIX = "node-role.kubernetes.io/"  # node-role.kubernetes.io/<role>
LABEL_NODE_ROLE = "kubernetes.io/role"  # the older form: kubernetes.io/role=<role>
LABEL_METADATA_NAME = "kubernetes.io/metadata.name"  # every Namespace, = its name
LABEL_SERVICE_NAME = "kubernetes.io/service-name"  # an EndpointSlice's Service
LABEL_MANAGED_BY = "endpointslice.kubernetes.io/managed-by"  # an EndpointSlice's writer
LABEL_HEADLESS_SERVICE = "service.kubernetes.io/headless"  # Endpoints(Slices) of a headless Service
LABEL_SIMULATED = "k8py.io/simulated"  # "true" on a simulated node
LABEL_KUBERNETES_CONTAINER_NAME = "io.kubernetes.container.name"  # on a CRI container (and its OCI spec)

# ------------------------------------------------------------------ annotations

ANNOTATION_NODE_TTL = "node.alpha.kubernetes.io/ttl"
ANNOTATION_SELECTED_NODE = "volume.kubernetes.io/selected-node"  # on a claim: the scheduler's pick
ANNOTATION_IS_DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
ANNOTATION_IS_DEFAULT_CLASS_BETA = "storageclass.beta.kubernetes.io/is-default-class"
ANNOTATION_SIMULATED = "k8py.io/simulated"  # on a simulated node and its pods: a note
ANNOTATION_SIMULATED_HEARTBEAT = "k8py.io/simulated-heartbeat"  # "paused" | "running"

# ------------------------------------------------------------------ names

DEFAULT_SCHEDULER_NAME = "default-scheduler"  # a pod's spec.schedulerName when unset
USER_SYSTEM_ADMIN = "system:admin"  # the in-process components' user
GROUP_MASTERS = "system:masters"  # may do anything
GROUP_AUTHENTICATED = "system:authenticated"  # every authenticated user
NODE_USER_PREFIX = "system:node:"  # a node's user is system:node:<node name>
GROUP_NODES = "system:nodes"  # every node
# The NetworkPolicy enforcer of each node: an identity of its own (as a CNI's policy agent runs
# with its own account), so that the node itself stays confined to its own pods.
POLICY_AGENT_USER_PREFIX = "system:k8py:network-policy-agent:"  # + node name
GROUP_POLICY_AGENTS = "system:k8py:network-policy-agents"
USER_KUBE_SCHEDULER = "system:kube-scheduler"  # the scheduler's user (bootstrap roles bind it)
USER_KUBE_CONTROLLER_MANAGER = "system:kube-controller-manager"  # the controller manager's user
GROUP_BOOTSTRAPPERS = "system:bootstrappers"  # a joining node before it has its certificate
USER_AGENT_BOOTSTRAP = "system:bootstrap:k8py-agent"  # the shared agent token's user
NODE_CREDENTIALS_PATH = "/k8py/v1/node-credentials"  # where a bootstrapper gets a node certificate

# ------------------------------------------------------------------ service-account tokens in pods

ANNOTATION_MIRROR_POD = "kubernetes.io/config.mirror"  # a static pod's mirror: admission leaves it alone
DEFAULT_SERVICE_ACCOUNT = "default"  # every namespace has one; a pod's spec.serviceAccountName when unset
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"  # in every namespace: the cluster CA under ROOT_CA_KEY
ROOT_CA_KEY = "ca.crt"
SERVICE_ACCOUNT_VOLUME_PREFIX = "kube-api-access-"  # the admission's projected volume: + 5 random chars
SERVICE_ACCOUNT_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
# expirationSeconds of the admission's serviceAccountToken source (Kubernetes' WarnOnlyBoundTokenExpirationSeconds)
KUBELET_TOKEN_EXPIRATION = 3607

# PriorityClasses (scheduling.k8s.io): the two built in, and the limit of user-defined values.
HIGHEST_USER_DEFINABLE_PRIORITY = 1_000_000_000
SYSTEM_PRIORITY_CLASS_PREFIX = "system-"
SYSTEM_CLUSTER_CRITICAL = "system-cluster-critical"
SYSTEM_NODE_CRITICAL = "system-node-critical"
SYSTEM_CRITICAL_PRIORITY = 2 * HIGHEST_USER_DEFINABLE_PRIORITY
SYSTEM_PRIORITY_CLASSES = {SYSTEM_CLUSTER_CRITICAL: SYSTEM_CRITICAL_PRIORITY,
                           SYSTEM_NODE_CRITICAL: SYSTEM_CRITICAL_PRIORITY + 1000}
