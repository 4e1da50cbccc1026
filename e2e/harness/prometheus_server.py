"""A real Prometheus whose scrape targets a test can add while it runs.

It scrapes every second so a test sees a new sample within a couple of
seconds, and it is started with ``--web.enable-lifecycle`` so a changed config
is applied with ``POST /-/reload`` instead of a restart.
Callers: :mod:`harness.fixtures_services` and the tests under e2e/tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from harness.procs import Proc, wait_until
from harness.service_base import free_ports, require_binary, start_ready

HOST = "127.0.0.1"
SCRAPE_INTERVAL = "1s"


@dataclass
class PrometheusServer:
    """One prometheus process, its generated config and its TSDB dir.

    ``start()`` after ``stop()`` comes back on the same port with the same
    targets and the samples already stored.
    """

    port: int
    root: Path
    log_dir: Path
    host: str = HOST
    name: str = "prometheus"
    scrape_configs: list[dict[str, Any]] = field(default_factory=list)
    # A whole configuration written by someone else (Prometheus Operator):
    # when set, it is written as is instead of the one built from scrape_configs.
    config: dict[str, Any] | None = None
    # Path of the prometheus binary; None means Debian's package on PATH.
    binary: str | None = None
    _proc: Proc | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    @property
    def config_path(self) -> Path:
        return self.root / "prometheus.yml"

    def running(self) -> bool:
        return self._proc is not None and self._proc.alive()

    def start(self, *, timeout: float = 30.0) -> None:
        """Write the config, start Prometheus (no-op if running) and wait for /-/ready.

        Also waits until every target already configured is listed again.
        Raises NotReady with the log tail if it exits or is not ready in time.
        """
        if self.running():
            return
        self._write_config()
        argv = [
            self.binary or require_binary("prometheus"),
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.root / 'data'}",
            f"--web.listen-address={self.host}:{self.port}",
            "--web.enable-lifecycle",
        ]
        self._proc = start_ready(
            self.name,
            argv,
            log_dir=self.log_dir,
            ready=self.is_ready,
            what=f"prometheus on port {self.port}",
            timeout=timeout,
            cwd=self.root,
        )
        # Ready comes before service discovery has run, and a test that restarts
        # Prometheus expects its targets back, so wait for them too.
        wait_until(
            self._all_targets_listed,
            what="prometheus targets after start",
            timeout=timeout,
            proc=self._proc,
            interval=0.25,
        )

    def stop(self) -> None:
        """Stop Prometheus (it flushes its head block on SIGTERM); no-op if stopped."""
        if self._proc is not None:
            self._proc.stop(timeout=20.0)
            self._proc = None

    def is_ready(self) -> bool:
        """Return True if /-/ready answers 200."""
        return httpx.get(f"{self.url}/-/ready", timeout=2.0).status_code == 200

    def add_scrape_target(
        self,
        job: str,
        target: str,
        labels: dict[str, str] | None = None,
        *,
        wait_up: bool = False,
        timeout: float = 20.0,
    ) -> None:
        """Scrape ``target`` ("host:port") under ``job`` with extra ``labels``, then reload.

        Returns once the target is listed in /api/v1/targets (and, with
        ``wait_up``, once a scrape of it succeeded). That takes about 5 s:
        Prometheus passes discovered targets on to scraping at most every 5 s.
        Raises NotReady with the log tail if the target does not show up in
        time, httpx.HTTPStatusError if the reload is refused.
        """
        static: dict[str, Any] = {"targets": [target]}
        if labels:
            static["labels"] = dict(labels)
        self._job(job)["static_configs"].append(static)
        self.reload(timeout=timeout)
        wait_until(
            lambda: self._target_listed(job, target, need_up=wait_up),
            what=f"prometheus target {target} in job {job}",
            timeout=timeout,
            proc=self._proc,
            interval=0.25,
        )

    def reload(self, *, timeout: float = 20.0) -> None:
        """Write the config and apply it with POST /-/reload.

        Raises httpx.HTTPStatusError, with Prometheus's reason, if it refuses the config.
        """
        self._write_config()
        response = httpx.post(f"{self.url}/-/reload", timeout=timeout)
        if response.status_code != 200:
            raise httpx.HTTPStatusError(
                f"reload refused: {response.text}\n{self.log_tail()}",
                request=response.request,
                response=response,
            )

    def targets(self) -> list[dict[str, Any]]:
        """Return the active targets from /api/v1/targets."""
        response = httpx.get(f"{self.url}/api/v1/targets", params={"state": "active"}, timeout=5.0)
        response.raise_for_status()
        active: list[dict[str, Any]] = response.json()["data"]["activeTargets"]
        return active

    def query(self, promql: str, *, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Run an instant query and return its result vector (a list, maybe empty).

        Raises httpx.HTTPStatusError on a bad query and TypeError if the result
        is a scalar or string rather than a vector or matrix.
        """
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=timeout)
        response.raise_for_status()
        data = response.json()["data"]
        if data["resultType"] not in ("vector", "matrix"):
            raise TypeError(f"{promql!r} returned a {data['resultType']}, not a vector")
        result: list[dict[str, Any]] = data["result"]
        return result

    def log_tail(self) -> str:
        return self._proc.log_tail() if self._proc is not None else ""

    def _job(self, job: str) -> dict[str, Any]:
        for config in self.scrape_configs:
            if config["job_name"] == job:
                return config
        config = {"job_name": job, "static_configs": []}
        self.scrape_configs.append(config)
        return config

    def _all_targets_listed(self) -> bool:
        return all(
            self._target_listed(config["job_name"], target, need_up=False)
            for config in self.scrape_configs
            for static in config["static_configs"]
            for target in static["targets"]
        )

    def _target_listed(self, job: str, target: str, *, need_up: bool) -> bool:
        for entry in self.targets():
            same = entry.get("scrapePool") == job
            same = same and entry.get("discoveredLabels", {}).get("__address__") == target
            if same and (not need_up or entry.get("health") == "up"):
                return True
        return False

    def load_config(self, config: dict[str, Any], *, timeout: float = 20.0) -> None:
        """Replace the whole configuration with ``config`` and apply it (POST /-/reload).

        Raises httpx.HTTPStatusError, with Prometheus's reason, if it refuses it.
        """
        self.config = config
        self.reload(timeout=timeout)

    def _write_config(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.config is not None:
            self.config_path.write_text(yaml.safe_dump(self.config, sort_keys=False))
            return
        config = {
            "global": {
                "scrape_interval": SCRAPE_INTERVAL,
                "scrape_timeout": SCRAPE_INTERVAL,
                "evaluation_interval": SCRAPE_INTERVAL,
            },
            "scrape_configs": self.scrape_configs,
        }
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))


def start_prometheus(
    *, base_dir: Path, name: str = "prometheus", binary: str | None = None, host: str = HOST
) -> PrometheusServer:
    """Start Prometheus with no targets; config and TSDB in ``base_dir/name``.

    ``binary`` is a prometheus of one's own (default: Debian's on PATH); ``host``
    the address it listens on (the real node's veth address, for pods to reach it).
    Raises MissingBinary if prometheus is absent, NotReady if it does not start.
    """
    (port,) = free_ports(1)
    server = PrometheusServer(
        port=port, root=base_dir / name, log_dir=base_dir, name=name, binary=binary, host=host
    )
    server.start()
    return server
