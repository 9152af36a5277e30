"""The Helm chart, offline: Helm v4 (helm-python-sdk) lints and renders it, every manifest is
validated against the Kubernetes schemas (kubernetes-validate), and what matters is asserted:
probes, drain hooks, host networking, NATS replication, values-schema refusals.

Run by scripts/test.sh:  python -m pytest charts/callmesh/tests
"""

import json
import re
import tomllib
from pathlib import Path

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

CHART = Path(__file__).resolve().parents[1]
REPO = CHART.parents[1]
KUBE_VERSION = "1.33.0"
ROLES = ["edge", "router", "session", "media", "api"]


def render(values=None):
    """Every manifest of a release `callmesh` in namespace `voice`, as parsed documents."""
    manifests = helm.Chart.load(CHART).render(values or {}, name="callmesh", namespace="voice", is_install=True)
    docs = []
    for path, text in manifests.items():
        if path.endswith(".txt"):
            continue
        docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


def find(docs, kind, name):
    for d in docs:
        if d["kind"] == kind and d["metadata"]["name"] == name:
            return d
    raise AssertionError(f"no {kind} {name} in {[(d['kind'], d['metadata']['name']) for d in docs]}")


def workload(docs, role):
    for d in docs:
        if d["kind"] in ("Deployment", "DaemonSet", "StatefulSet") and d["metadata"]["name"] == f"callmesh-{role}":
            return d
    raise AssertionError(f"no workload for {role}")


def container(w):
    return w["spec"]["template"]["spec"]["containers"][0]


def env(c):
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}


def lint_errors(values=None):
    report = helm.lint(CHART, values, strict=True, namespace="voice", kube_version="v" + KUBE_VERSION)
    return [m for m in report["messages"] if m["severity"] >= 2] + [{"error": e} for e in report.get("errors") or []]


def test_lints_clean_in_strict_mode():
    assert lint_errors() == []
    assert lint_errors({"edge": {"mode": "loadBalancer", "advertise": "sip.example.com"}}) == []


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"edge": {"mode": "loadBalancer", "advertise": "203.0.113.10"}, "dashboard": {"enabled": True}},
        {"nats": {"enabled": False, "url": "nats://nats.messaging:4222"}, "podDisruptionBudget": {"enabled": False}},
        {"otel": {"endpoint": "http://collector.observability:4318"}, "rbac": {"create": False}},
    ],
    ids=["defaults", "load-balancer", "external-nats", "otel-no-rbac"],
)
def test_every_manifest_is_valid_kubernetes(values):
    docs = render(values)
    assert len(docs) >= 8
    for d in docs:
        kubernetes_validate.validate(d, KUBE_VERSION, strict=True)


def test_every_role_has_probes_drain_hook_and_grace():
    docs = render()
    for role in ROLES:
        w = workload(docs, role)
        spec = w["spec"]["template"]["spec"]
        c = container(w)
        assert c["args"][0] == role
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz", role
        assert c["startupProbe"]["httpGet"]["path"] == "/readyz", role
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz", role
        assert c["readinessProbe"]["httpGet"]["port"] == "http"
        http_port = next(p["containerPort"] for p in c["ports"] if p["name"] == "http")
        assert env(c)["CALLMESH_HTTP_LISTEN"] == f"$(POD_IP):{http_port}"
        # preStop drains with the node's own binary and config; the grace period outlasts it.
        assert c["lifecycle"]["preStop"]["exec"]["command"][:2] == ["/usr/local/bin/callmesh", "drain"]
        drain = int(env(c)["CALLMESH_NODE_DRAIN_TIMEOUT_SECS"])
        assert spec["terminationGracePeriodSeconds"] > drain, role
        # Kubernetes' service links would inject CALLMESH_* variables of their own.
        assert spec["enableServiceLinks"] is False
        assert env(c)["CALLMESH_NODE_ID"] == {"fieldRef": {"fieldPath": "metadata.name"}}
        assert env(c)["CALLMESH_KUBE_POD"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def test_edge_and_session_drain_longer_than_a_transaction():
    docs = render()
    for role, at_least in [("edge", 32), ("session", 60)]:
        c = container(workload(docs, role))
        assert int(env(c)["CALLMESH_NODE_DRAIN_TIMEOUT_SECS"]) >= at_least, role


def test_containers_run_unprivileged_on_a_read_only_root():
    docs = render()
    for role in ROLES:
        w = workload(docs, role)
        pod = w["spec"]["template"]["spec"]["securityContext"]
        c = container(w)
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] != 0
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert c["resources"]["requests"]["cpu"] and c["resources"]["limits"]["memory"]


def test_host_network_edges_and_media_advertise_their_node():
    docs = render()
    edge, media = workload(docs, "edge"), workload(docs, "media")
    for w, label in [(edge, "callmesh.io/edge"), (media, "callmesh.io/media")]:
        assert w["kind"] == "DaemonSet"
        spec = w["spec"]["template"]["spec"]
        assert spec["hostNetwork"] is True and spec["dnsPolicy"] == "ClusterFirstWithHostNet"
        assert spec["nodeSelector"] == {label: "true"}
        e = env(container(w))
        assert e["CALLMESH_KUBE_NODE"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
        assert e["CALLMESH_KUBE_ADVERTISE"] == "external-ip"
    assert env(container(edge))["CALLMESH_SIP_LISTEN"] == "0.0.0.0:5060"
    assert "CALLMESH_SIP_ADVERTISE" not in env(container(edge))
    assert env(container(media))["CALLMESH_MEDIA_BIND"] == "0.0.0.0"
    # Two DaemonSets on one node's network must not share the HTTP port.
    ports = [next(p["containerPort"] for p in container(w)["ports"] if p["name"] == "http") for w in (edge, media)]
    assert ports[0] != ports[1]
    assert not [d for d in docs if d["kind"] == "Service" and d["spec"].get("type") == "LoadBalancer"]


def test_load_balancer_mode_serves_udp_and_tcp_and_advertises_the_balancer():
    docs = render({"edge": {"mode": "loadBalancer", "advertise": "sip.example.com", "replicas": 3}})
    edge = workload(docs, "edge")
    assert edge["kind"] == "Deployment" and edge["spec"]["replicas"] == 3
    spec = edge["spec"]["template"]["spec"]
    assert "hostNetwork" not in spec and "nodeSelector" not in spec
    assert env(container(edge))["CALLMESH_SIP_ADVERTISE"] == "sip.example.com"
    svc = find(docs, "Service", "callmesh-sip")
    assert svc["spec"]["type"] == "LoadBalancer"
    assert svc["spec"]["externalTrafficPolicy"] == "Local"
    assert sorted((p["port"], p["protocol"]) for p in svc["spec"]["ports"]) == [(5060, "TCP"), (5060, "UDP")]
    assert svc["spec"]["selector"]["app.kubernetes.io/component"] == "edge"


def test_nats_runs_three_jetstream_servers_and_buckets_are_replicated_three_times():
    docs = render()
    sts = find(docs, "StatefulSet", "callmesh-nats")
    assert sts["spec"]["replicas"] == 3
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "10Gi"
    conf = find(docs, "ConfigMap", "callmesh-nats")["data"]["nats.conf"]
    assert "jetstream" in conf and "store_dir: /data" in conf
    assert len(re.findall(r"nats://callmesh-nats-\d\.callmesh-nats\.voice\.svc:6222", conf)) == 3
    assert find(docs, "Service", "callmesh-nats")["spec"]["clusterIP"] == "None"
    toml = tomllib.loads(find(docs, "Secret", "callmesh-config")["stringData"]["callmesh.toml"])
    assert toml["nats"]["replicas"] == 3
    assert toml["nats"]["url"].count("nats://") == 3
    assert find(docs, "PodDisruptionBudget", "callmesh-nats")["spec"]["maxUnavailable"] == 1


def test_external_nats_is_used_as_given():
    docs = render({"nats": {"enabled": False, "url": "nats://nats.messaging:4222", "bucketReplicas": 3}})
    assert not [d for d in docs if d["metadata"]["name"].startswith("callmesh-nats")]
    toml = tomllib.loads(find(docs, "Secret", "callmesh-config")["stringData"]["callmesh.toml"])
    assert toml["nats"]["url"] == "nats://nats.messaging:4222"
    with pytest.raises(helm.HelmError, match="nats.url is required"):
        render({"nats": {"enabled": False}})


def test_the_configuration_carries_users_routes_and_a_kept_secret():
    values = {
        "config": {
            "users": [{"username": "alice", "password": "wonderland"}],
            "routes": [
                {"user": "^1\\d{3}$", "target": "registered", "ring_timeout_secs": 30},
                {"user": "^9", "target": "sip:${user}@gateway.example:5060", "policy": {"queue_with_timeout": {"secs": 20}}},
                {"user": "^7000$", "target": "queue:sales", "priority": 5, "requires": 'skills HAS "spanish"'},
            ],
            "queues": [{"name": "sales", "strategy": "round-robin", "max_wait_secs": 120}],
            "agents": [{"user": "agent1", "queues": ["sales"], "skills": {"spanish": 2}}],
        }
    }
    secret = find(render(values), "Secret", "callmesh-config")["stringData"]
    toml = tomllib.loads(secret["callmesh.toml"])
    assert toml["users"] == [{"username": "alice", "password": "wonderland"}]
    assert toml["routes"][0]["user"] == "^1\\d{3}$" and toml["routes"][0]["ring_timeout_secs"] == 30
    assert toml["routes"][1]["policy"] == {"queue_with_timeout": {"secs": 20}}
    assert toml["routes"][2]["target"] == "queue:sales" and toml["routes"][2]["priority"] == 5
    assert toml["queues"] == [{"name": "sales", "strategy": "round-robin", "max_wait_secs": 120}]
    assert toml["agents"] == [{"user": "agent1", "queues": ["sales"], "skills": {"spanish": 2}}]
    # No secret given: one is generated (32 characters), not the old default.
    assert len(toml["auth"]["secret"]) == 32 and toml["auth"]["secret"] != "callmesh"
    assert secret["auth-secret"] == toml["auth"]["secret"]
    # Every key of the file is one callmesh reads (src/config/overrides.rs lists them).
    keys = dict(re.findall(r'\("(\w+)", &\[([^\]]*)\]\)', (REPO / "src/config/overrides.rs").read_text()))
    for section, table in toml.items():
        if section in ("users", "routes", "queues", "agents"):
            continue
        allowed = re.findall(r'"(\w+)"', keys[section])
        assert set(table) <= set(allowed), (section, table)


@pytest.mark.parametrize(
    "values, complaint",
    [
        ({"edge": {"sipPort": "5060x"}}, "sipPort"),
        ({"edge": {"mode": "nodePort"}}, "mode"),
        ({"edge": {"mode": "loadBalancer"}}, "advertise"),
        ({"nats": {"replicas": "three"}}, "replicas"),
        ({"session": {"drainTimeoutSeconds": -1}}, "drainTimeoutSeconds"),
        ({"media": {"rtpPorts": 20000}}, "rtpPorts"),
        ({"media": {"advertiseFrom": "node-ip"}}, "advertiseFrom"),
        ({"otel": {"protocol": "http/json"}}, "protocol"),
        ({"sesion": {"replicas": 2}}, "sesion"),
        ({"api": {"tokens": ["short"]}}, "tokens"),
        ({"config": {"users": [{"username": "a@b", "password": "x"}]}}, "username"),
    ],
)
def test_the_values_schema_refuses_wrong_values(values, complaint):
    with pytest.raises(helm.HelmError) as refused:
        helm.Chart.load(CHART).validate_schema(values)
    assert complaint in str(refused.value)
    assert lint_errors(values), "helm lint must fail too"


def test_disruption_budgets_cover_every_role():
    docs = render()
    budgets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "PodDisruptionBudget"}
    for role in ROLES + ["nats"]:
        pdb = budgets[f"callmesh-{role}"]
        assert pdb["spec"]["maxUnavailable"] == 1
        assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == role
        labels = workload(docs, role)["spec"]["template"]["metadata"]["labels"]
        assert all(labels[k] == v for k, v in pdb["spec"]["selector"]["matchLabels"].items())


def test_rbac_allows_reading_nodes_and_watching_pods_only():
    docs = render()
    role = find(docs, "Role", "callmesh")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]
    nodes = [d for d in docs if d["kind"] == "ClusterRole"][0]
    assert nodes["rules"] == [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]
    for role in ROLES:
        assert workload(docs, role)["spec"]["template"]["spec"]["serviceAccountName"] == "callmesh"


def test_otel_variables_reach_every_pod():
    docs = render({"otel": {"endpoint": "http://collector:4317", "protocol": "grpc", "resourceAttributes": "env=prod"}})
    for role in ROLES:
        e = env(container(workload(docs, role)))
        assert e["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://collector:4317"
        assert e["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc"
        assert e["OTEL_RESOURCE_ATTRIBUTES"] == "env=prod"
        # Each process names itself after its role unless told otherwise.
        assert "OTEL_SERVICE_NAME" not in e


def test_the_dashboard_only_uses_metrics_callmesh_exports():
    docs = render({"dashboard": {"enabled": True}})
    cm = find(docs, "ConfigMap", "callmesh-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(cm["data"]["callmesh.json"])
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {re.sub(r"_(bucket|sum|count)$", "", m) for e in exprs for m in re.findall(r"callmesh_\w+", e)}
    source = (REPO / "src/metrics.rs").read_text()
    exported = {"callmesh_" + n for n in re.findall(r'(?:counter|gauge|histogram|head)\(\s*"(\w+)"', source)}
    assert used and used <= exported, used - exported


def test_every_value_is_documented_in_the_readme():
    readme = (CHART / "README.md").read_text()
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def leaves(node, prefix=""):
        for key, value in node.items():
            path = f"{prefix}{key}"
            # Free-form maps (resources, selectors, annotations, security contexts) are documented as one value.
            if isinstance(value, dict) and value and key not in (
                "resources", "nodeSelector", "annotations", "podAnnotations", "labels",
                "podSecurityContext", "securityContext", "affinity",
            ):
                yield from leaves(value, path + ".")
            else:
                yield path

    missing = [p for p in leaves(values) if f"`{p}`" not in readme]
    assert not missing, missing


def test_media_mounts_prompts_and_recordings_and_names_its_zone():
    docs = render({"media": {
        "zone": "eu-1a",
        "prompts": {"configMap": {"name": "my-prompts"}},
        "recordings": {"persistentVolumeClaim": {"claimName": "recordings"}},
    }})
    for d in docs:
        kubernetes_validate.validate(d, KUBE_VERSION, strict=True)
    media = workload(docs, "media")
    c = container(media)
    e = env(c)
    assert (e["CALLMESH_MEDIA_ZONE"], e["CALLMESH_MEDIA_PROMPTS_DIR"], e["CALLMESH_MEDIA_RECORDINGS_DIR"]) == (
        "eu-1a", "/var/lib/callmesh/prompts", "/var/lib/callmesh/recordings")
    volumes = {v["name"]: v for v in media["spec"]["template"]["spec"]["volumes"]}
    assert volumes["prompts"]["configMap"] == {"name": "my-prompts"}
    assert volumes["recordings"]["persistentVolumeClaim"] == {"claimName": "recordings"}
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert mounts["prompts"]["readOnly"] and mounts["recordings"]["mountPath"] == "/var/lib/callmesh/recordings"
    # Without them, neither the variables nor the volumes.
    plain = container(workload(render(), "media"))
    assert "CALLMESH_MEDIA_PROMPTS_DIR" not in env(plain) and len(plain["volumeMounts"]) == 1


def test_the_api_is_served_with_a_kept_token():
    docs = render()
    c = container(workload(docs, "api"))
    grpc = next(p["containerPort"] for p in c["ports"] if p["name"] == "grpc")
    assert env(c)["CALLMESH_API_LISTEN"] == f"$(POD_IP):{grpc}"
    service = find(docs, "Service", "callmesh-api")
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {"grpc": 9070, "http": 9060}
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "api"
    secret = find(docs, "Secret", "callmesh-config")["stringData"]
    toml = tomllib.loads(secret["callmesh.toml"])
    # No token given: one is generated (32 characters) and named for kubectl.
    assert len(toml["api"]["tokens"]) == 1 and len(toml["api"]["tokens"][0]) == 32
    assert secret["api-token"] == toml["api"]["tokens"][0]
    given = find(render({"api": {"tokens": ["an-operator-token-123"]}}), "Secret", "callmesh-config")["stringData"]
    assert tomllib.loads(given["callmesh.toml"])["api"]["tokens"] == ["an-operator-token-123"]
