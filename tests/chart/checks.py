#!/usr/bin/env python3
"""Checks of rendered graydebug chart output, called by chart_test.sh one subcommand at a time.

Each subcommand prints nothing and exits 0 when the check holds, or prints what is wrong (one
line per problem) and exits 1. Needs PyYAML; `schema` also uses jsonschema when it is installed.
"""
import json
import re
import sys

import yaml


def load_docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def find(docs, kind, name=None):
    out = [d for d in docs if d.get("kind") == kind and (name is None or d["metadata"]["name"] == name)]
    return out


def one(docs, kind, name=None):
    found = find(docs, kind, name)
    if len(found) != 1:
        raise Check(f"expected one {kind}{' ' + name if name else ''}, found {len(found)}")
    return found[0]


class Check(Exception):
    pass


def split(rendered, api_versions_file, served_out, unserved_out):
    """Writes the documents whose apiVersion the cluster serves to served_out, the others to
    unserved_out; prints the kinds of the others (one line, "Kind (apiVersion)" each)."""
    served = set(open(api_versions_file).read().split())
    docs = load_docs(rendered)
    ok = [d for d in docs if d["apiVersion"] in served]
    not_ok = [d for d in docs if d["apiVersion"] not in served]
    with open(served_out, "w") as f:
        yaml.safe_dump_all(ok, f, sort_keys=False)
    with open(unserved_out, "w") as f:
        yaml.safe_dump_all(not_ok, f, sort_keys=False)
    print(", ".join(sorted({f"{d['kind']} ({d['apiVersion']})" for d in not_ok})))


def crd(rendered, manifest, keep):
    """The chart's CRD is manifests/crds' CRD plus labels and (keep=yes) the keep policy."""
    docs = load_docs(rendered)
    found = find(docs, "CustomResourceDefinition")
    if keep == "absent":
        if found:
            raise Check("crds.enabled=false still renders a CustomResourceDefinition")
        return
    got = one(docs, "CustomResourceDefinition")
    with open(manifest) as f:
        want = yaml.safe_load(f)
    problems = []
    for key in ("apiVersion", "kind", "spec"):
        if got.get(key) != want.get(key):
            problems.append(f"{key} differs from {manifest}")
    if got["metadata"]["name"] != want["metadata"]["name"]:
        problems.append("metadata.name differs")
    for k, v in want["metadata"].get("labels", {}).items():
        if got["metadata"].get("labels", {}).get(k) != v:
            problems.append(f"label {k} of the manifest is missing")
    policy = got["metadata"].get("annotations", {}).get("helm.sh/resource-policy")
    if keep == "yes" and policy != "keep":
        problems.append("crds.keep=true but no helm.sh/resource-policy: keep")
    if keep == "no" and policy is not None:
        problems.append("crds.keep=false but helm.sh/resource-policy is set")
    if problems:
        raise Check("; ".join(problems))


def rbac(rendered, pause):
    """Least privilege: the controller's rules are exactly the expected ones; deployments only
    with pauseRollout; the webhook reads namespaces and one ConfigMap in its namespace."""
    docs = load_docs(rendered)

    def norm(rules):
        out = set()
        for r in rules:
            for g in r.get("apiGroups", []):
                for res in r.get("resources", []):
                    for v in r.get("verbs", []):
                        out.add((g, res, v, tuple(r.get("resourceNames", []))))
        return out

    def expand(spec):
        out = set()
        for groups, resources, verbs, names in spec:
            for g in groups:
                for res in resources:
                    for v in verbs:
                        out.add((g, res, v, tuple(names)))
        return out

    ctl = [d for d in find(docs, "ClusterRole") if d["metadata"]["labels"]["app.kubernetes.io/component"] == "controller"]
    wh = [d for d in find(docs, "ClusterRole") if d["metadata"]["labels"]["app.kubernetes.io/component"] == "webhook"]
    ctl_role = [d for d in find(docs, "Role") if d["metadata"]["labels"]["app.kubernetes.io/component"] == "controller"]
    wh_role = [d for d in find(docs, "Role") if d["metadata"]["labels"]["app.kubernetes.io/component"] == "webhook"]
    if not (len(ctl) == len(wh) == len(ctl_role) == len(wh_role) == 1):
        raise Check("expected one ClusterRole and one Role each for the webhook and the controller")
    want_ctl = [
        ([""], ["pods"], ["get", "list", "watch"], []),
        (["graydebug.io"], ["debugsessions"], ["get", "list", "watch", "update", "patch", "delete"], []),
        (["graydebug.io"], ["debugsessions/status"], ["update", "patch"], []),
        (["", "events.k8s.io"], ["events"], ["create", "patch"], []),
        (["apps"], ["replicasets"], ["get"], []),
    ]
    if pause == "yes":
        want_ctl.append((["apps"], ["deployments"], ["get", "patch"], []))
    problems = []
    got, want = norm(ctl[0]["rules"]), expand(want_ctl)
    if got != want:
        problems.append(f"controller ClusterRole: extra {sorted(got - want)}, missing {sorted(want - got)}")
    lease = ctl_role[0]["metadata"]["name"]  # the Lease is named like the controller's objects
    want_role = expand([
        (["coordination.k8s.io"], ["leases"], ["get", "update"], [lease]),
        (["coordination.k8s.io"], ["leases"], ["create"], []),
        ([""], ["configmaps"], ["get", "update"], ["graydebug-circuits"]),
        ([""], ["configmaps"], ["create"], []),
    ])
    if norm(ctl_role[0]["rules"]) != want_role:
        problems.append(f"controller Role rules: {ctl_role[0]['rules']}")
    if norm(wh[0]["rules"]) != expand([([""], ["namespaces"], ["get", "list", "watch"], [])]):
        problems.append(f"webhook ClusterRole rules: {wh[0]['rules']}")
    if norm(wh_role[0]["rules"]) != expand([([""], ["configmaps"], ["get", "list", "watch"], ["graydebug-circuits"])]):
        problems.append(f"webhook Role rules: {wh_role[0]['rules']}")
    for d in find(docs, "ClusterRole") + find(docs, "Role"):
        for r in d["rules"]:
            if "*" in r.get("verbs", []) + r.get("resources", []) + r.get("apiGroups", []):
                problems.append(f"{d['kind']} {d['metadata']['name']} uses a wildcard")
    # Every binding binds its own role to the component's ServiceAccount in the release namespace.
    sas = {(d["metadata"]["namespace"], d["metadata"]["name"]) for d in find(docs, "ServiceAccount")}
    for b in find(docs, "ClusterRoleBinding") + find(docs, "RoleBinding"):
        role_kind = "ClusterRole" if b["kind"] == "ClusterRoleBinding" else "Role"
        if b["roleRef"]["kind"] != role_kind or not find(docs, role_kind, b["roleRef"]["name"]):
            problems.append(f"{b['kind']} {b['metadata']['name']} refers to a missing {role_kind}")
        for s in b["subjects"]:
            if (s["namespace"], s["name"]) not in sas:
                problems.append(f"{b['kind']} {b['metadata']['name']} binds a missing ServiceAccount {s['name']}")
    if problems:
        raise Check("; ".join(problems))


def _b64(s):
    import base64
    return base64.b64decode(s)


def tls(rendered, outdir):
    """Helm-generated TLS: the Secret's ca.crt is the caBundle of both webhooks; writes ca.crt,
    tls.crt and tls.key to outdir for openssl."""
    docs = load_docs(rendered)
    mwc = one(docs, "MutatingWebhookConfiguration")
    dep = [d for d in find(docs, "Deployment") if d["metadata"]["labels"]["app.kubernetes.io/component"] == "webhook"][0]
    secret_name = [v["secret"]["secretName"] for v in dep["spec"]["template"]["spec"]["volumes"] if v["name"] == "tls"][0]
    secret = one(docs, "Secret", secret_name)
    if secret.get("type") != "kubernetes.io/tls":
        raise Check("the TLS Secret is not of type kubernetes.io/tls")
    for k in ("tls.crt", "tls.key", "ca.crt"):
        with open(f"{outdir}/{k}", "wb") as f:
            f.write(_b64(secret["data"][k]))
    bundles = {w["name"]: w["clientConfig"].get("caBundle") for w in mwc["webhooks"]}
    bad = [n for n, b in bundles.items() if b != secret["data"]["ca.crt"]]
    if bad:
        raise Check(f"caBundle of {bad} is not the Secret's ca.crt")
    if "cert-manager.io/inject-ca-from" in mwc["metadata"].get("annotations", {}):
        raise Check("inject-ca-from is set without certManager.enabled")


def certmanager(rendered, namespace, issuer_ref):
    """cert-manager: the webhook configuration names the Certificate whose Secret the webhook
    mounts; no caBundle; the issuer chain resolves (issuer_ref: 'chain' or the external name)."""
    docs = load_docs(rendered)
    problems = []
    mwc = one(docs, "MutatingWebhookConfiguration")
    ann = mwc["metadata"].get("annotations", {}).get("cert-manager.io/inject-ca-from", "")
    ns, _, cert_name = ann.partition("/")
    if ns != namespace:
        problems.append(f"inject-ca-from {ann!r} is not in namespace {namespace}")
    if any("caBundle" in w["clientConfig"] for w in mwc["webhooks"]):
        problems.append("caBundle is set although cainjector owns it")
    if find(docs, "Secret"):
        problems.append("a Secret is rendered although cert-manager makes it")
    cert = one(docs, "Certificate", cert_name)
    dep = [d for d in find(docs, "Deployment") if d["metadata"]["labels"]["app.kubernetes.io/component"] == "webhook"][0]
    mounted = [v["secret"]["secretName"] for v in dep["spec"]["template"]["spec"]["volumes"] if v["name"] == "tls"][0]
    if cert["spec"]["secretName"] != mounted:
        problems.append(f"Certificate secretName {cert['spec']['secretName']} is not the mounted Secret {mounted}")
    svc = mwc["webhooks"][0]["clientConfig"]["service"]
    want = [f"{svc['name']}.{svc['namespace']}.svc", f"{svc['name']}.{svc['namespace']}.svc.cluster.local"]
    missing = [n for n in want if n not in cert["spec"]["dnsNames"]]
    if missing:
        problems.append(f"Certificate dnsNames lack {missing}")
    ref = cert["spec"]["issuerRef"]
    if issuer_ref == "chain":
        ca_issuer = one(docs, "Issuer", ref["name"])
        ca_cert = [c for c in find(docs, "Certificate") if c["spec"]["secretName"] == ca_issuer["spec"]["ca"]["secretName"]]
        if len(ca_cert) != 1 or not ca_cert[0]["spec"].get("isCA"):
            problems.append("the CA Issuer's secret is not made by an isCA Certificate")
        else:
            root = one(docs, "Issuer", ca_cert[0]["spec"]["issuerRef"]["name"])
            if "selfSigned" not in root["spec"]:
                problems.append("the CA Certificate is not issued by a selfSigned Issuer")
    else:
        if ref.get("name") != issuer_ref or find(docs, "Issuer"):
            problems.append(f"issuerRef {ref} is not the external issuer {issuer_ref}, or Issuers are still rendered")
    if problems:
        raise Check("; ".join(problems))


def monitoring(rendered):
    """ServiceMonitors select the metrics Services by their labels and port; the PrometheusRule has
    both alerts on the metrics of SPEC section 5."""
    docs = load_docs(rendered)
    problems = []
    services = find(docs, "Service")
    monitors = find(docs, "ServiceMonitor")
    if len(monitors) != 2:
        problems.append(f"expected 2 ServiceMonitors, found {len(monitors)}")
    for m in monitors:
        sel = m["spec"]["selector"]["matchLabels"]
        hit = [s for s in services if all(s["metadata"]["labels"].get(k) == v for k, v in sel.items())]
        if len(hit) != 1:
            problems.append(f"ServiceMonitor {m['metadata']['name']} selects {len(hit)} Services")
            continue
        ports = {p["name"] for p in hit[0]["spec"]["ports"]}
        for e in m["spec"]["endpoints"]:
            if e["port"] not in ports:
                problems.append(f"ServiceMonitor {m['metadata']['name']} scrapes port {e['port']} that its Service lacks")
        if "https" in ports:
            problems.append(f"ServiceMonitor {m['metadata']['name']} selects the admission Service")
    rule = one(docs, "PrometheusRule")
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}
    ratio = alerts.get("GraydebugAttachFailureRatioHigh")
    if not ratio or "graydebug_attach_attempts_total" not in ratio["expr"] or "10m" not in ratio["expr"] \
            or not re.search(r">\s*0\.05\s*$", ratio["expr"].strip()):
        problems.append("GraydebugAttachFailureRatioHigh missing or not a 10m ratio of graydebug_attach_attempts_total > 0.05")
    elif 'result="failure"' not in ratio["expr"] or "by (namespace, release)" not in ratio["expr"]:
        problems.append("GraydebugAttachFailureRatioHigh is not per release")
    circuit = alerts.get("GraydebugCircuitOpen")
    if not circuit or not re.search(r"graydebug_circuit_state\)?\s*==\s*2", circuit["expr"]):
        problems.append("GraydebugCircuitOpen missing or not graydebug_circuit_state == 2")
    if problems:
        raise Check("; ".join(problems))


def dashboard(json_path, rendered):
    """The dashboard file is JSON with the five panels' metrics; the ConfigMap carries it as-is."""
    with open(json_path) as f:
        text = f.read()
    try:
        dash = json.loads(text)
    except json.JSONDecodeError as e:
        raise Check(f"{json_path}: {e}")
    exprs = " ".join(t["expr"] for p in dash["panels"] for t in p.get("targets", []))
    problems = []
    for metric in ("debug_session_active", "dlv_attach_latency_seconds_bucket", "graydebug_attach_attempts_total",
                   "graydebug_circuit_state", "graydebug_admission_requests_total"):
        if metric not in exprs:
            problems.append(f"no panel uses {metric}")
    if "histogram_quantile(0.5," not in exprs or "histogram_quantile(0.99," not in exprs:
        problems.append("no p50/p99 attach latency")
    ids = [p["id"] for p in dash["panels"]]
    if len(ids) != len(set(ids)):
        problems.append("panel ids are not unique")
    cms = [d for d in find(load_docs(rendered), "ConfigMap") if d["metadata"]["labels"].get("grafana_dashboard") == "1"]
    if len(cms) != 1:
        problems.append(f"expected one ConfigMap labelled grafana_dashboard: \"1\", found {len(cms)}")
    else:
        (content,) = cms[0]["data"].values()
        if json.loads(content) != dash:
            problems.append("the ConfigMap's dashboard differs from the file")
    if problems:
        raise Check("; ".join(problems))


def args(rendered, component):
    """Prints the container args of a component's Deployment, one per line."""
    docs = load_docs(rendered)
    dep = [d for d in find(docs, "Deployment") if d["metadata"]["labels"]["app.kubernetes.io/component"] == component]
    for a in dep[0]["spec"]["template"]["spec"]["containers"][0]["args"]:
        print(a)


def config(rendered, component, out):
    """Writes the config.yaml of a component's ConfigMap to out."""
    docs = load_docs(rendered)
    cm = [d for d in find(docs, "ConfigMap") if d["metadata"]["labels"].get("app.kubernetes.io/component") == component]
    with open(out, "w") as f:
        f.write(cm[0]["data"]["config.yaml"])


def documented(values_path, doc_path):
    """Every leaf of values.yaml appears as `path` in docs/helm.md's values table."""
    with open(values_path) as f:
        values = yaml.safe_load(f)
    with open(doc_path) as f:
        doc = f.read()

    # Values whose content is Kubernetes data (resource lists, label selectors) count as one.
    whole = {"resources", "objectSelector"}

    def leaves(v, prefix):
        if isinstance(v, dict) and v and prefix.rsplit(".", 1)[-1] not in whole:
            for k, x in v.items():
                yield from leaves(x, f"{prefix}.{k}" if prefix else k)
        else:
            yield prefix

    missing = [p for p in leaves(values, "") if f"`{p}`" not in doc]
    if missing:
        raise Check(f"not in {doc_path}: {', '.join(missing)}")


def schema(schema_path, values_path):
    """values.schema.json is a valid draft-07 schema and accepts values.yaml."""
    try:
        import jsonschema
    except ImportError:
        print("SKIP: python jsonschema is not installed (helm lint still validates values against it)")
        return
    with open(schema_path) as f:
        s = json.load(f)
    jsonschema.Draft7Validator.check_schema(s)
    with open(values_path) as f:
        jsonschema.Draft7Validator(s).validate(yaml.safe_load(f))


def comments(values_path):
    """Every key of values.yaml has a comment line right above it that starts with its name."""
    lines = open(values_path).read().splitlines()
    problems = []
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)([A-Za-z][A-Za-z0-9]*):", line)
        if not m:
            continue
        indent, key = m.groups()
        # Keys inside a value map (resources, matchLabels) are data, not values.
        j = i - 1
        while j >= 0 and lines[j].strip().startswith("#") and lines[j].startswith(indent + "#"):
            j -= 1
        block = lines[j + 1:i]
        parent = next((lines[k] for k in range(i - 1, -1, -1)
                       if lines[k].strip() and not lines[k].strip().startswith("#")
                       and len(lines[k]) - len(lines[k].lstrip()) < len(indent)), "")
        if re.search(r"\b(requests|limits|matchLabels|resources|objectSelector):\s*$", parent) and len(indent) > 0:
            continue
        if not block or not re.match(r"#\s*" + re.escape(key) + r"\b", block[0].strip()):
            problems.append(f"line {i + 1}: {key} has no comment starting with its name")
    if problems:
        raise Check("; ".join(problems))


def _promql_metrics(expr):
    """The metric names a PromQL expression selects: identifiers that are not functions,
    aggregations, keywords, label names or values, durations or Grafana variables."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)            # string literals
    expr = re.sub(r"\{[^}]*\}", "", expr)                          # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)                         # range selectors
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\$\{?\w+\}?", "", expr)                         # Grafana variables
    keywords = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "inf", "nan"}
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        rest = expr[m.end():].lstrip()
        if rest.startswith("(") or m.group(0).lower() in keywords:
            continue
        if m.start() > 0 and (expr[m.start() - 1].isdigit() or expr[m.start() - 1] == "."):
            continue  # 1e3, 0.05
        names.add(m.group(0))
    return names


def metrics(exposition, dashboard_path, rendered):
    """Every metric a dashboard query or a PrometheusRule expression names is in the exposition
    text scraped from the running binaries (a histogram exports NAME_bucket, _sum and _count)."""
    exported = set()
    for line in open(exposition):
        m = re.match(r"# TYPE (\S+) (\w+)", line)
        if m:
            exported.add(m.group(1))
            if m.group(2) in ("histogram", "summary"):
                exported.update(m.group(1) + s for s in ("_bucket", "_sum", "_count"))
        elif line.strip() and not line.startswith("#"):
            exported.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    with open(dashboard_path) as f:
        dash = json.load(f)
    exprs = [("dashboard panel " + repr(p.get("title")), t["expr"])
             for p in dash["panels"] for t in p.get("targets", []) if t.get("expr")]
    rules = find(load_docs(rendered), "PrometheusRule")
    if not rules:
        raise Check("no PrometheusRule rendered")
    for r in rules:
        for g in r["spec"]["groups"]:
            exprs += [("alert " + x.get("alert", x.get("record", "?")), x["expr"]) for x in g["rules"]]
    problems, seen = [], set()
    for where, expr in exprs:
        names = _promql_metrics(expr)
        if not names:
            problems.append(f"{where}: no metric in {expr!r}")
        seen |= names
        problems += [f"{where}: {n} is not exported" for n in sorted(names - exported)]
    if problems:
        raise Check("; ".join(problems))
    print(f"{len(exprs)} expressions use {', '.join(sorted(seen))}; all exported")


COMMANDS = {f.__name__: f for f in (split, crd, rbac, tls, certmanager, monitoring, dashboard, args, config,
                                     documented, schema, comments, metrics)}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(f"usage: checks.py {'|'.join(COMMANDS)} ARGS...", file=sys.stderr)
        sys.exit(2)
    try:
        COMMANDS[sys.argv[1]](*sys.argv[2:])
    except Check as e:
        print(e)
        sys.exit(1)
