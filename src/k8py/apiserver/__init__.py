"""k8py.apiserver: Kubernetes' REST semantics over a revisioned Store.

`server.ApiServer.handle(ApiRequest) -> ApiResponse` is the whole API; the HTTPS
front (`http`, `auth`, `certs`, `kubeconfig`) and the in-process client transport
(`inprocess`: the client's Transport Protocol, served without sockets) both call it.
Inside, one module per concept:

- routing: URL -> (resource, namespace, name, subresource); discovery/openapi delegated
- codec: JSON/YAML/protobuf bodies (duplicate keys noted), Accept negotiation (Table)
- registry: create/update with server-owned fields, defaults, validation, admission
- strategy: per-kind rules (status subresource, generation, namespaces, pods)
- patch: merge/JSON/strategic patches and server-side apply
- deletion: DeleteOptions, finalizers, graceful pods, namespace termination
- listing, selection: LIST with selectors and continue tokens
- watchcache, watch: one store watch per resource fanned out to all watchers
- subresources: scale, binding, eviction, finalize, node-served (log/exec) via a proxy hook
- allocator: Service ClusterIPs and NodePorts; bootstrap: the cluster's first objects
  (and the `kubernetes` Service, recreated when deleted)
- tokens, tokenrequest, boundtokens: service-account tokens (TokenRequest, TokenReview),
  checked against the live account and bound object; saadmission: the ServiceAccount
  admission plugin (default account, the kube-api-access projected volume)
- webhooks (chain, configurations' index), webhookmatch (rules, selectors), webhookcall
  (AdmissionReview over HTTPS): admission webhooks
- storage, events: keys, encoding (no resourceVersion stored), core<->events.k8s.io
- machinery: bindings to the pure helpers in k8py.api; errors: Status bodies
"""
