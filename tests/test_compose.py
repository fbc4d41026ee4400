"""docker-compose.yml stays consistent with the project (no Docker engine runs here).

It runs the Kafka version the tests run (tools/kafka/pom.xml), its environment overrides
name real settings, and the worker's state and outbox live on volumes.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import yaml

from accrochage.settings import load_settings
from accrochage.streams.metrics import Metrics
from accrochage.streams.writer_process import STOP_SECONDS
from tests.conftest import ROOT


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def test_compose_runs_the_kafka_version_of_the_tests() -> None:
    pom = (ROOT / "tools" / "kafka" / "pom.xml").read_text(encoding="utf-8")
    found = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom)
    assert found is not None
    assert compose()["services"]["kafka"]["image"] == f"apache/kafka:{found.group(1)}"


def test_compose_environment_names_real_settings(tmp_path: Path, monkeypatch: Any) -> None:
    worker = compose()["services"]["worker"]
    environment: dict[str, str] = worker["environment"]
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(ROOT / "accrochage.example.toml")
    assert settings.kafka.bootstrap == environment["ACCROCHAGE_KAFKA__BOOTSTRAP"]
    assert str(settings.paths.state) == environment["ACCROCHAGE_PATHS__STATE"]
    assert str(settings.paths.outbox) == environment["ACCROCHAGE_PATHS__OUTBOX"]
    assert worker["command"][-1] == "worker"


def test_compose_stops_the_worker_gracefully_through_an_init() -> None:
    """The worker stops on SIGTERM within its own bound (110 s), below the grace period, and
    is not PID 1 (tini is: it forwards the signal and reaps orphans)."""
    worker = compose()["services"]["worker"]
    assert worker["init"] is True
    assert int(worker["stop_grace_period"].removesuffix("s")) > 110


def test_compose_keeps_state_and_outbox_on_volumes() -> None:
    document = compose()
    mounts = {m.split(":")[1]: m.split(":")[0] for m in document["services"]["worker"]["volumes"]}
    state_dir = str(
        Path(document["services"]["worker"]["environment"]["ACCROCHAGE_PATHS__STATE"]).parent
    )
    outbox = document["services"]["worker"]["environment"]["ACCROCHAGE_PATHS__OUTBOX"]
    assert mounts[state_dir] in document["volumes"]
    assert mounts[outbox] in document["volumes"]


def _yaml(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _mounted(service: dict[str, Any], target: str) -> Path:
    for mount in service["volumes"]:
        source, inside = mount.split(":")[:2]
        if inside == target:
            return ROOT / source
    raise AssertionError(f"nothing mounted at {target}")


def test_prometheus_scrapes_the_worker_metrics_with_the_token() -> None:
    document = compose()
    prometheus = document["services"]["prometheus"]
    config = _yaml(_mounted(prometheus, "/etc/prometheus/prometheus.yml"))  # its default
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    worker_port = document["services"]["worker"]["ports"][0].rsplit(":", 1)[1]
    assert job["static_configs"][0]["targets"] == [f"worker:{worker_port}"]
    assert job["authorization"]["type"] == "Bearer"
    token_file = job["authorization"]["credentials_file"]
    assert any(m.split(":")[1] == token_file for m in prometheus["volumes"])
    assert "worker" in prometheus["depends_on"]


def test_the_worker_sends_alerts_to_the_example_alertmanager(monkeypatch: Any) -> None:
    document = compose()
    environment = document["services"]["worker"]["environment"]
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(ROOT / "accrochage.example.toml")
    manager = document["services"]["alertmanager"]
    assert (
        settings.alerts.alertmanager.get_secret_value()
        == f"http://alertmanager:{manager['ports'][0].rsplit(':', 1)[1]}"
    )
    flag = next(c for c in manager["command"] if c.startswith("--config.file="))
    config = _yaml(_mounted(manager, flag.split("=", 1)[1]))
    names = {r["name"] for r in config["receivers"]}
    routes = [config["route"], *config["route"].get("routes", [])]
    assert all(route["receiver"] in names for route in routes)
    grouped = set(config["route"]["group_by"])
    assert grouped == {"alertname", "certifier"}  # the labels accrochage's alerts carry


def test_the_worker_is_given_the_time_its_stop_may_take() -> None:
    grace = compose()["services"]["worker"]["stop_grace_period"]
    seconds = int(re.fullmatch(r"(\d+)s", grace).group(1))  # type: ignore[union-attr]
    assert seconds > STOP_SECONDS, "SIGKILLed before the groups in flight are stored"


def test_the_broker_keeps_its_log_on_its_volume() -> None:
    """The image's generated configuration put the log in /tmp inside the container once any
    KAFKA_ variable was given: a recreated broker started empty."""
    kafka = compose()["services"]["kafka"]
    (mount,) = kafka["volumes"]
    volume, inside = mount.split(":")[:2]
    assert volume in compose()["volumes"]
    assert kafka["environment"]["KAFKA_LOG_DIRS"] == inside
    cluster = str(kafka["environment"]["CLUSTER_ID"])
    assert len(base64.urlsafe_b64decode(cluster + "==")) == 16, "a KRaft id: 16 bytes"
    worker = compose()["services"]["worker"]
    assert worker["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert "healthcheck" in kafka


def test_prometheus_says_when_accrochage_itself_is_down() -> None:
    """accrochage's own alerts resolve five minutes after it stops sending them: Prometheus
    rules say the service is down or its watch stalled, routed to the same Alertmanager."""
    document = compose()
    prometheus = document["services"]["prometheus"]
    config = _yaml(_mounted(prometheus, "/etc/prometheus/prometheus.yml"))
    (rules_path,) = config["rule_files"]
    rules = _yaml(_mounted(prometheus, rules_path))
    alerts = {r["alert"]: r for group in rules["groups"] for r in group["rules"]}
    assert set(alerts) == {
        "AccrochageDown",
        "AccrochageWatchStalled",
        "AccrochageFlushStalled",
        "AccrochageAlertsUndelivered",
        "AccrochageConfigurationNotApplied",
        "AccrochageStorageLow",
        "AccrochageStateLogGrowing",
        "AccrochageEventsHeldBack",
        "AccrochageEventsRefused",
        "AccrochagePlatformRateLimited",
        "AccrochageKafkaUnreachable",
    }
    (job,) = config["scrape_configs"]
    assert f'up{{job="{job["job_name"]}"}} == 0' in alerts["AccrochageDown"]["expr"]
    metrics = Metrics()
    metrics.watch_free_space(lambda: 1, 1)
    metrics.watch_log_size(lambda: 1)
    metrics.publish_lag({("topic", 0): 0})  # the worker's, once its broker answers
    metrics.alert_receivers(["webhook:0123456789ab"])  # once a receiver is configured
    served = set()
    for family in metrics.registry.collect():
        served |= {family.name, f"{family.name}_total", *(s.name for s in family.samples)}
    for name, rule in alerts.items():
        # A renamed metric left a rule that never fires.
        used = set(re.findall(r"accrochage_\w+", rule["expr"]))
        assert name == "AccrochageDown" or used, name
        assert used <= served, (name, used - served)
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
    # The worker with no lag figure (its broker out of reach) is told, not mistaken for the
    # service down: the deadline rules never see events that do not arrive.
    unreachable = alerts["AccrochageKafkaUnreachable"]
    assert "accrochage_kafka_lag_messages" in unreachable["expr"]
    assert f'up{{job="{job["job_name"]}"}} == 1' in unreachable["expr"]
    # An embedded service scraped with the same rules has no broker: never "unreachable".
    assert "count_over_time(accrochage_kafka_lag_messages[7d])" in unreachable["expr"]
    manager_port = document["services"]["alertmanager"]["ports"][0].rsplit(":", 1)[1]
    (target,) = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert target == f"alertmanager:{manager_port}"


def test_the_image_runs_as_a_user_of_its_own_and_checks_its_health() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    worker_port = compose()["services"]["worker"]["ports"][0].rsplit(":", 1)[1]
    assert re.search(rf"HEALTHCHECK .*\n?.*127\.0\.0\.1:{worker_port}/health", dockerfile)
    mounts = [m.split(":")[1] for m in compose()["services"]["worker"]["volumes"]]
    for inside in mounts:
        if inside.startswith("/data/"):
            assert inside in dockerfile, f"{inside}: made in the image, owned by its user"
