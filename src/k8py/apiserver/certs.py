"""The cluster's PKI: a CA, the API server's serving cert, the admin client cert, an agent token.

Also the node credentials (`mint_node_credentials`: a node's client certificate,
CN=system:node:NAME O=system:nodes, and its kubelet serving certificate for its name and
addresses, both signed by the CA) and the API server's kubelet-client certificate
(CN=kube-apiserver-kubelet-client, O=system:masters, as kubeadm makes it), which is the
only client a kubelet endpoint accepts.

Generated once into DATA_DIR/pki on first start and reused on every restart, so
that a kubeconfig written before a restart stays valid. Invariants: the serving
cert names 127.0.0.1, ::1, localhost, the advertise address and the
`kubernetes.default.svc...` names; the admin cert is CN=admin, O=system:masters;
private keys are written mode 0600. `cryptography` is imported only when a
file must be generated (startup on an existing data dir stays fast).
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from k8py.api.wellknown import (
    GROUP_MASTERS,
    GROUP_NODES,
    GROUP_POLICY_AGENTS,
    NODE_USER_PREFIX,
    POLICY_AGENT_USER_PREFIX,
    USER_KUBE_CONTROLLER_MANAGER,
    USER_KUBE_SCHEDULER,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
SERVING_CERT = "apiserver.crt"
SERVING_KEY = "apiserver.key"
ADMIN_CERT = "admin.crt"
ADMIN_KEY = "admin.key"
AGENT_TOKEN = "agent-token"
KUBELET_CLIENT_CERT = "apiserver-kubelet-client.crt"
KUBELET_CLIENT_KEY = "apiserver-kubelet-client.key"
KUBELET_CLIENT_CN = "kube-apiserver-kubelet-client"
CA_HASH = "ca-cert-hash"  # sha256:<hex> of the CA's public key, for `k8py agent --ca-cert-hash`
SANS_FILE = "apiserver.sans"  # the names the current serving cert was made for
# Client certificates of the control-plane components run as processes of their own
# (`k8py server --components processes`): CN = the component's user, as kubeadm makes them.
COMPONENT_USERS = {"kube-scheduler": USER_KUBE_SCHEDULER, "kube-controller-manager": USER_KUBE_CONTROLLER_MANAGER}


@dataclass(frozen=True)
class Pki:
    """Paths of the cluster's PKI files and the agent bearer token."""

    dir: Path
    agent_token: str

    @property
    def ca_cert(self) -> Path:
        return self.dir / CA_CERT

    @property
    def ca_key(self) -> Path:
        return self.dir / CA_KEY

    @property
    def serving_cert(self) -> Path:
        return self.dir / SERVING_CERT

    @property
    def serving_key(self) -> Path:
        return self.dir / SERVING_KEY

    @property
    def admin_cert(self) -> Path:
        return self.dir / ADMIN_CERT

    @property
    def admin_key(self) -> Path:
        return self.dir / ADMIN_KEY

    @property
    def kubelet_client_cert(self) -> Path:
        return self.dir / KUBELET_CLIENT_CERT

    @property
    def kubelet_client_key(self) -> Path:
        return self.dir / KUBELET_CLIENT_KEY

    def component_cert(self, component: str) -> tuple[Path, Path]:
        """The client certificate and key of a control-plane component (COMPONENT_USERS)."""
        return self.dir / f"{component}.crt", self.dir / f"{component}.key"

    def kubelet_client_ssl_context(self) -> ssl.SSLContext:
        """TLS of the API server dialing a kubelet: verifies the kubelet's serving certificate
        against the CA (the address dialed must be in it) and presents the kubelet-client cert."""
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_cert))
        ctx.load_cert_chain(str(self.kubelet_client_cert), str(self.kubelet_client_key))
        return ctx

    def server_ssl_context(self) -> ssl.SSLContext:
        """TLS for the API server: serving cert, client certs optional, verified against the CA."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.ca_cert))
        ctx.load_cert_chain(str(self.serving_cert), str(self.serving_key))
        ctx.verify_mode = ssl.CERT_OPTIONAL
        return ctx


def _write(path: Path, data: bytes, private: bool = False) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def default_sans(advertise_address: str | None = None, cluster_domain: str = "cluster.local",
                 service_ip: str | None = None) -> list[str]:
    """Names and addresses the serving certificate is valid for."""
    names = ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
             f"kubernetes.default.svc.{cluster_domain}", "127.0.0.1", "::1"]
    for extra in (advertise_address, service_ip):
        if extra and extra not in names and extra not in ("0.0.0.0", "::"):
            names.append(extra)
    return names


def ensure_pki(data_dir: str | Path, sans: list[str] | None = None) -> Pki:
    """Load the PKI under data_dir/pki, generating whatever is missing.

    The serving cert is regenerated (with the same CA) when the wanted names change.
    """
    d = Path(data_dir) / "pki"
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    sans = sans or default_sans()
    want_sans = "\n".join(sans)
    ca_ok = (d / CA_CERT).exists() and (d / CA_KEY).exists()
    if not ca_ok:
        _gen_ca(d)
    sans_path = d / SANS_FILE
    if (not ca_ok or not (d / SERVING_CERT).exists() or not (d / SERVING_KEY).exists()
            or not sans_path.exists() or sans_path.read_text() != want_sans):
        _gen_leaf(d, SERVING_CERT, SERVING_KEY, cn="kube-apiserver", org=None, sans=sans, server=True)
        _write(sans_path, want_sans.encode())
    if not ca_ok or not (d / ADMIN_CERT).exists() or not (d / ADMIN_KEY).exists():
        _gen_leaf(d, ADMIN_CERT, ADMIN_KEY, cn="admin", org=GROUP_MASTERS, sans=[], server=False)
    if not ca_ok or not (d / KUBELET_CLIENT_CERT).exists() or not (d / KUBELET_CLIENT_KEY).exists():
        _gen_leaf(d, KUBELET_CLIENT_CERT, KUBELET_CLIENT_KEY, cn=KUBELET_CLIENT_CN, org=GROUP_MASTERS, sans=[],
                  server=False)
    for component, user in COMPONENT_USERS.items():
        if not ca_ok or not (d / f"{component}.crt").exists() or not (d / f"{component}.key").exists():
            _gen_leaf(d, f"{component}.crt", f"{component}.key", cn=user, org=None, sans=[], server=False)
    if not ca_ok or not (d / CA_HASH).exists():
        _write(d / CA_HASH, ca_cert_hash((d / CA_CERT).read_bytes()).encode())
    tok = d / AGENT_TOKEN
    if not tok.exists():
        _write(tok, secrets.token_urlsafe(32).encode(), private=True)
    return Pki(dir=d, agent_token=tok.read_text().strip())


def _new_key() -> ec.EllipticCurvePrivateKey:
    """A new P-256 key: every key of the cluster's PKI, the CA's included, is one."""
    from cryptography.hazmat.primitives.asymmetric import ec
    return ec.generate_private_key(ec.SECP256R1())


def _load_ca_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """The CA's key as `_gen_ca` wrote it (PEM, P-256)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    key = serialization.load_pem_private_key(path.read_bytes(), None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TypeError(f"{path}: not an EC private key (k8py's CA key is P-256)")
    return key


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    from cryptography.hazmat.primitives import serialization
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def _gen_ca(d: Path) -> None:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "k8py-ca")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    _write(d / CA_KEY, _key_pem(key), private=True)
    _write(d / CA_CERT, cert.public_bytes(serialization.Encoding.PEM))


def _gen_leaf(d: Path, cert_file: str, key_file: str, *, cn: str, org: str | None,
              sans: list[str], server: bool) -> None:
    cert, key = _sign_leaf(d, cn=cn, org=org, sans=sans, server=server)
    _write(d / key_file, key, private=True)
    _write(d / cert_file, cert)


@dataclass(frozen=True)
class NodeCredentials:
    """PEM material of one node: its client identity and its kubelet serving certificate."""

    ca_cert: bytes
    client_cert: bytes
    client_key: bytes
    serving_cert: bytes
    serving_key: bytes
    policy_cert: bytes = b""  # the node's NetworkPolicy enforcer (system:k8py:network-policy-agent:<node>)
    policy_key: bytes = b""

    def write(self, dir_: str | Path) -> Path:
        """Write them under dir_ (keys 0600); returns dir_."""
        d = Path(dir_)
        d.mkdir(parents=True, exist_ok=True)
        _write(d / CA_CERT, self.ca_cert)
        _write(d / "node.crt", self.client_cert)
        _write(d / "node.key", self.client_key, private=True)
        _write(d / "kubelet.crt", self.serving_cert)
        _write(d / "kubelet.key", self.serving_key, private=True)
        _write(d / "netpol.crt", self.policy_cert)
        _write(d / "netpol.key", self.policy_key, private=True)
        return d


def ca_cert_hash(ca_pem: bytes) -> str:
    """`sha256:<hex>` of the CA certificate's public key (SubjectPublicKeyInfo), as kubeadm's
    --discovery-token-ca-cert-hash: what `k8py agent --ca-cert-hash` pins."""
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    spki = x509.load_pem_x509_certificate(ca_pem).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(spki).hexdigest()


def node_user(node_name: str) -> str:
    return NODE_USER_PREFIX + node_name


def mint_node_credentials(pki_dir: str | Path, node_name: str, addresses: list[str] | tuple[str, ...] = ()) -> \
        NodeCredentials:
    """A node's credentials signed by the CA in `pki_dir` (the data dir's pki): a client
    certificate for `system:node:<node_name>` in `system:nodes` and a kubelet serving
    certificate for `node_name`, `addresses` and 127.0.0.1; and the client certificate of the
    node's NetworkPolicy enforcer (`system:k8py:network-policy-agent:<node_name>`)."""
    d = Path(pki_dir)
    client_cert, client_key = _sign_leaf(d, cn=node_user(node_name), org=GROUP_NODES, sans=[], server=False)
    sans = [node_name, *[a for a in addresses if a and a != node_name]]
    if "127.0.0.1" not in sans:
        sans.append("127.0.0.1")
    serving_cert, serving_key = _sign_leaf(d, cn=node_name, org=None, sans=sans, server=True)
    policy_cert, policy_key = _sign_leaf(d, cn=POLICY_AGENT_USER_PREFIX + node_name, org=GROUP_POLICY_AGENTS,
                                         sans=[], server=False)
    return NodeCredentials((d / CA_CERT).read_bytes(), client_cert, client_key, serving_cert, serving_key,
                           policy_cert, policy_key)


def _sign_leaf(d: Path, *, cn: str, org: str | None, sans: list[str], server: bool) -> tuple[bytes, bytes]:
    """(cert PEM, key PEM) of a new leaf signed by the CA in `d`."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_key = _load_ca_key(d / CA_KEY)
    ca_cert = x509.load_pem_x509_certificate((d / CA_CERT).read_bytes())
    key = _new_key()
    attrs = []
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    now = dt.datetime.now(dt.UTC)
    b = (x509.CertificateBuilder().subject_name(x509.Name(attrs)).issuer_name(ca_cert.subject)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=3650))
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.ExtendedKeyUsage(
             [ExtendedKeyUsageOID.SERVER_AUTH] if server else [ExtendedKeyUsageOID.CLIENT_AUTH]),
             critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                        critical=False))
    if sans:
        alt: list[x509.GeneralName] = []
        for s in sans:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(s)))
            except ValueError:
                alt.append(x509.DNSName(s))
        b = b.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    cert = b.sign(ca_key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)
