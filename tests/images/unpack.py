#!/usr/bin/env python3
"""unpack.py TARBALL DEST: checks an image tarball of hack/images.sh as an OCI image layout and
unpacks it: DEST/rootfs (the layers applied in order, as root with numeric owners), DEST/config.json,
DEST/name, DEST/digest (the manifest's). Prints one line per problem and exits 1 if there was any.

Checked: oci-layout, one manifest in index.json with its name annotation, every blob's digest and
size, each layer's diff_id against its uncompressed content, the docker-archive manifest.json, and
the layers' tar entries (one fixed mtime, no user/group names, sorted)."""
import gzip
import hashlib
import json
import os
import shutil
import sys
import tarfile

problems = []


def problem(msg):
    problems.append(msg)


def main(tarball, dest):
    tag = os.path.basename(tarball)
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(os.path.join(dest, "rootfs"))
    with tarfile.open(tarball) as tf:
        members = {m.name: m for m in tf.getmembers()}
        read = lambda n: tf.extractfile(members[n]).read()
        for n in ("oci-layout", "index.json", "manifest.json"):
            if n not in members:
                problem(f"{tag}: no {n}")
                return
        if json.loads(read("oci-layout")).get("imageLayoutVersion") != "1.0.0":
            problem(f"{tag}: oci-layout is not version 1.0.0")

        def blob(desc, what):
            n = "blobs/sha256/" + desc["digest"].split(":", 1)[1]
            if n not in members:
                problem(f"{tag}: {what} blob {desc['digest']} missing")
                return None
            data = read(n)
            if "sha256:" + hashlib.sha256(data).hexdigest() != desc["digest"]:
                problem(f"{tag}: {what} blob does not match its digest {desc['digest']}")
            if len(data) != desc["size"]:
                problem(f"{tag}: {what} blob is {len(data)} bytes, its descriptor says {desc['size']}")
            return data

        index = json.loads(read("index.json"))
        if len(index.get("manifests", [])) != 1:
            problem(f"{tag}: index.json has {len(index.get('manifests', []))} manifests, want 1")
            return
        mdesc = index["manifests"][0]
        name = mdesc.get("annotations", {}).get("io.containerd.image.name", "")
        if not name:
            problem(f"{tag}: the manifest has no io.containerd.image.name annotation")
        manifest = json.loads(blob(mdesc, "manifest") or b"{}")
        config_b = blob(manifest["config"], "config") or b"{}"
        config = json.loads(config_b)
        diff_ids = config.get("rootfs", {}).get("diff_ids", [])
        if len(diff_ids) != len(manifest["layers"]):
            problem(f"{tag}: {len(manifest['layers'])} layers but {len(diff_ids)} diff_ids")
        for k, want in (("architecture", "amd64"), ("os", "linux")):
            if config.get(k) != want:
                problem(f"{tag}: config {k} is {config.get(k)!r}, want {want}")
        docker = json.loads(read("manifest.json"))
        want_docker = [{"Config": "blobs/sha256/" + manifest["config"]["digest"].split(":")[1], "RepoTags": [name],
                        "Layers": ["blobs/sha256/" + l["digest"].split(":")[1] for l in manifest["layers"]]}]
        if docker != want_docker:
            problem(f"{tag}: manifest.json (docker-archive) does not match the OCI manifest")

        owners = []
        for i, ldesc in enumerate(manifest["layers"]):
            data = blob(ldesc, f"layer {i}")
            if data is None:
                continue
            raw = gzip.decompress(data)
            if i < len(diff_ids) and "sha256:" + hashlib.sha256(raw).hexdigest() != diff_ids[i]:
                problem(f"{tag}: layer {i}'s diff_id does not match its content")
            path = os.path.join(dest, f"layer-{i}.tar")
            with open(path, "wb") as f:
                f.write(raw)
            with tarfile.open(path) as lt:
                entries = lt.getmembers()
                names = [e.name for e in entries]
                if names != sorted(names):
                    problem(f"{tag}: layer {i}'s entries are not sorted")
                mtimes = {e.mtime for e in entries}
                if len(mtimes) > 1:
                    problem(f"{tag}: layer {i} has {len(mtimes)} different mtimes")
                if any(e.uname or e.gname for e in entries):
                    problem(f"{tag}: layer {i} has user/group names (want numeric owners only)")
                owners.append({e.name: [e.uid, e.gid, e.mode] for e in entries})
                root = os.path.join(dest, "rootfs")
                for e in entries:  # whiteouts (none are written today, but apply them like a runtime)
                    base = os.path.basename(e.name)
                    if base.startswith(".wh."):
                        victim = os.path.join(root, os.path.dirname(e.name), base[4:])
                        shutil.rmtree(victim, ignore_errors=True) if os.path.isdir(victim) else (
                            os.path.lexists(victim) and os.remove(victim))
                lt.extractall(root, members=[e for e in entries if not os.path.basename(e.name).startswith(".wh.")],
                              numeric_owner=True, **({"filter": "fully_trusted"} if hasattr(tarfile, "data_filter") else {}))
            os.remove(path)
    with open(os.path.join(dest, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    with open(os.path.join(dest, "owners.json"), "w") as f:
        json.dump(owners, f)
    with open(os.path.join(dest, "name"), "w") as f:
        f.write(name + "\n")
    with open(os.path.join(dest, "digest"), "w") as f:
        f.write(mdesc["digest"] + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: unpack.py TARBALL DEST")
    try:
        main(sys.argv[1], sys.argv[2])
    except Exception as e:  # a broken tarball is one problem, not a traceback
        problem(f"{os.path.basename(sys.argv[1])}: {type(e).__name__}: {e}")
    for p in problems:
        print(p)
    sys.exit(1 if problems else 0)
