#!/usr/bin/env python3
"""Build k8py's test/lab OCI images from Debian packages and push them to a registry.

Images (each pushed as library/<name>:<tag>, so that docker.io/library/<name> resolves
through a registry mirror):
  busybox  latest 1.28 1.27.2   Debian busybox-static with applet symlinks (one tiny layer)
  stress   latest               busybox + a static memory/CPU hog (also polinux/stress)
  nginx    latest 1.14.2 1.16.1 Debian minbase + nginx-light, logs to stdout/stderr
  mysql    latest 8 5.6         Debian minbase + MariaDB with an official-style entrypoint
  hpa-example latest            Debian minbase + apache2 + mod_php serving a CPU-bound index.php
                                (the HorizontalPodAutoscaler walkthrough's php-apache), pushed as
                                hpa-example:latest so that registry.k8s.io/hpa-example resolves

Invariants: everything is cached under --cache (default /var/cache/k8py/images), keyed by
a hash of the recipe (the build inputs), so a second run only pushes (and pushing skips
blobs the registry already has). The Debian minbase rootfs is built once with debootstrap
and shared: nginx and mysql are that base layer plus one layer each, computed as the
upper directory of an overlay mount over the base (overlay whiteouts converted to OCI
`.wh.` files). Uses only the standard library, so it runs with any python3.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECIPE_VERSION = "3"
SUITE = "bookworm"
ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, "amd64")

TAGS: dict[str, list[str]] = {
    "busybox": ["latest", "1.28", "1.27.2"],
    "stress": ["latest"],
    "nginx": ["latest", "1.14.2", "1.16.1"],
    "mysql": ["latest", "8", "5.6"],
    "tcpdump": ["latest"],
    "hpa-example": ["latest"],
}
EXTRA_REPOS: dict[str, list[str]] = {"stress": ["polinux/stress"]}
# Images of other registries than docker.io: pushed under their own repository path, which a
# registry mirror maps (registry.k8s.io/hpa-example -> <mirror>/v2/hpa-example/...).
NOT_LIBRARY: dict[str, str] = {"hpa-example": "registry.k8s.io"}

PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

NGINX_CONF = """\
user www-data;
worker_processes 1;
pid /run/nginx.pid;
error_log stderr notice;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    log_format main '$remote_addr - $remote_user [$time_local] "$request" '
                    '$status $body_bytes_sent "$http_referer" '
                    '"$http_user_agent" "$http_x_forwarded_for"';
    access_log /dev/stdout main;
    sendfile on;
    keepalive_timeout 65;
    include /etc/nginx/conf.d/*.conf;
}
"""

NGINX_DEFAULT_SITE = """\
server {
    listen 80;
    listen [::]:80;
    server_name localhost;
    location / {
        root /usr/share/nginx/html;
        index index.html index.htm;
    }
    error_page 500 502 503 504 /50x.html;
    location = /50x.html { root /usr/share/nginx/html; }
}
"""

WELCOME = """\
<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
<style>
html { color-scheme: light dark; }
body { width: 35em; margin: 0 auto;
font-family: Tahoma, Verdana, Arial, sans-serif; }
</style>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working. Further configuration is required.</p>

<p>For online documentation and support please refer to
<a href="http://nginx.org/">nginx.org</a>.<br/>
Commercial support is available at
<a href="http://nginx.com/">nginx.com</a>.</p>

<p><em>Thank you for using nginx.</em></p>
</body>
</html>
"""

MYSQL_ENTRYPOINT = r"""#!/bin/bash
# Official-image-style entrypoint for MariaDB: initialize the datadir on first start
# (honouring MYSQL_ROOT_PASSWORD, MYSQL_ALLOW_EMPTY_PASSWORD, MYSQL_RANDOM_ROOT_PASSWORD,
# MYSQL_DATABASE, MYSQL_USER, MYSQL_PASSWORD), then exec mysqld as PID 1.
set -eo pipefail
log() { echo "$(date -u +'%Y-%m-%d %H:%M:%S') [Note] [Entrypoint]: $*"; }
err() { echo "$(date -u +'%Y-%m-%d %H:%M:%S') [ERROR] [Entrypoint]: $*" >&2; exit 1; }

if [ "${1:0:1}" = '-' ]; then set -- mysqld "$@"; fi
if [ "$1" != 'mysqld' ] && [ "$1" != 'mariadbd' ]; then exec "$@"; fi

DATADIR=/var/lib/mysql
mkdir -p "$DATADIR" /run/mysqld
chown -R mysql:mysql /run/mysqld
if [ ! -d "$DATADIR/mysql" ]; then
    if [ -z "$MYSQL_ROOT_PASSWORD" ] && [ -z "$MYSQL_ALLOW_EMPTY_PASSWORD" ] && [ -z "$MYSQL_RANDOM_ROOT_PASSWORD" ]; then
        err "Database is uninitialized and password option is not specified
    You need to specify one of MYSQL_ROOT_PASSWORD, MYSQL_ALLOW_EMPTY_PASSWORD and MYSQL_RANDOM_ROOT_PASSWORD"
    fi
    chown -R mysql:mysql "$DATADIR"
    log "Initializing database files"
    mariadb-install-db --user=mysql --datadir="$DATADIR" --skip-test-db --auth-root-authentication-method=normal >/dev/null
    log "Database files initialized"
    "$@" --user=mysql --skip-networking --socket=/run/mysqld/init.sock &
    pid=$!
    for i in $(seq 60); do
        if mariadb --protocol=socket -uroot -S /run/mysqld/init.sock -e 'SELECT 1' >/dev/null 2>&1; then break; fi
        sleep 1
    done
    if [ -n "$MYSQL_RANDOM_ROOT_PASSWORD" ]; then
        MYSQL_ROOT_PASSWORD="$(head -c 18 /dev/urandom | base64)"
        log "GENERATED ROOT PASSWORD: $MYSQL_ROOT_PASSWORD"
    fi
    sql() { mariadb --protocol=socket -uroot -S /run/mysqld/init.sock "$@"; }
    esc() { printf '%s' "$1" | sed "s/\\\\/\\\\\\\\/g; s/'/\\\\'/g"; }
    rootpw="$(esc "$MYSQL_ROOT_PASSWORD")"
    sql <<-EOSQL
		SET @@SESSION.SQL_LOG_BIN=0;
		DELETE FROM mysql.user WHERE user='' OR (user='root' AND host NOT IN ('localhost'));
		ALTER USER 'root'@'localhost' IDENTIFIED BY '${rootpw}';
		CREATE USER 'root'@'%' IDENTIFIED BY '${rootpw}';
		GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;
		FLUSH PRIVILEGES;
	EOSQL
    if [ -n "$MYSQL_DATABASE" ]; then
        log "Creating database ${MYSQL_DATABASE}"
        sql -p"$MYSQL_ROOT_PASSWORD" -e "CREATE DATABASE IF NOT EXISTS \`${MYSQL_DATABASE}\`;"
    fi
    if [ -n "$MYSQL_USER" ] && [ -n "$MYSQL_PASSWORD" ]; then
        log "Creating user ${MYSQL_USER}"
        userpw="$(esc "$MYSQL_PASSWORD")"
        sql -p"$MYSQL_ROOT_PASSWORD" -e "CREATE USER '${MYSQL_USER}'@'%' IDENTIFIED BY '${userpw}';"
        if [ -n "$MYSQL_DATABASE" ]; then
            sql -p"$MYSQL_ROOT_PASSWORD" -e "GRANT ALL ON \`${MYSQL_DATABASE}\`.* TO '${MYSQL_USER}'@'%';"
        fi
    fi
    kill "$pid"; wait "$pid" || true
    log "MySQL init process done. Ready for start up."
fi
exec "$@" --user=mysql
"""  # noqa: E501 - the image's script, kept byte for byte (its text is part of the image)

MYSQL_CNF = """\
# k8py mysql image: listen on all addresses, realistic default memory use.
[mysqld]
bind-address = 0.0.0.0
port = 3306
datadir = /var/lib/mysql
socket = /run/mysqld/mysqld.sock
skip-name-resolve
innodb_buffer_pool_size = 128M
innodb_log_file_size = 48M
performance_schema = ON
[client]
socket = /run/mysqld/mysqld.sock
"""

# The HPA walkthrough's page: each request does a million square roots (CPU-bound, ~10 ms of
# one core), then answers "OK!". Written for k8py.
HPA_INDEX_PHP = """\
<?php
// k8py hpa-example: spend CPU on every request, so that load shows up as CPU use.
$acc = 0.0001;
for ($n = 0; $n < 1000000; $n++) {
    $acc += sqrt($acc);
}
echo "OK!";
"""

# Runs apache2 in the foreground as PID 1 with Debian's environment (envvars).
HPA_FOREGROUND = """\
#!/bin/sh
set -e
. /etc/apache2/envvars
mkdir -p "$APACHE_RUN_DIR" "$APACHE_LOCK_DIR" "$APACHE_LOG_DIR"
rm -f "$APACHE_PID_FILE"
exec apache2 -DFOREGROUND "$@"
"""


def log(msg: str) -> None:
    print(f"[images {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sh(*args: str, **kw: object) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), check=True, **kw)  # type: ignore[call-overload]


def debian_mirror() -> str:
    """The Debian archive URL apt on this machine uses (deb822 or one-line sources)."""
    candidates = [Path("/etc/apt/sources.list")] + sorted(Path("/etc/apt/sources.list.d").glob("*"))
    for p in candidates:
        try:
            text = p.read_text()
        except OSError:
            continue
        for m in re.finditer(r"URIs:\s*(\S+)", text):
            if "security" not in m.group(1) and re.search(r"/debian/?$", m.group(1)):
                return m.group(1)
        for line in text.splitlines():
            parts = line.split()
            if parts[:1] == ["deb"]:
                uri = next((x for x in parts[1:] if "://" in x), "")
                if re.search(r"/debian/?$", uri) and "security" not in uri:
                    return uri
    return "http://deb.debian.org/debian"


def key_of(*parts: str) -> str:
    return hashlib.sha256("\0".join((RECIPE_VERSION,) + parts).encode()).hexdigest()[:16]


# ---------------------------------------------------------------- layers and blobs


class Blobs:
    """A content-addressed blob directory (OCI layout's blobs/sha256)."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "blobs" / "sha256"
        self.dir.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        return self.dir / digest.split(":", 1)[1]

    def put_bytes(self, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        p = self.path(digest)
        if not p.exists():
            tmp = p.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.rename(p)
        return digest


def whiteouts_to_oci(upper: Path) -> None:
    """Convert overlayfs whiteouts (char 0/0, opaque xattr) in an upper dir to OCI form."""
    for dirpath, dirnames, filenames in os.walk(upper):
        d = Path(dirpath)
        try:
            if os.getxattr(d, "trusted.overlay.opaque") == b"y":
                os.removexattr(d, "trusted.overlay.opaque")
                (d / ".wh..wh..opq").touch()
        except OSError:
            pass
        for name in filenames + dirnames:
            p = d / name
            st = os.lstat(p)
            if (st.st_mode & 0o170000) == 0o020000 and st.st_rdev == 0:
                p.unlink()
                (d / f".wh.{name}").touch()


def make_layer(src: Path, blobs: Blobs, cache_file: Path) -> dict:
    """tar+gzip a directory into a layer blob; returns {digest, size, diff_id}. Cached."""
    if cache_file.exists():
        info = json.loads(cache_file.read_text())
        if blobs.path(info["digest"]).exists():
            return info
    log(f"packing layer from {src}")
    proc = subprocess.Popen(
        ["tar", "--numeric-owner", "--sort=name", "--xattrs", "--xattrs-include=security.capability",
         "--mtime=2024-01-01 00:00Z", "-C", str(src), "-cf", "-", "."],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    diff = hashlib.sha256()
    tmp = blobs.dir / f"tmp-{os.getpid()}"
    with open(tmp, "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as gz:
            while chunk := proc.stdout.read(1 << 20):
                diff.update(chunk)
                gz.write(chunk)
    if proc.wait() != 0:
        raise SystemExit(f"tar failed for {src}")
    h = hashlib.sha256()
    with open(tmp, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    digest = "sha256:" + h.hexdigest()
    tmp.rename(blobs.path(digest))
    info = {"digest": digest, "size": blobs.path(digest).stat().st_size, "diff_id": "sha256:" + diff.hexdigest()}
    cache_file.write_text(json.dumps(info))
    return info


def make_image(blobs: Blobs, layers: list[dict], cfg: dict) -> dict:
    """Write the OCI config and manifest blobs; returns the manifest descriptor."""
    config = {
        "created": "2024-01-01T00:00:00Z",
        "architecture": ARCH,
        "os": "linux",
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": [layer["diff_id"] for layer in layers]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "k8py scripts/images/build.py"}
                    for _ in layers],
    }
    cdata = json.dumps(config, sort_keys=True).encode()
    cdigest = blobs.put_bytes(cdata)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdigest, "size": len(cdata)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer["digest"],
                    "size": layer["size"]} for layer in layers],
    }
    mdata = json.dumps(manifest, sort_keys=True).encode()
    return {"mediaType": manifest["mediaType"], "digest": blobs.put_bytes(mdata), "size": len(mdata)}


# ---------------------------------------------------------------- rootfs steps


POLICY_RC = "#!/bin/sh\nexit 101\n"


class Chroot:
    """An overlay mount over the base rootfs with /proc, /dev mounted, for apt installs."""

    def __init__(self, base: Path, work: Path) -> None:
        self.base, self.work = base, work
        self.upper, self.wdir, self.merged = work / "upper", work / "work", work / "merged"
        self.mounts: list[Path] = []

    def __enter__(self) -> Chroot:
        for d in (self.upper, self.wdir, self.merged):
            d.mkdir(parents=True, exist_ok=True)
        sh("mount", "-t", "overlay", "k8py-imgbuild", "-o",
           f"lowerdir={self.base},upperdir={self.upper},workdir={self.wdir}", str(self.merged))
        self.mounts.append(self.merged)
        for fs, target, opts in (("proc", "proc", []), ("devtmpfs", "dev", []), ("sysfs", "sys", ["-o", "ro"])):
            t = self.merged / target
            if fs == "devtmpfs":
                sh("mount", "--bind", "/dev", str(t))
            else:
                sh("mount", "-t", fs, *opts, f"k8py-{fs}", str(t))
            self.mounts.append(t)
        shutil.copy("/etc/resolv.conf", self.merged / "etc/resolv.conf")
        return self

    def run(self, script: str) -> None:
        env = {"PATH": PATH_ENV.split("=", 1)[1], "DEBIAN_FRONTEND": "noninteractive", "LANG": "C.UTF-8",
               "HOME": "/root"}
        sh("chroot", str(self.merged), "/bin/sh", "-ec", script, env=env)

    def __exit__(self, *exc: object) -> None:
        for m in reversed(self.mounts):
            subprocess.run(["umount", "-l", str(m)], check=False)
        shutil.rmtree(self.wdir, ignore_errors=True)


def build_base(cache: Path, mirror: str) -> Path:
    key = key_of("base", SUITE, ARCH, mirror)
    d = cache / f"base-{key}"
    rootfs = d / "rootfs"
    if (d / "done").exists():
        return rootfs
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    log(f"debootstrap --variant=minbase {SUITE} from {mirror}")
    t0 = time.monotonic()
    sh("debootstrap", "--variant=minbase", f"--arch={ARCH}", SUITE, str(rootfs), mirror,
       stdout=subprocess.DEVNULL)
    (rootfs / "usr/sbin/policy-rc.d").write_text(POLICY_RC)
    (rootfs / "usr/sbin/policy-rc.d").chmod(0o755)
    (rootfs / "etc/apt/sources.list").write_text(f"deb {mirror} {SUITE} main\n")
    for p in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for f in (rootfs / p).glob("*"):
            if f.is_file():
                f.unlink()
    for p in ("etc/hostname", "etc/resolv.conf"):
        (rootfs / p).unlink(missing_ok=True)
    (rootfs / "etc/hosts").write_text("127.0.0.1\tlocalhost\n")
    (d / "done").write_text(f"{time.monotonic() - t0:.1f}s\n")
    log(f"base rootfs built in {time.monotonic() - t0:.1f}s")
    return rootfs


def build_overlay_layer(name: str, cache: Path, base: Path, install: str, key: str) -> Path:
    """Run an install script in an overlay over the base; returns the OCI-form upper dir."""
    d = cache / f"{name}-{key}"
    if (d / "done").exists():
        return d / "upper"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    log(f"building {name} layer")
    t0 = time.monotonic()
    with Chroot(base, d) as ch:
        ch.run(install + "\napt-get clean\n"
               "rm -rf /var/lib/apt/lists/* /var/cache/debconf/*-old /var/log/apt /var/log/dpkg.log /tmp/*\n")
        (ch.merged / "etc/resolv.conf").unlink(missing_ok=True)
    for m in ("proc", "dev", "sys"):
        (d / "upper" / m).rmdir() if (d / "upper" / m).is_dir() and not any((d / "upper" / m).iterdir()) else None
    whiteouts_to_oci(d / "upper")
    (d / "done").write_text(f"{time.monotonic() - t0:.1f}s\n")
    log(f"{name} layer built in {time.monotonic() - t0:.1f}s")
    return d / "upper"


NSLOOKUP_SRC = HERE / "nslookup.c"


def busybox_key(mirror: str) -> str:
    return key_of("busybox", mirror, hashlib.sha256(NSLOOKUP_SRC.read_bytes()).hexdigest())


def build_busybox_dir(cache: Path, base: Path, mirror: str) -> Path:
    key = busybox_key(mirror)
    d = cache / f"busybox-{key}"
    root = d / "rootfs"
    if (d / "done").exists():
        return root
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    with Chroot(base, d / "ov") as ch:
        ch.run("apt-get update -qq && apt-get install -y -qq --no-install-recommends busybox-static >/dev/null")
        busybox = ch.merged / "bin/busybox"
        for sub in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "tmp", "root", "var/log", "var/run",
                    "home", "proc", "sys", "dev", "run"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        shutil.copy2(busybox, root / "bin/busybox")
    shutil.rmtree(d / "ov", ignore_errors=True)
    out = subprocess.run([str(root / "bin/busybox"), "--list-full"], check=True, capture_output=True, text=True)
    for applet in out.stdout.split():
        target = root / applet
        if applet == "bin/busybox" or target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink("/bin/busybox", target)
    # nslookup through the libc resolver (search list + ndots), as busybox 1.28 had it
    nslookup = root / "usr/bin/nslookup"
    if nslookup.is_symlink() or nslookup.exists():
        nslookup.unlink()
    sh("gcc", "-static", "-O2", "-o", str(nslookup), str(NSLOOKUP_SRC), "-lresolv")
    sh("strip", str(nslookup))
    (root / "tmp").chmod(0o1777)
    (root / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
        "www-data:x:33:33:www-data:/var/www:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\n")
    (root / "etc/group").write_text("root:x:0:\ndaemon:x:1:\nwww-data:x:33:\nnogroup:x:65534:\n")
    (root / "etc/hosts").write_text("127.0.0.1\tlocalhost\n")
    (d / "done").touch()
    return root


def build_stress_dir(cache: Path) -> Path:
    src = (HERE / "stress.c").read_bytes()
    d = cache / f"stress-{key_of('stress', hashlib.sha256(src).hexdigest())}"
    root = d / "rootfs"
    if (d / "done").exists():
        return root
    shutil.rmtree(d, ignore_errors=True)
    (root / "usr/bin").mkdir(parents=True)
    sh("gcc", "-static", "-O2", "-o", str(root / "usr/bin/stress"), str(HERE / "stress.c"))
    sh("strip", str(root / "usr/bin/stress"))
    (d / "done").touch()
    return root


NGINX_INSTALL = f"""
apt-get update -qq
apt-get install -y -qq --no-install-recommends nginx-light >/dev/null
cat > /etc/nginx/nginx.conf <<'EOF'
{NGINX_CONF}EOF
rm -f /etc/nginx/sites-enabled/default
mkdir -p /etc/nginx/conf.d /usr/share/nginx/html
cat > /etc/nginx/conf.d/default.conf <<'EOF'
{NGINX_DEFAULT_SITE}EOF
cat > /usr/share/nginx/html/index.html <<'EOF'
{WELCOME}EOF
printf '<html><body><h1>50x</h1></body></html>\\n' > /usr/share/nginx/html/50x.html
ln -sf /dev/stdout /var/log/nginx/access.log
ln -sf /dev/stderr /var/log/nginx/error.log
"""

TCPDUMP_INSTALL = """
apt-get update -qq
apt-get install -y -qq --no-install-recommends tcpdump >/dev/null
"""

MYSQL_INSTALL = f"""
apt-get update -qq
apt-get install -y -qq --no-install-recommends mariadb-server mariadb-client >/dev/null
rm -rf /var/lib/mysql/* /etc/mysql/mariadb.conf.d/50-server.cnf
mkdir -p /var/lib/mysql /run/mysqld /docker-entrypoint-initdb.d
chown mysql:mysql /var/lib/mysql /run/mysqld
cat > /etc/mysql/mariadb.conf.d/90-k8py.cnf <<'EOF'
{MYSQL_CNF}EOF
cat > /usr/local/bin/docker-entrypoint.sh <<'EOF_ENTRY'
{MYSQL_ENTRYPOINT}EOF_ENTRY
chmod 755 /usr/local/bin/docker-entrypoint.sh
"""

HPA_INSTALL = f"""
apt-get update -qq
apt-get install -y -qq --no-install-recommends apache2 libapache2-mod-php >/dev/null
rm -f /var/www/html/index.html
cat > /var/www/html/index.php <<'EOF'
{HPA_INDEX_PHP}EOF
printf 'ServerName localhost\\n' > /etc/apache2/conf-available/servername.conf
a2enconf -q servername
ln -sf /dev/stdout /var/log/apache2/access.log
ln -sf /dev/stderr /var/log/apache2/error.log
ln -sf /dev/stdout /var/log/apache2/other_vhosts_access.log
cat > /usr/local/bin/apache2-foreground <<'EOF'
{HPA_FOREGROUND}EOF
chmod 755 /usr/local/bin/apache2-foreground
"""

# Debian minbase + one layer each: the install script and the image config.
OVERLAY_IMAGES: dict[str, tuple[str, dict]] = {
    "nginx": (NGINX_INSTALL, {
        "Env": [PATH_ENV, "NGINX_VERSION=1.22.1"], "Cmd": ["nginx", "-g", "daemon off;"],
        "ExposedPorts": {"80/tcp": {}}, "StopSignal": "SIGQUIT", "WorkingDir": "/"}),
    "mysql": (MYSQL_INSTALL, {
        "Env": [PATH_ENV], "Entrypoint": ["docker-entrypoint.sh"], "Cmd": ["mysqld"],
        "ExposedPorts": {"3306/tcp": {}}, "Volumes": {"/var/lib/mysql": {}}, "WorkingDir": "/"}),
    "tcpdump": (TCPDUMP_INSTALL, {  # the course's packet-capture DaemonSet
        "Env": [PATH_ENV], "Entrypoint": ["tcpdump"], "Cmd": ["-i", "any", "-n"], "WorkingDir": "/"}),
    "hpa-example": (HPA_INSTALL, {  # apache's graceful stop is SIGWINCH
        "Env": [PATH_ENV], "Cmd": ["apache2-foreground"], "ExposedPorts": {"80/tcp": {}},
        "StopSignal": "SIGWINCH", "WorkingDir": "/var/www/html"}),
}


def repo_path(name: str) -> str:
    """The repository an image is pushed to: library/<name> for docker.io's, else <name>."""
    return name if name in NOT_LIBRARY else f"library/{name}"


def public_repo(name: str) -> str:
    return f"{NOT_LIBRARY.get(name, 'docker.io')}/{repo_path(name)}"


# ---------------------------------------------------------------- registry push


def push(registry: str, repo: str, tags: list[str], blobs: Blobs, manifest_desc: dict) -> None:
    base = registry.rstrip("/")
    if "://" not in base:
        base = "http://" + base
    mdata = blobs.path(manifest_desc["digest"]).read_bytes()
    manifest = json.loads(mdata)
    for desc in [manifest["config"]] + manifest["layers"]:
        digest = desc["digest"]
        try:
            urllib.request.urlopen(urllib.request.Request(f"{base}/v2/{repo}/blobs/{digest}", method="HEAD"))
            continue
        except urllib.error.HTTPError as e:
            if e.code != 404:
                raise
        resp = urllib.request.urlopen(urllib.request.Request(f"{base}/v2/{repo}/blobs/uploads/", method="POST",
                                                             data=b""))
        loc = resp.headers["Location"]
        if loc.startswith("/"):
            loc = base + loc
        sep = "&" if "?" in loc else "?"
        with open(blobs.path(digest), "rb") as f:
            req = urllib.request.Request(f"{loc}{sep}digest={digest}", method="PUT", data=f,
                                         headers={"Content-Type": "application/octet-stream",
                                                  "Content-Length": str(desc["size"])})
            urllib.request.urlopen(req)
    for tag in tags:
        req = urllib.request.Request(f"{base}/v2/{repo}/manifests/{tag}", method="PUT", data=mdata,
                                     headers={"Content-Type": manifest_desc["mediaType"]})
        urllib.request.urlopen(req)


# ---------------------------------------------------------------- main


def build_all(cache: Path, only: list[str]) -> dict[str, dict]:
    mirror = debian_mirror()
    t0 = time.monotonic()
    blobs = Blobs(cache / "oci")
    layer_cache = cache / "layers"
    layer_cache.mkdir(parents=True, exist_ok=True)
    out: dict[str, dict] = {}
    need_base = bool({"busybox", "stress", *OVERLAY_IMAGES} & set(only))
    base = build_base(cache, mirror) if need_base else None
    if {"busybox", "stress"} & set(only):
        assert base is not None
        bb = build_busybox_dir(cache, base, mirror)
        bb_layer = make_layer(bb, blobs, layer_cache / f"busybox-{busybox_key(mirror)}.json")
        bb_cfg = {"Env": [PATH_ENV], "Cmd": ["sh"]}
        if "busybox" in only:
            out["busybox"] = make_image(blobs, [bb_layer], bb_cfg)
        if "stress" in only:
            st = build_stress_dir(cache)
            st_layer = make_layer(st, blobs, layer_cache / f"{st.parent.name}.json")
            out["stress"] = make_image(blobs, [bb_layer, st_layer],
                                       {"Env": [PATH_ENV], "Entrypoint": ["/usr/bin/stress"], "Cmd": ["--help"]})
    overlays = [name for name in OVERLAY_IMAGES if name in only]
    if overlays:
        assert base is not None
        base_layer = make_layer(base, blobs, layer_cache / f"{base.parent.name}.json")
        for name in overlays:
            install, cfg = OVERLAY_IMAGES[name]
            key = key_of(name, mirror, install)
            up = build_overlay_layer(name, cache, base, install, key)
            layer = make_layer(up, blobs, layer_cache / f"{name}-{key}.json")
            out[name] = make_image(blobs, [base_layer, layer], cfg)
    # an OCI image layout index for `k8py image load` and inspection
    index = {"schemaVersion": 2, "manifests": [
        dict(desc, annotations={"org.opencontainers.image.ref.name": f"{public_repo(name)}:{tag}"})
        for name, desc in out.items() for tag in TAGS[name]]}
    (cache / "oci" / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (cache / "oci" / "index.json").write_text(json.dumps(index, indent=1))
    log(f"images ready in {time.monotonic() - t0:.1f}s")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", default=os.environ.get("K8PY_IMAGE_CACHE", "/var/cache/k8py/images"))
    ap.add_argument("--push", default="", help="registry host:port to push to (e.g. 127.0.0.1:5000)")
    ap.add_argument("--sizes", action="store_true", help="print image sizes")
    ap.add_argument("images", nargs="*", default=list(TAGS))
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("build.py needs root (debootstrap, chroot, overlay mounts)", file=sys.stderr)
        return 2
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    lock = open(cache / ".lock", "w")
    import fcntl
    fcntl.flock(lock, fcntl.LOCK_EX)  # one builder at a time (parallel test sessions)
    out = build_all(cache, args.images)
    blobs = Blobs(cache / "oci")
    if args.push:
        t0 = time.monotonic()
        for name, desc in out.items():
            own = repo_path(name)
            for repo in [own] + EXTRA_REPOS.get(name, []):
                push(args.push, repo, TAGS[name] if repo == own else ["latest"], blobs, desc)
        log(f"pushed to {args.push} in {time.monotonic() - t0:.1f}s")
    for name, desc in out.items():
        m = json.loads(blobs.path(desc["digest"]).read_bytes())
        size = sum(layer["size"] for layer in m["layers"])
        print(json.dumps({"image": name, "manifest": desc["digest"], "compressed_bytes": size}) if args.sizes
              else f"{name} {desc['digest']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
