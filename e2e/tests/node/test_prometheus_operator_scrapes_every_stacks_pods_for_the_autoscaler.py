"""Prometheus Operator turns each stack's PodMonitor into scraping of its real pods, and the
operator reads each stack's latency from it.

On the demo's cluster (the real node), with Prometheus Operator's CRDs installed: two
stacks, the demo's (the project's API, whose histogram names its stack) and the Hono +
BullMQ example's (an application of one's own, whose histogram names none, read by pod
name), each get a PodMonitor from the operator once their spec changes. The real
Prometheus Operator (built from its Go module, ``make monitoring-test``) runs against
the cluster and turns a ``Prometheus`` object and both PodMonitors into the
configuration it writes to the Secret ``prometheus-<name>``; its config reloader fills
in the pod's placeholders as the pod's init container would (:func:`rendered_config`),
and the harness's real Prometheus (built from Prometheus's module: Debian's leaves
Kubernetes discovery out) loads it, finds the pods through the API server and scrapes
them at their IPs. The ``Prometheus`` object has no replica: its pod would need
Prometheus's image, which the node cannot pull.

Every API pod, the demo's workers, and the demo's Redis and PgBouncer exporters answer
up; every series carries its stack's namespace and name from Kubernetes, whatever the
application exports; the operator's own latency query answers for the demo's stack;
and the operator in its pod, pointed at this Prometheus, writes each stack's p95 into
its status while requests flow.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from functools import partial
from pathlib import Path

import httpx
import pytest
from kubernetes import client

from harness import demo, images
from harness.controlplane import ControlPlane
from harness.fixtures_node import DemoRuns
from harness.procs import wait_until
from harness.prometheus_operator import (
    PrometheusOperator,
    generated_config,
    install_crds,
    prometheus_binary,
    prometheus_object,
    prometheus_version,
    rendered_config,
    uninstall_crds,
)
from harness.prometheus_server import PrometheusServer, start_prometheus
from harness.stacks import apply_ok, get_stack, wait_for
from retention_operator import names
from retention_operator.autoscaling.promql import LatencyReading, latency_query, parse_latency
from retention_operator.builders import monitoring, naming

pytestmark = [pytest.mark.node, pytest.mark.prometheus_operator, pytest.mark.timeout(900)]

MONITORING = "monitoring"
EXAMPLE = "bullmq"
EXAMPLE_NAMESPACE = "messages"
PROMETHEUS = "stacks"
# Requests kept flowing while the rates fill: a few a second to each API, bounded.
REQUESTS_PER_SECOND, MAX_REQUESTS, MAX_LOAD_SECONDS = 4, 2000, 300


def _endpoint_job(namespace: str, stack: str, port: str) -> str:
    """The scrape pool Prometheus Operator names for the PodMonitor's endpoint of ``port``."""
    return f"podMonitor/{namespace}/{naming.pod_monitor(stack)}/{monitoring.PORTS.index(port)}"


def _pods(cp: ControlPlane, namespace: str, stack: str, component: str) -> set[str]:
    """The names of the stack's running pods of ``component`` with an IP."""
    selector = f"{names.LABEL_STACK}={stack},{names.LABEL_COMPONENT}={component}"
    out = json.loads(cp.kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json"))
    return {
        p["metadata"]["name"]
        for p in out["items"]
        if p["status"].get("podIP") and p["status"].get("phase") == "Running"
    }


def _has_pod_monitor(cp: ControlPlane, namespace: str, stack: str) -> bool:
    found = cp.kubectl_run("get", "podmonitor", naming.pod_monitor(stack), "-n", namespace)
    return found.returncode == 0


def _all_up(prometheus: PrometheusServer, job: str, pods: set[str]) -> bool:
    """True when the targets of ``job`` that answer up are the pods ``pods``."""
    up = {
        t["labels"].get("pod", "")
        for t in prometheus.targets()
        if t.get("scrapePool") == job and t["health"] == "up"
    }
    return up == pods


def _targets(prometheus: PrometheusServer) -> str:
    """The active targets, one line each, for a failure message."""
    return "\n".join(
        f"{t.get('scrapePool')} {t.get('scrapeUrl')} {t.get('health')} {t.get('lastError')}"
        for t in prometheus.targets()
    )


def _flowing(prometheus: PrometheusServer, key: tuple[str, str]) -> LatencyReading | None:
    """The latency query's reading of stack ``key`` once it counts requests, else None."""
    reading = parse_latency(prometheus.query(latency_query()), now=time.time()).get(key)
    return reading if reading is not None and reading.rps else None


def _set_prometheus_url(cp: ControlPlane, namespace: str, stack: str, url: str | None) -> None:
    """Point the stack's API autoscaling at ``url`` (None: back to the operator's default)."""
    patch = {"spec": {"api": {"autoscaling": {"prometheusUrl": url}}}}
    cp.kubectl("patch", "rstack", stack, "-n", namespace, "--type=merge", "-p", json.dumps(patch))


def _p95(custom: client.CustomObjectsApi, namespace: str, stack: str) -> float | None:
    found = get_stack(custom, namespace, stack)
    value = ((found.get("status") or {}).get("autoscaling") or {}).get("api", {})
    p95 = value.get("p95Milliseconds")
    return float(p95) if p95 is not None else None


class _Requests:
    """POSTs a job to each API ((Service URL, jobs path)) at a steady rate from a thread,
    until stopped, ``MAX_REQUESTS`` or ``MAX_LOAD_SECONDS``."""

    def __init__(self, targets: list[tuple[str, str]]) -> None:
        self.targets = targets
        self.sent = 0
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Requests:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def progress(self) -> str:
        return f"{self.sent} requests sent, {len(self.failed)} failed: {self.failed[:3]}"

    def _run(self) -> None:
        task = f"monitored-{uuid.uuid4().hex[:8]}"
        deadline = time.monotonic() + MAX_LOAD_SECONDS
        with httpx.Client(timeout=10, limits=httpx.Limits(keepalive_expiry=1.0)) as http:
            while not self._stop.is_set() and time.monotonic() < deadline:
                for url, path in self.targets:
                    if self.sent >= MAX_REQUESTS:
                        return
                    self.sent += 1
                    try:
                        reply = http.post(f"{url}{path}", json={"task": task, "payload": {}})
                        if reply.status_code >= 400:
                            self.failed.append(f"{url}: {reply.status_code}")
                    except httpx.HTTPError as exc:
                        self.failed.append(f"{url}: {exc!r}")
                self._stop.wait(1 / REQUESTS_PER_SECOND)


def test_every_stacks_pods_are_scraped_and_each_stacks_latency_read(
    demo_runs: DemoRuns, demo_api: client.ApiClient, tmp_path: Path
) -> None:
    current = demo_runs.current
    cp = current.cp
    assert cp.node is not None
    core, apps = client.CoreV1Api(demo_api), client.AppsV1Api(demo_api)
    custom = client.CustomObjectsApi(demo_api)
    stacks = {(demo.NAMESPACE, current.deployed.stack), (EXAMPLE_NAMESPACE, "messages")}

    built = images.build([demo.workload(EXAMPLE).image])
    images.import_into(list(built.values()), address=cp.node.containerd_address)
    refs = {**current.refs, **{name: image.ref for name, image in built.items()}}
    prometheus = start_prometheus(
        base_dir=tmp_path,
        name="prometheus-operated",
        binary=str(prometheus_binary()),
        # The operator's pod reaches the host only at its end of the node's veth.
        host=cp.node.net.host_ip,
    )
    promop = PrometheusOperator(
        cp, tmp_path / "promop", namespaces=[MONITORING, *sorted({ns for ns, _ in stacks})]
    )
    install_crds(cp)
    try:
        demo.deploy(
            cp,
            current.postgres,
            postgres_ca=current.postgres_ca,
            refs=refs,
            example=EXAMPLE,
            namespace=EXAMPLE_NAMESPACE,
        )
        # A spec change reconciles: the operator finds the CRD and writes the PodMonitor.
        for namespace, stack in stacks:
            _set_prometheus_url(cp, namespace, stack, prometheus.url)
        for namespace, stack in stacks:
            wait_until(
                partial(_has_pod_monitor, cp, namespace, stack),
                what=f"the PodMonitor of {namespace}/{stack}",
                timeout=60,
            )

        promop.start()
        cp.kubectl("create", "namespace", MONITORING)
        version = prometheus_version(prometheus_binary())
        apply_ok(cp, prometheus_object(PROMETHEUS, MONITORING, cp=cp, prometheus_version=version))
        api_port = naming.API_HTTP_PORT_NAME
        wait_until(
            lambda: (
                (c := generated_config(core, MONITORING, PROMETHEUS)) is not None
                and {_endpoint_job(ns, s, api_port) for ns, s in stacks}
                <= {j["job_name"] for j in c.get("scrape_configs") or []}
            ),
            what="Prometheus Operator's configuration with both PodMonitors",
            timeout=60,
        )
        wait_for(
            lambda: apps.read_namespaced_stateful_set(f"prometheus-{PROMETHEUS}", MONITORING),
            what="Prometheus Operator's StatefulSet",
            timeout=30,
        )
        prometheus.load_config(
            rendered_config(
                apps,
                core,
                MONITORING,
                PROMETHEUS,
                work=tmp_path / "pod",
                reload_url=f"{prometheus.url}/-/reload",
            )
        )

        # Every pod with a named metrics port answers up through its endpoint.
        demo_ns, demo_stack = demo.NAMESPACE, current.deployed.stack
        expected = {
            _endpoint_job(ns, s, api_port): _pods(cp, ns, s, names.COMPONENT_API)
            for ns, s in stacks
        }
        for component, port in (
            (names.COMPONENT_WORKERS, naming.WORKERS_METRICS_PORT_NAME),
            (names.COMPONENT_REDIS, naming.REDIS_EXPORTER_PORT_NAME),
            (names.COMPONENT_PGBOUNCER, naming.PGBOUNCER_EXPORTER_PORT_NAME),
        ):
            expected[_endpoint_job(demo_ns, demo_stack, port)] = _pods(
                cp, demo_ns, demo_stack, component
            )
        assert all(expected.values()), expected
        for job, pods in expected.items():
            try:
                wait_until(
                    partial(_all_up, prometheus, job, pods),
                    what=f"{job}: every pod up ({sorted(pods)})",
                    timeout=90,
                )
            except Exception as exc:
                raise AssertionError(f"{exc}\n{_targets(prometheus)}") from None
        print({job: len(pods) for job, pods in expected.items()})

        urls = [
            (demo.service_url(cp, naming.api(s), ns), demo.workload(ex).jobs_path)
            for (ns, s), ex in (
                ((demo_ns, demo_stack), ""),
                ((EXAMPLE_NAMESPACE, "messages"), EXAMPLE),
            )
        ]
        with _Requests(urls) as sent:
            # The stack's name comes from the pod's label, whatever the histogram carries.
            for histogram, (ns, s) in (
                ("retention_api_request_duration_seconds_count", (demo_ns, demo_stack)),
                ("http_request_duration_seconds_count", (EXAMPLE_NAMESPACE, "messages")),
            ):
                series = wait_for(
                    partial(prometheus.query, f'{histogram}{{namespace="{ns}"}}'),
                    what=f"{histogram} of {ns}",
                    timeout=60,
                )
                assert {(x["metric"]["namespace"], x["metric"]["stack"]) for x in series} == {
                    (ns, s)
                }, series
            redis_up = prometheus.query(f'redis_up{{namespace="{demo_ns}"}} == 1')
            assert {x["metric"]["pod"] for x in redis_up} == expected[
                _endpoint_job(demo_ns, demo_stack, naming.REDIS_EXPORTER_PORT_NAME)
            ]
            pgbouncer_up = prometheus.query(f'pgbouncer_up{{namespace="{demo_ns}"}} == 1')
            assert {x["metric"]["pod"] for x in pgbouncer_up} == expected[
                _endpoint_job(demo_ns, demo_stack, naming.PGBOUNCER_EXPORTER_PORT_NAME)
            ]

            # The operator's own query, as its loop sends it, answers for the demo's stack.
            # It reads a rate of 0 until the window holds two scrapes with requests between.
            reading = wait_for(
                partial(_flowing, prometheus, (demo_ns, demo_stack)),
                what=f"requests of the demo's stack in its latency query ({sent.progress()})",
                timeout=90,
            )
            print(f"latency query: {reading}")
            assert reading.p95_ms is not None
            # The operator in its pod reads both stacks from this Prometheus.
            for ns, s in stacks:
                p95 = wait_for(
                    partial(_p95, custom, ns, s), what=f"{ns}/{s} p95 in status", timeout=90
                )
                print(f"{ns}/{s}: p95 {p95} ms in status")
        print(sent.progress())
        assert not sent.failed
    finally:
        cp.kubectl(
            "delete",
            "prometheus",
            PROMETHEUS,
            "-n",
            MONITORING,
            "--ignore-not-found",
            "--timeout=60s",
            check=False,
            timeout=90,
        )
        promop.stop()
        prometheus.stop()
        for namespace in (EXAMPLE_NAMESPACE, MONITORING):
            # Waited for: the next run in the same cluster makes the namespace again.
            cp.kubectl("delete", "namespace", namespace, "--timeout=180s", check=False, timeout=200)
        _set_prometheus_url(cp, demo.NAMESPACE, current.deployed.stack, None)
        uninstall_crds(cp)
