#!/usr/bin/env python3
"""The image specs oci.py builds (hack/images.sh passes the inputs as environment variables).

  specs.py IMAGE SPEC_OUT      IMAGE: graydebug | leaky-app | pause | coredns

graydebug follows the Dockerfile's final stage: its base layer is the cached mmdebstrap rootfs of
the stage's packages (BASE_LAYER, a descriptor JSON file), then one layer per COPY, whose sources
are mapped to this machine's files below; USER, ENTRYPOINT, CMD, ENV, WORKDIR and EXPOSE come from
the Dockerfile too. A COPY source without a mapping is an error, so the two cannot drift apart.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oci  # noqa: E402

E = os.environ


def need(var):
    v = E.get(var)
    if not v:
        oci.die(f"specs.py: {var} is not set")
    return v


def copy_source(src):
    """Where a Dockerfile COPY source comes from on this machine."""
    if src.startswith("/src/build/bin/"):
        return os.path.join(need("GRAYDEBUG_BIN"), os.path.basename(src))
    mapped = {"/go/bin/dlv": need("DLV"), "/go/bin/leaky-app": need("LEAKY_APP")}
    if src not in mapped:
        oci.die(f"Dockerfile COPY source {src} has no local mapping in hack/images/specs.py")
    return mapped[src]


def owner(chown):
    if not chown:
        return 0, 0
    u, _, g = chown.partition(":")
    if not u.isdigit() or (g and not g.isdigit()):
        oci.die(f"COPY --chown={chown}: use numeric ids (the image has no build-time user database)")
    return int(u), int(g or u)


def graydebug():
    df = oci.parse_dockerfile(need("DOCKERFILE"))
    with open(need("BASE_LAYER")) as f:
        base = json.load(f)
    layers = [{"blob": base, "created_by": f"FROM {df['base']} + apt-get install {' '.join(df['packages'])} "
               "(mmdebstrap --variant=minbase)"}]
    for c in df["copies"]:
        files = []
        uid, gid = owner(c["chown"])
        for src in c["srcs"]:
            host = copy_source(src)
            if not os.path.isfile(host):
                oci.die(f"{host} (for COPY {src}) does not exist; run make build / make deps")
            if c["dest"].endswith("/"):
                dest = c["dest"] + os.path.basename(src)
            elif len(c["srcs"]) == 1:
                dest = c["dest"]
            else:
                oci.die(f"{c['line']}: several sources need a destination ending in /")
            mode = int(c["chmod"], 8) if c["chmod"] else os.stat(host).st_mode & 0o7777
            files.append({"path": dest, "src": host, "mode": mode, "uid": uid, "gid": gid})
        layers.append({"files": files, "created_by": c["line"]})
    return layers, {
        "User": df["user"], "Entrypoint": df["entrypoint"], "Cmd": df["cmd"], "Env": df["env"],
        "WorkingDir": df["workdir"], "ExposedPorts": {p: {} for p in df["expose"]},
    }


PASSWD = "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"


def leaky_app():
    files = [
        {"path": "etc/passwd", "content": PASSWD, "mode": 0o644},
        {"path": "etc/group", "content": GROUP, "mode": 0o644},
        {"path": "root", "type": "dir", "mode": 0o700},
        {"path": "tmp", "type": "dir", "mode": 0o1777},
        {"path": "usr/local/bin/leaky-app", "src": need("LEAKY_APP"), "mode": 0o755},
    ]
    # Root by default like most Go images; pods may run it as any uid (the binary needs only /tmp).
    # It listens on all addresses in a pod; the binary's own default is 127.0.0.1:8080.
    return [{"files": files, "created_by": "leaky-app (go build -gcflags='all=-N -l', CGO_ENABLED=0)"}], {
        "Entrypoint": ["/usr/local/bin/leaky-app"], "Cmd": ["--listen=:8080"], "Env": [oci.DEFAULT_PATH],
        "WorkingDir": "/", "ExposedPorts": {"8080/tcp": {}},
    }


def pause():
    files = [{"path": "pause", "src": need("PAUSE_BIN"), "mode": 0o755}]
    return [{"files": files, "created_by": "hack/images/pause.c (gcc -static -Os)"}], {
        "User": "65535:65535", "Entrypoint": ["/pause"], "Env": [oci.DEFAULT_PATH], "WorkingDir": "/",
    }


def coredns():
    files = [{"path": "coredns", "src": need("COREDNS_BIN"), "mode": 0o755},
             {"path": "etc/passwd", "content": PASSWD, "mode": 0o644},
             {"path": "etc/group", "content": GROUP, "mode": 0o644},
             {"path": "tmp", "type": "dir", "mode": 0o1777}]
    # Root (with only NET_BIND_SERVICE left by the node's pod spec): a non-root user would need a
    # file capability on the binary to bind port 53.
    return [{"files": files, "created_by": "coredns (hack/tools/coredns)"}], {
        "Entrypoint": ["/coredns"], "Env": [oci.DEFAULT_PATH], "WorkingDir": "/",
        "ExposedPorts": {"53/tcp": {}, "53/udp": {}},
    }


def main(argv):
    if len(argv) != 2 or argv[0] not in ("graydebug", "leaky-app", "pause", "coredns"):
        oci.die("usage: specs.py graydebug|leaky-app|pause|coredns SPEC_OUT")
    layers, config = {"graydebug": graydebug, "leaky-app": leaky_app, "pause": pause, "coredns": coredns}[argv[0]]()
    spec = {"name": need("IMAGE_NAME"), "out": need("IMAGE_OUT"), "blobs": need("BLOBS"), "layers": layers,
            "config": config}
    with open(argv[1], "w") as f:
        json.dump(spec, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
