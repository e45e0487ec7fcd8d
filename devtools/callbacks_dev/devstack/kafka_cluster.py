"""A local Apache Kafka cluster: N combined broker+controller KRaft nodes on loopback.

Kafka's own jars come from Maven Central through ``mvn`` (``kafka-pom.xml`` beside this
file) into a cache directory outside the repository, once; later starts reuse them.
Each node's storage is formatted with Kafka's own storage tool, and every node is a
child process that dies with its parent. ``start`` returns once the cluster's metadata
lists every broker, so a caller can create replicated topics at once.

The nodes can be killed, paused and restarted one by one: that is what the fault tests
need (a broker lost with SIGKILL, every broker stopped with SIGSTOP).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from callbacks_dev.devstack.processes import ChildProcess, free_port, wait_for_port

# The newest Apache Kafka line that aiokafka 0.14 works with: Kafka 4.0 removed the
# protocol versions older clients sent (KIP-896); aiokafka 0.14 speaks versions that
# every 4.x release keeps, and the whole suite passes on this one.
KAFKA_VERSION = "4.4.0"

_HERE = Path(__file__).parent
POM = _HERE / "kafka-pom.xml"
LOG4J_CONFIG = _HERE / "kafka-log4j2.properties"
MAVEN_TIMEOUT_S = 900.0


def cache_root() -> Path:
    """Where resolved jars live: ``CALLBACKS_KAFKA_CACHE``, else the user's cache dir."""
    given = os.environ.get("CALLBACKS_KAFKA_CACHE")
    if given:
        return Path(given)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "callbacks"


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """One resolver at a time per cache, across processes (tests, ``make run``)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def resolve_jars(
    version: str = KAFKA_VERSION, *, say: Callable[[str], None] = lambda _line: None
) -> Path:
    """The directory of Kafka's runtime jars, resolved through Maven on first use.

    A directory is used only once Maven finished filling it (a marker file says so), so
    an interrupted download is redone rather than half used.
    """
    home = cache_root() / f"kafka-{version}"
    libs = home / "libs"
    marker = home / ".resolved"
    if marker.exists():
        return libs
    with _exclusive(home.parent / f".kafka-{version}.lock"):
        if marker.exists():
            return libs
        if shutil.which("mvn") is None:
            raise RuntimeError("Apache Kafka's jars are resolved with Maven: `mvn` is not on PATH")
        say(f"resolving Apache Kafka {version} from Maven Central into {home} (once) ...")
        staging = Path(tempfile.mkdtemp(prefix="libs-", dir=home.parent))
        try:
            result = subprocess.run(
                [
                    "mvn",
                    "--batch-mode",
                    "--quiet",
                    "--file",
                    str(POM),
                    "dependency:copy-dependencies",
                    f"-Dkafka.version={version}",
                    "-DincludeScope=runtime",
                    f"-DoutputDirectory={staging}",
                ],
                capture_output=True,
                text=True,
                timeout=MAVEN_TIMEOUT_S,
                check=False,
            )
            if result.returncode != 0:
                tail = (result.stdout + result.stderr)[-2000:]
                raise RuntimeError(f"mvn could not resolve Apache Kafka {version}:\n{tail}")
            if libs.exists():
                shutil.rmtree(libs)
            home.mkdir(parents=True, exist_ok=True)
            staging.rename(libs)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        marker.touch()
    return libs


@dataclass
class KafkaNode:
    node_id: int
    broker_port: int
    controller_port: int
    config: Path
    log_path: Path
    process: ChildProcess | None = None

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()


class KafkaCluster:
    """``nodes`` combined KRaft nodes, replication defaults of a production cluster.

    Every topic the platform creates gets its replication from ``python -m callbacks
    init`` (3 and min ISR 2 here); the broker defaults below cover Kafka's own topics.
    """

    def __init__(
        self,
        nodes: int = 3,
        *,
        host: str = "127.0.0.1",
        workdir: Path | None = None,
        heap: str = "512m",
        version: str = KAFKA_VERSION,
        first_broker_port: int | None = None,
    ) -> None:
        self.host = host
        self.version = version
        self.heap = heap
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="callbacks-kafka-"))
        self.cluster_id = _cluster_id()
        self.nodes = [
            KafkaNode(
                node_id=i + 1,
                broker_port=(first_broker_port + i) if first_broker_port else free_port(host),
                controller_port=free_port(host),
                config=self.workdir / f"node-{i + 1}.properties",
                log_path=self.workdir / f"node-{i + 1}.log",
            )
            for i in range(nodes)
        ]
        self._libs: Path | None = None

    @property
    def bootstrap(self) -> str:
        return ",".join(f"{self.host}:{n.broker_port}" for n in self.nodes)

    @property
    def min_insync(self) -> int:
        return min(2, len(self.nodes))

    def start(self, timeout_s: float = 180.0, *, say: Callable[[str], None] = print) -> None:
        """Resolve, format, start every node and wait until metadata shows them all."""
        self._libs = resolve_jars(self.version, say=say)
        voters = ",".join(f"{n.node_id}@{self.host}:{n.controller_port}" for n in self.nodes)
        for node in self.nodes:
            node.config.write_text(self._config(node, voters))
        formatting = [
            subprocess.Popen(
                [
                    *self._java("kafka.tools.StorageTool"),
                    "format",
                    "--config",
                    str(node.config),
                    "--cluster-id",
                    self.cluster_id,
                    "--ignore-formatted",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for node in self.nodes
        ]
        for node, process in zip(self.nodes, formatting, strict=True):
            out, _ = process.communicate(timeout=120)
            if process.returncode != 0:
                raise RuntimeError(f"kafka-storage format of node {node.node_id} failed:\n{out!r}")
        for node in self.nodes:
            self.start_node(node.node_id)
        deadline = time.monotonic() + timeout_s
        for node in self.nodes:
            left = max(1.0, deadline - time.monotonic())
            wait_for_port(self.host, node.broker_port, left, node.alive)
        self.wait_for_brokers(len(self.nodes), max(1.0, deadline - time.monotonic()))

    def start_node(self, node_id: int) -> None:
        """Start (or restart, on its formatted storage) one node."""
        node = self.node(node_id)
        node.process = ChildProcess(
            f"kafka-{node_id}",
            [*self._java("kafka.Kafka"), str(node.config)],
            log_path=node.log_path,
        )
        node.process.start()

    def node(self, node_id: int) -> KafkaNode:
        return self.nodes[node_id - 1]

    def kill_node(self, node_id: int) -> None:
        """SIGKILL, as a crashed machine: nothing is flushed or handed over."""
        process = self.node(node_id).process
        if process is not None:
            process.kill()

    def pause(self) -> None:
        """SIGSTOP every node: the cluster hangs without closing a connection."""
        for node in self.nodes:
            if node.process is not None and node.alive():
                os.killpg(node.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        for node in self.nodes:
            if node.process is not None and node.alive():
                os.killpg(node.process.pid, signal.SIGCONT)

    def wait_for_brokers(self, count: int, timeout_s: float) -> None:
        """Block until the cluster's metadata lists ``count`` brokers."""
        deadline = time.monotonic() + timeout_s
        seen = 0
        while time.monotonic() < deadline:
            for node in self.nodes:
                if node.process is not None and not node.alive():
                    raise RuntimeError(
                        f"Kafka node {node.node_id} exited; see {node.log_path}:\n"
                        + _tail(node.log_path)
                    )
            with contextlib.suppress(Exception):
                seen = asyncio.run(_broker_count(self.bootstrap))
                if seen >= count:
                    return
            time.sleep(0.5)
        raise TimeoutError(f"Kafka metadata lists {seen} of {count} brokers after {timeout_s:.0f}s")

    def stop(self, *, graceful: bool = True, timeout_s: float = 15.0) -> None:
        """Stop every node. ``graceful``: SIGTERM to all at once (one by one, the last
        node's controlled shutdown waits for a quorum that has already gone), SIGKILL
        for what is still running after ``timeout_s``. Otherwise SIGKILL at once: for
        throwaway data, as the suite's."""
        self.resume()  # a stopped JVM cannot act on SIGTERM
        running = [n.process for n in self.nodes if n.process is not None and n.alive()]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM if graceful else signal.SIGKILL)
        deadline = time.monotonic() + (timeout_s if graceful else 5.0)
        for process in running:
            process.stop(timeout_s=max(deadline - time.monotonic(), 0.1))
        for node in self.nodes:
            node.process = None

    def _java(self, main: str) -> list[str]:
        assert self._libs is not None
        java = shutil.which("java") or "java"
        return [
            java,
            f"-Xms{self.heap}",
            f"-Xmx{self.heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            "-cp",
            f"{self._libs}/*",
            main,
        ]

    def _config(self, node: KafkaNode, voters: str) -> str:
        replicas = len(self.nodes)
        settings = {
            "process.roles": "broker,controller",
            "node.id": node.node_id,
            "controller.quorum.voters": voters,
            "listeners": (
                f"PLAINTEXT://{self.host}:{node.broker_port},"
                f"CONTROLLER://{self.host}:{node.controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://{self.host}:{node.broker_port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.workdir / f"data-{node.node_id}"),
            # Production-like: topics exist only when `init` created them.
            "auto.create.topics.enable": "false",
            "default.replication.factor": replicas,
            "min.insync.replicas": self.min_insync,
            "offsets.topic.replication.factor": replicas,
            "offsets.topic.num.partitions": 12,
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": self.min_insync,
            "share.coordinator.state.topic.replication.factor": replicas,
            "share.coordinator.state.topic.min.isr": self.min_insync,
            # A lost broker is fenced (its partitions' leaders move) within ~3 s, not the
            # default 9 s: the fault tests ask that delivery go on within a session timeout.
            "broker.session.timeout.ms": 3000,
            "broker.heartbeat.interval.ms": 500,
            # Quick local groups: no join delay, and the suite's short session timeouts.
            "group.initial.rebalance.delay.ms": 0,
            "group.min.session.timeout.ms": 1000,
            # Compaction that a test can watch happen.
            "log.cleaner.backoff.ms": 500,
            "log.retention.check.interval.ms": 5000,
            # Two cores: fewer threads than Kafka's server defaults.
            "num.network.threads": 2,
            "num.io.threads": 4,
            "num.replica.fetchers": 1,
            "background.threads": 4,
            "log.cleaner.threads": 1,
        }
        return "".join(f"{key}={value}\n" for key, value in settings.items())


def _cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding, never
    starting with ``-`` (the storage tool would read it as an option)."""
    import base64

    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


async def _broker_count(bootstrap: str) -> int:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
        return len(cluster["brokers"])
    finally:
        await admin.close()


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
