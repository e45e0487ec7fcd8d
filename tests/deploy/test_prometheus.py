"""A real Prometheus (Debian's) scrapes the running stack with the shipped rules: the
targets come up under the job names the rules expect, a delivery metric can be queried
through the HTTP API, every rule evaluates without error, and every dashboard query
parses and runs. Loopback only, bounded by deadlines."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from callbacks_dev.devstack.processes import ChildProcess, free_port

from tests.deploy.helpers import RunningStack
from tests.deploy.promql import dashboard_expressions
from tests.deploy.tools import ALERTS, debian_tool
from tests.helpers import eventually

pytestmark = pytest.mark.integration

JOBS = {
    "profile_api": "callbacks-profile-api",
    "dispatcher": "callbacks-dispatcher",
    "reporter": "callbacks-reporter",
}


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    async def get(self, path: str, **params: str) -> Any:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{self.url}{path}", params=params) as response,
        ):
            body = await response.json()
            assert body["status"] == "success", (path, params, body)
            return body["data"]


@pytest.fixture(scope="module")
async def prometheus(running_stack: RunningStack) -> AsyncIterator[Prometheus]:
    assert not running_stack.missing, f"services not running: {running_stack.missing}"
    binary = debian_tool("prometheus", "prometheus")
    workdir = Path(tempfile.mkdtemp(prefix="callbacks-prometheus-"))
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [
            {
                "job_name": JOBS[module],
                "static_configs": [{"targets": [running_stack.metrics_url(module).split("/")[2]]}],
            }
            for module in running_stack.started
        ],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config), "utf-8")
    process = ChildProcess(
        "prometheus",
        [
            binary,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        log_path=workdir / "prometheus.log",
        cwd=workdir,
    )
    process.start()
    url = f"http://127.0.0.1:{port}"
    try:
        await running_stack.stack.wait_ready(f"{url}/-/ready", timeout_s=30)
        yield Prometheus(url)
    finally:
        await asyncio.to_thread(process.stop)
        shutil.rmtree(workdir, ignore_errors=True)


async def test_prometheus_scrapes_every_service_under_its_job(prometheus: Prometheus) -> None:
    async def all_up() -> bool:
        targets = (await prometheus.get("/api/v1/targets"))["activeTargets"]
        up = {t["labels"]["job"] for t in targets if t["health"] == "up"}
        return up == set(JOBS.values())

    await eventually(all_up, timeout_s=30, what="every service scraped")


async def test_a_delivery_metric_is_queryable(prometheus: Prometheus) -> None:
    async def delivered() -> float:
        data = await prometheus.get(
            "/api/v1/query", query='sum(callbacks_deliveries_total{outcome="delivered"})'
        )
        return float(data["result"][0]["value"][1]) if data["result"] else 0.0

    assert await eventually(delivered, timeout_s=30, what="a delivered callback in Prometheus")


async def test_every_rule_evaluates_without_error(prometheus: Prometheus) -> None:
    async def evaluated() -> list[dict[str, Any]]:
        groups = (await prometheus.get("/api/v1/rules"))["groups"]
        rules: list[dict[str, Any]] = [r for g in groups for r in g["rules"]]
        done = rules and all(not r["lastEvaluation"].startswith("0001-") for r in rules)
        return rules if done else []

    rules = await eventually(evaluated, timeout_s=30, what="every rule evaluated once")
    expected = yaml.safe_load(ALERTS.read_text("utf-8"))["groups"]
    assert len(rules) == sum(len(g["rules"]) for g in expected)
    assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []


async def test_every_dashboard_query_runs(prometheus: Prometheus) -> None:
    for expression in dashboard_expressions():
        await prometheus.get("/api/v1/query", query=expression.replace("$__rate_interval", "1m"))
