"""User impersonation (`Impersonate-User` / `Impersonate-Group` headers, `kubectl --as`,
`--as-group`), as kube-apiserver's impersonation filter does it.

The authenticated user needs the `impersonate` verb on `users` (or on the service account
`serviceaccounts` in its namespace, for `system:serviceaccount:<ns>:<name>`) and on every
`groups` asked for; the request then runs as the impersonated user, whose groups are
the ones asked for (a service account without any gets its two service-account groups)
plus system:authenticated. Invariants: groups without a user are a 400; any refusal is
the 403 Status an authorizer denial writes.
"""

from __future__ import annotations

from collections.abc import Sequence

from k8py.api.wellknown import GROUP_AUTHENTICATED
from k8py.apiserver.auth import User
from k8py.apiserver.authz import Authorizer, forbidden
from k8py.apiserver.errors import bad_request
from k8py.apiserver.requestinfo import Attributes

SA_PREFIX = "system:serviceaccount:"


def impersonate(authz: Authorizer, user: User, as_user: str | None, as_groups: Sequence[str]) -> User:
    """The user the request runs as; raises the Status of a refusal."""
    if not as_user:
        if as_groups:
            raise bad_request(f"requested {list(as_groups)} without impersonating a user")
        return user
    checks = [_user_attributes(user, as_user)]
    checks += [Attributes(user.name, user.groups, "impersonate", True, resource="groups", name=g)
               for g in as_groups]
    for a in checks:
        d = authz.authorize(a)
        if not d.allowed:
            raise forbidden(a, d.reason)
    groups = list(as_groups)
    if as_user.startswith(SA_PREFIX) and not groups:
        ns = as_user.removeprefix(SA_PREFIX).partition(":")[0]
        groups = ["system:serviceaccounts", f"system:serviceaccounts:{ns}"]
    if as_user != "system:anonymous" and GROUP_AUTHENTICATED not in groups:
        groups.append(GROUP_AUTHENTICATED)
    return User(as_user, tuple(groups))


def _user_attributes(user: User, as_user: str) -> Attributes:
    if as_user.startswith(SA_PREFIX):
        ns, _, name = as_user.removeprefix(SA_PREFIX).partition(":")
        if ns and name:
            return Attributes(user.name, user.groups, "impersonate", True, resource="serviceaccounts",
                              namespace=ns, name=name)
    return Attributes(user.name, user.groups, "impersonate", True, resource="users", name=as_user)

