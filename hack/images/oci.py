#!/usr/bin/env python3
"""Daemonless, deterministic OCI image tarballs for graydebug (hack/images.sh drives it).

  oci.py dockerfile DOCKERFILE           the final stage as JSON (base, suite, packages, copies,
                                         user, entrypoint, cmd, env, workdir)
  oci.py rootfs-layer ROOTFS OUT         a directory as one layer (OUT: gzip blob); prints its
                                         descriptor JSON (digest, size, diff_id)
  oci.py build SPEC                      an image tarball from a JSON spec (see build()); skipped when
                                         the tarball's .key stamp matches the inputs; prints its path

Every tar written here is deterministic: entries sorted by name, one fixed mtime (SOURCE_DATE_EPOCH),
numeric owners without user/group names, no xattrs, gzip without a name or timestamp. The output is
an OCI image layout (oci-layout, index.json, blobs/sha256/...) plus a docker-archive manifest.json,
so `ctr images import` and `docker load` both accept it.
"""
import gzip
import hashlib
import io
import json
import os
import shlex
import stat
import sys
import tarfile

EPOCH = int(os.environ.get("SOURCE_DATE_EPOCH", "1747699200"))  # 2025-05-20, any fixed value works
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def die(msg):
    print(f"oci.py: {msg}", file=sys.stderr)
    sys.exit(1)


# --- Dockerfile ------------------------------------------------------------------------------
def dockerfile_instructions(path):
    """(instruction, argument text) of every line, continuations joined, comments dropped."""
    out, cur = [], ""
    with open(path) as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not cur and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if cur and line.lstrip().startswith("#"):
                continue  # a comment inside a continued instruction
            if line.rstrip().endswith("\\"):
                cur += line.rstrip()[:-1] + " "
                continue
            cur += line
            word, _, rest = cur.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            cur = ""
    if cur:
        word, _, rest = cur.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def exec_form(text):
    text = text.strip()
    if text.startswith("["):
        return json.loads(text)
    return ["/bin/sh", "-c", text]


def parse_dockerfile(path):
    stages, cur = [], None
    for ins, arg in dockerfile_instructions(path):
        if ins == "FROM":
            words = arg.split()
            words = [w for w in words if not w.startswith("--")]
            cur = {"base": words[0], "name": words[2] if len(words) >= 3 and words[1].upper() == "AS" else "",
                   "ins": []}
            stages.append(cur)
        elif cur is not None:
            cur["ins"].append((ins, arg))
    if not stages:
        die(f"{path}: no FROM")
    final = stages[-1]
    base = final["base"]
    repo, _, tag = base.partition(":")
    if repo not in ("debian", "docker.io/library/debian") or not tag:
        die(f"{path}: final stage FROM {base}: only debian:<suite>[-slim] bases can be built here")
    res = {"base": base, "suite": tag.split("-")[0], "slim": tag.endswith("-slim"), "packages": [],
           "copies": [], "user": "", "entrypoint": [], "cmd": [], "env": [DEFAULT_PATH], "workdir": "/",
           "expose": []}
    for ins, arg in final["ins"]:
        if ins == "RUN":
            for cmd in arg.split("&&"):
                w = shlex.split(cmd)
                if w[:2] == ["apt-get", "update"]:
                    continue
                if w[:2] == ["apt-get", "install"]:
                    res["packages"] += [p for p in w[2:] if not p.startswith("-")]
                elif w[:2] == ["rm", "-rf"] and all(p.startswith("/var/lib/apt/lists") for p in w[2:]):
                    continue  # mmdebstrap leaves no apt lists behind
                else:
                    die(f"{path}: final stage RUN {cmd.strip()!r} is not apt-get update/install: "
                        "teach hack/images/oci.py about it")
        elif ins in ("COPY", "ADD"):
            w = shlex.split(arg) if not arg.startswith("[") else json.loads(arg)
            flags = {}
            while w and w[0].startswith("--"):
                k, _, v = w.pop(0)[2:].partition("=")
                flags[k] = v
            if ins == "ADD" or set(flags) - {"from", "chown", "chmod"}:
                die(f"{path}: {ins} {arg}: only COPY [--from] [--chown] [--chmod] is supported")
            res["copies"].append({"from": flags.get("from", ""), "srcs": w[:-1], "dest": w[-1],
                                  "chown": flags.get("chown", ""), "chmod": flags.get("chmod", ""),
                                  "line": "COPY " + " ".join(arg.split())})
        elif ins == "USER":
            res["user"] = arg
        elif ins == "ENTRYPOINT":
            res["entrypoint"] = exec_form(arg)
            res["cmd"] = []  # ENTRYPOINT resets an inherited CMD
        elif ins == "CMD":
            res["cmd"] = exec_form(arg)
        elif ins == "WORKDIR":
            res["workdir"] = os.path.join(res["workdir"], arg)
        elif ins == "ENV":
            for kv in shlex.split(arg):
                k = kv.split("=", 1)[0]
                res["env"] = [e for e in res["env"] if e.split("=", 1)[0] != k] + [kv]
        elif ins == "EXPOSE":
            res["expose"] += [p if "/" in p else p + "/tcp" for p in arg.split()]
        elif ins in ("ARG", "LABEL"):
            continue
        else:
            die(f"{path}: final stage {ins} is not supported by hack/images/oci.py")
    return res


# --- tar layers --------------------------------------------------------------------------------
class HashWriter:
    """A file object that hashes what is written through it."""

    def __init__(self, f):
        self.f, self.h, self.n = f, hashlib.sha256(), 0

    def write(self, b):
        self.h.update(b)
        self.n += len(b)
        return self.f.write(b) if self.f else len(b)

    def flush(self):
        if self.f:
            self.f.flush()


def _info(name, typ, mode, uid=0, gid=0, size=0, linkname=""):
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.uid, ti.gid, ti.size, ti.linkname = typ, mode, uid, gid, size, linkname
    ti.mtime, ti.uname, ti.gname = EPOCH, "", ""
    return ti


def write_layer(out_path, entries):
    """entries: sorted list of (TarInfo, data-bytes | source-path | None). Writes a gzip blob to
    out_path; returns {digest, size, diff_id}."""
    tmp = out_path + ".tmp"
    with open(tmp, "wb") as raw:
        comp = HashWriter(raw)
        with gzip.GzipFile(filename="", mode="wb", fileobj=comp, mtime=0, compresslevel=6) as gz:
            plain = HashWriter(gz)
            with tarfile.open(fileobj=plain, mode="w|", format=tarfile.PAX_FORMAT) as tf:
                for ti, src in entries:
                    if ti.isreg():
                        if isinstance(src, bytes):
                            ti.size = len(src)
                            tf.addfile(ti, io.BytesIO(src))
                        else:
                            with open(src, "rb") as f:
                                ti.size = os.fstat(f.fileno()).st_size
                                tf.addfile(ti, f)
                    else:
                        tf.addfile(ti)
    os.replace(tmp, out_path)
    return {"digest": "sha256:" + comp.h.hexdigest(), "size": comp.n, "diff_id": "sha256:" + plain.h.hexdigest()}


# Never part of an image: mount points keep only their directory, logs and caches are dropped.
ROOTFS_EMPTY_DIRS = ("dev", "proc", "sys", "run", "tmp", "var/tmp", "var/lib/apt/lists", "var/cache/apt",
                     "var/log/apt")
ROOTFS_DROP = ("var/log/dpkg.log", "var/log/alternatives.log", "var/log/bootstrap.log",
               "var/cache/ldconfig/aux-cache", "etc/resolv.conf", "etc/hostname", "etc/machine-id")


def rootfs_entries(root):
    names = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        rel = "" if rel == "." else rel
        if rel in ROOTFS_EMPTY_DIRS:
            dirnames[:], filenames = [], []
        for n in dirnames + filenames:
            p = os.path.join(rel, n)
            if p not in ROOTFS_DROP and not p.endswith("-old"):
                names.append(p)
    entries, seen = [], {}
    for p in sorted(names):
        st = os.lstat(os.path.join(root, p))
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            entries.append((_info(p, tarfile.DIRTYPE, mode, st.st_uid, st.st_gid), None))
        elif stat.S_ISLNK(st.st_mode):
            entries.append((_info(p, tarfile.SYMTYPE, mode, st.st_uid, st.st_gid,
                                  linkname=os.readlink(os.path.join(root, p))), None))
        elif stat.S_ISREG(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in seen:
                entries.append((_info(p, tarfile.LNKTYPE, mode, st.st_uid, st.st_gid, linkname=seen[key]), None))
                continue
            seen[key] = p
            entries.append((_info(p, tarfile.REGTYPE, mode, st.st_uid, st.st_gid), os.path.join(root, p)))
        # sockets, fifos and device nodes are left out (the runtime provides /dev)
    return entries


def file_entries(files):
    """files: [{path, src | content | type: dir, mode, uid, gid}] plus their parent directories."""
    by_path = {}
    for f in files:
        p = f["path"].strip("/")
        parts = p.split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            by_path.setdefault(d, {"path": d, "type": "dir", "mode": 0o755})
        by_path[p] = f
    entries = []
    for p in sorted(by_path):
        f = by_path[p]
        uid, gid = f.get("uid", 0), f.get("gid", 0)
        if f.get("type") == "dir":
            entries.append((_info(p, tarfile.DIRTYPE, f.get("mode", 0o755), uid, gid), None))
        elif f.get("type") == "symlink":
            entries.append((_info(p, tarfile.SYMTYPE, 0o777, uid, gid, linkname=f["target"]), None))
        elif "content" in f:
            entries.append((_info(p, tarfile.REGTYPE, f.get("mode", 0o644), uid, gid), f["content"].encode()))
        else:
            entries.append((_info(p, tarfile.REGTYPE, f.get("mode", 0o755), uid, gid), f["src"]))
    return entries


# --- image layout ---------------------------------------------------------------------------
def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def input_key(spec):
    """Everything the tarball depends on: the spec, this script, and every source file's content."""
    h = hashlib.sha256()
    h.update(canonical(spec))
    h.update(str(EPOCH).encode())
    with open(__file__, "rb") as f:
        h.update(f.read())
    for layer in spec["layers"]:
        for f in layer.get("files", []):
            if "src" in f:
                h.update(f["src"].encode() + b"\0" + sha256_file(f["src"]).encode())
    return h.hexdigest()


def build(spec_path):
    """SPEC: {name, out, blobs (a directory caching layer blobs), config {User, Entrypoint, Cmd, Env,
    WorkingDir, ExposedPorts}, layers: [{blob: {digest, size, diff_id, path}} | {files: [...]},
    each with created_by]}"""
    with open(spec_path) as f:
        spec = json.load(f)
    out = spec["out"]
    key = input_key(spec)
    stamp = out + ".key"
    if os.path.exists(out) and os.path.exists(stamp) and open(stamp).read().strip() == key:
        print(out)
        return
    os.makedirs(spec["blobs"], exist_ok=True)
    layers, history, temps = [], [], []
    for layer in spec["layers"]:
        if "blob" in layer:
            desc = layer["blob"]
        else:
            # Only the (slow) base layers stay cached; the small ones are remade with the tarball.
            desc = write_layer(os.path.join(spec["blobs"], f"layer-{len(layers)}.{os.getpid()}"),
                               file_entries(layer["files"]))
            desc["path"] = os.path.join(spec["blobs"], f"layer-{len(layers)}.{os.getpid()}")
            temps.append(desc["path"])
        layers.append(desc)
        history.append({"created": iso(EPOCH), "created_by": layer.get("created_by", "")})
    cfg = {k: v for k, v in spec["config"].items() if v not in (None, [], {}, "")}
    config = {
        "created": iso(EPOCH),
        "architecture": "amd64",
        "os": "linux",
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": [l["diff_id"] for l in layers]},
        "history": history,
    }
    config_b = canonical(config)
    config_d = {"mediaType": MT_CONFIG, "digest": "sha256:" + hashlib.sha256(config_b).hexdigest(),
                "size": len(config_b)}
    manifest = {"schemaVersion": 2, "mediaType": MT_MANIFEST, "config": config_d,
                "layers": [{"mediaType": MT_LAYER, "digest": l["digest"], "size": l["size"]} for l in layers]}
    manifest_b = canonical(manifest)
    name = spec["name"]
    manifest_d = {"mediaType": MT_MANIFEST, "digest": "sha256:" + hashlib.sha256(manifest_b).hexdigest(),
                  "size": len(manifest_b), "platform": {"architecture": "amd64", "os": "linux"},
                  "annotations": {"io.containerd.image.name": name,
                                  "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]}}
    index_b = canonical({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [manifest_d]})
    blob = lambda d: "blobs/sha256/" + d.split(":")[1]
    docker_b = canonical([{"Config": blob(config_d["digest"]), "RepoTags": [name],
                           "Layers": [blob(l["digest"]) for l in layers]}])
    members = {"oci-layout": canonical({"imageLayoutVersion": "1.0.0"}), "index.json": index_b,
               "manifest.json": docker_b, blob(config_d["digest"]): config_b, blob(manifest_d["digest"]): manifest_b}
    for l in layers:
        members[blob(l["digest"])] = l["path"]
    os.makedirs(os.path.dirname(out), exist_ok=True)
    tmp = out + ".tmp"
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tf:
        for d in ("blobs", "blobs/sha256"):
            tf.addfile(_info(d, tarfile.DIRTYPE, 0o755))
        for m in sorted(members):
            src = members[m]
            if isinstance(src, bytes):
                tf.addfile(_info(m, tarfile.REGTYPE, 0o644, size=len(src)), io.BytesIO(src))
            else:
                with open(src, "rb") as f:
                    tf.addfile(_info(m, tarfile.REGTYPE, 0o644, size=os.path.getsize(src)), f)
    os.replace(tmp, out)
    for t in temps:
        os.remove(t)
    with open(stamp, "w") as f:
        f.write(key + "\n")
    print(out)


def iso(t):
    import datetime
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def main(argv):
    if len(argv) >= 2 and argv[0] == "dockerfile":
        json.dump(parse_dockerfile(argv[1]), sys.stdout, indent=1)
        print()
    elif len(argv) == 3 and argv[0] == "rootfs-layer":
        desc = write_layer(argv[2], rootfs_entries(argv[1]))
        desc["path"] = argv[2]
        json.dump(desc, sys.stdout)
        print()
    elif len(argv) == 2 and argv[0] == "build":
        build(argv[1])
    else:
        die("usage: oci.py dockerfile FILE | rootfs-layer DIR OUT | build SPEC")


if __name__ == "__main__":
    main(sys.argv[1:])
