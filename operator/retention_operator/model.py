"""The RetentionStack resource as pydantic models: spec, status and the object.

This module is the single source of the resource's schema. ``crdgen`` turns
the models into the CRD's structural OpenAPI schema, so every field's
``description`` is what ``kubectl explain`` prints, and every default here is
also a default the API server applies. Rules that cross fields exist twice on
purpose: as CEL rules (``x-kubernetes-validations``) that the API server
enforces, and as model validators with the same messages, so the operator and
the samples' tests refuse exactly what the API server refuses.

Python attributes are snake_case; the wire format is camelCase (aliases).
Parse an object with ``RetentionStack.model_validate(body)``; dump for the API
with ``model_dump(by_alias=True, exclude_none=True, mode="json")``.

Imports pydantic and ``names`` only (layering contract).
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict, JsonValue
from pydantic.json_schema import SkipJsonSchema

# --- Building blocks -------------------------------------------------------------------------

# A Kubernetes resource.Quantity in its canonical text form (the same regular
# expression controller-gen emits for resource.Quantity).
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
    r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
# A quantity without a sign: the pattern of sizes that must be positive.
UNSIGNED_QUANTITY_PATTERN = (
    r"^(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
    r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
# DNS-1123 subdomain (Secret names, StorageClass names) and label (keys).
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"
ENV_NAME_PATTERN = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
# Characters pgbouncer.ini and a postgresql:// URL take without quoting.
PG_IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_$-]*$"
HOST_PATTERN = r"^[A-Za-z0-9]([-A-Za-z0-9.:]*[A-Za-z0-9])?$"

# The longest stack name whose child names (``<stack>-redis-headless``, pod
# names with an ordinal and a revision hash) stay within 63 characters.
MAX_STACK_NAME_LENGTH = 40


def _is_quantity(text: str) -> bool:
    return re.fullmatch(QUANTITY_PATTERN, text) is not None


def _quantity_is_positive(text: str) -> bool:
    """Return whether a quantity string already known to be valid is above zero.

    The suffix only scales the number, so the sign of the leading number decides.
    """
    number = re.match(r"^[+-]?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))", text)
    return number is not None and Decimal(number.group(0)) > 0


def _check_quantity(value: int | str) -> int | str:
    if isinstance(value, str) and not _is_quantity(value):
        raise ValueError(f"{value!r} is not a Kubernetes quantity (for example 500m, 256Mi, 2)")
    return value


def _check_positive_quantity(value: str) -> str:
    if not (_is_quantity(value) and _quantity_is_positive(value)):
        raise ValueError(f"{value!r} must be a positive Kubernetes quantity such as 10Gi")
    return value


Quantity = Annotated[
    int | str,
    AfterValidator(_check_quantity),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "x-kubernetes-int-or-string": True,
        }
    ),
]


def _cel(rule: str, message: str, field_path: str | None = None) -> JsonDict:
    """Return one ``x-kubernetes-validations`` entry; ``field_path`` is where errors point."""
    entry: JsonDict = {"rule": rule, "message": message}
    if field_path is not None:
        entry["fieldPath"] = field_path
    return entry


def _validations(*rules: JsonDict) -> JsonDict:
    """Return the ``json_schema_extra`` that attaches CEL rules to a schema node."""
    entries: list[JsonValue] = list(rules)
    return {"x-kubernetes-validations": entries}


def _message(rule: JsonDict) -> str:
    """Return a CEL rule's message, for the model validator that mirrors it."""
    return str(rule["message"])


def _defaults(model: type[BaseModel]) -> dict[str, Any]:
    """Return a model's defaults as the CRD ``default`` of a field of that type.

    The API server checks a default against the CEL rules as it stands, without
    filling in nested defaults first, so an object default must be complete.
    """
    return model().model_dump(by_alias=True, exclude_none=True, mode="json")


class _Model(BaseModel):
    """Base of spec models: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


class _StatusModel(BaseModel):
    """Base of status models: tolerant of fields written by a newer operator."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class ResourceRequirements(_Model):
    """Compute resources of a container, as in a Pod spec."""

    requests: dict[str, Quantity] = Field(
        default_factory=dict,
        max_length=16,
        description="Minimum resources (for example cpu: 100m, memory: 128Mi).",
    )
    limits: dict[str, Quantity] = Field(
        default_factory=dict,
        max_length=16,
        description="Maximum resources (for example memory: 256Mi).",
    )


class KeySelector(_Model):
    """A key of a Secret or ConfigMap in the stack's namespace."""

    name: str = Field(
        min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN, description="Object name."
    )
    key: str = Field(
        min_length=1, max_length=253, pattern=SECRET_KEY_PATTERN, description="Key in its data."
    )
    optional: bool = Field(default=False, description="Whether the object or key may be absent.")


class FieldSelector(_Model):
    """A field of the Pod, as in a Pod spec's downward API."""

    field_path: str = Field(
        min_length=1, max_length=256, description="Path of the field, for example status.podIP."
    )


class EnvVarSource(_Model):
    """Where an environment variable's value comes from; set exactly one source."""

    model_config = ConfigDict(
        json_schema_extra=_validations(
            _cel(
                "[has(self.secretKeyRef), has(self.configMapKeyRef), has(self.fieldRef)]"
                ".filter(x, x).size() == 1",
                "valueFrom must set exactly one of secretKeyRef, configMapKeyRef, fieldRef",
            )
        )
    )

    secret_key_ref: KeySelector | SkipJsonSchema[None] = Field(
        default=None, description="A key of a Secret in the stack's namespace."
    )
    config_map_key_ref: KeySelector | SkipJsonSchema[None] = Field(
        default=None, description="A key of a ConfigMap in the stack's namespace."
    )
    field_ref: FieldSelector | SkipJsonSchema[None] = Field(
        default=None, description="A field of the Pod (downward API)."
    )

    @model_validator(mode="after")
    def _exactly_one_source(self) -> Self:
        sources = [self.secret_key_ref, self.config_map_key_ref, self.field_ref]
        if sum(source is not None for source in sources) != 1:
            raise ValueError(
                "valueFrom must set exactly one of secretKeyRef, configMapKeyRef, fieldRef"
            )
        return self


class EnvVar(_Model):
    """An extra environment variable; the operator's own settings win over the same name."""

    model_config = ConfigDict(
        json_schema_extra=_validations(
            _cel(
                "!(has(self.value) && has(self.valueFrom))", "env: set value or valueFrom, not both"
            )
        )
    )

    name: str = Field(
        min_length=1, max_length=256, pattern=ENV_NAME_PATTERN, description="Variable name."
    )
    value: Annotated[str, Field(max_length=32768)] | SkipJsonSchema[None] = Field(
        default=None, description="Literal value; not for secrets."
    )
    value_from: EnvVarSource | SkipJsonSchema[None] = Field(
        default=None, description="Take the value from a Secret, ConfigMap or Pod field."
    )

    @model_validator(mode="after")
    def _value_or_value_from(self) -> Self:
        if self.value is not None and self.value_from is not None:
            raise ValueError("env: set value or valueFrom, not both")
        return self


EnvList = Annotated[
    list[EnvVar],
    Field(
        max_length=64,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    ),
]
ResourcesField = Annotated[
    ResourceRequirements,
    Field(
        default_factory=ResourceRequirements,
        description="Compute resources (requests and limits) of each container.",
        json_schema_extra={"default": {}},
    ),
]
CommandList = Annotated[list[Annotated[str, Field(max_length=1024)]], Field(max_length=32)]


def _replica_rules(component: str) -> list[JsonDict]:
    """CEL rules shared by the scaled components (api and workers)."""
    return [
        _cel(
            "self.minReplicas <= self.maxReplicas",
            f"spec.{component}.minReplicas must be less than or equal to "
            f"spec.{component}.maxReplicas",
            ".minReplicas",
        ),
        _cel(
            "!has(self.autoscaling) || !has(self.autoscaling.fallbackReplicas) || "
            "(self.autoscaling.fallbackReplicas >= self.minReplicas && "
            "self.autoscaling.fallbackReplicas <= self.maxReplicas)",
            f"spec.{component}.autoscaling.fallbackReplicas must lie within "
            f"[spec.{component}.minReplicas, spec.{component}.maxReplicas]",
            ".autoscaling.fallbackReplicas",
        ),
    ]


def _check_replicas(component: str, low: int, high: int, fallback: int | None) -> None:
    """Python twin of ``_replica_rules``; raises ValueError with the same messages."""
    rules = _replica_rules(component)
    if low > high:
        raise ValueError(_message(rules[0]))
    if fallback is not None and not low <= fallback <= high:
        raise ValueError(_message(rules[1]))


# --- Spec: autoscaling ------------------------------------------------------------------------

_FALLBACK_REPLICAS_DOC = (
    "Replicas to hold when the scaling signal has failed fallbackAfterFailedTicks ticks in a "
    "row. Omit to keep the current replicas while the signal is missing."
)


class ScaleUp(_Model):
    """How fast replicas may grow: within any periodSeconds, to at most the larger of
    start x (1 + percent/100) and start + pods (the HPA's selectPolicy Max)."""

    percent: int = Field(
        default=900, ge=1, le=10_000, description="Growth per period, in percent of the start."
    )
    pods: int = Field(default=4, ge=1, le=1000, description="Growth per period, in pods.")
    period_seconds: int = Field(
        default=15, ge=1, le=3600, description="Length of the period, in seconds."
    )


_SCALE_UP_DOC = "Rate limit of scaling up (the larger of the two limits applies)."
FallbackReplicas = Annotated[int, Field(ge=0, le=1000)] | SkipJsonSchema[None]


StabilizationSeconds = Annotated[
    int,
    Field(
        ge=0,
        le=3600,
        description=(
            "Scale down only to the highest recommendation of this many seconds; after a"
            " short surge of demand, capacity for its peak is kept this long from its end."
        ),
    ),
]
"""``scaleDownStabilizationSeconds``: each component declares it with its own default."""


class _Scaling(_Model):
    """The scaling fields both components' autoscaling share (the policy's ScalingConfig)."""

    scale_up: ScaleUp = Field(
        default_factory=ScaleUp,
        description=_SCALE_UP_DOC,
        json_schema_extra={"default": _defaults(ScaleUp)},
    )
    fallback_replicas: FallbackReplicas = Field(default=None, description=_FALLBACK_REPLICAS_DOC)
    fallback_after_failed_ticks: int = Field(
        default=6,
        ge=1,
        le=1000,
        description="Failed signal reads in a row before fallbackReplicas applies.",
    )
    forecast: bool = Field(
        default=True,
        description="Learn the daily and weekly shape of the demand (request rate, job "
        "arrivals) from Prometheus' history and scale up ahead of what it expects, by a "
        "pod's start-up and a margin, while its recent error is small; never below what "
        "the current demand asks. false: scale on the current demand only.",
    )


# Prometheus's names (the data model of its documentation) and a list of label matchers.
METRIC_NAME_PATTERN = r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"
LABEL_NAME_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
_MATCHER = r'[a-zA-Z_][a-zA-Z0-9_]*\s*(=|!=|=~|!~)\s*"([^"\\]|\\.)*"'
MATCHERS_PATTERN = rf"^\s*{_MATCHER}\s*(,\s*{_MATCHER}\s*)*$"
# The workloads' own histogram; a test holds it equal to retention_contract's.
DEFAULT_LATENCY_HISTOGRAM = "retention_api_request_duration_seconds"
SeriesBy = Literal["stackLabel", "podName"]
LabelName = Annotated[str, Field(min_length=1, max_length=128, pattern=LABEL_NAME_PATTERN)]
PromQLTemplate = Annotated[str, Field(min_length=1, max_length=4096)]


class LatencyQuery(_Model):
    """PromQL of one stack's API latency, for what a histogram name and labels cannot say.

    ``{{namespace}}`` and ``{{name}}`` stand for the stack's namespace and name. Each
    stack with a query costs one PromQL query per tick.
    """

    p95_seconds: PromQLTemplate = Field(
        description="PromQL that gives the stack's p95 request latency in seconds, one series."
    )
    requests_per_second: PromQLTemplate = Field(
        description="PromQL that gives the stack's request rate per second, one series."
    )


class LatencySpec(_Model):
    """Which Prometheus histogram times the API's requests, and how the stack's series are
    found. Stacks that share the histogram, seriesBy, the label names and matchers (and
    the Prometheus) are read with one query per tick."""

    histogram: str = Field(
        default=DEFAULT_LATENCY_HISTOGRAM,
        min_length=1,
        max_length=256,
        pattern=METRIC_NAME_PATTERN,
        description="Name of the histogram (without _bucket), for example "
        "http_request_duration_seconds.",
    )
    series_by: SeriesBy = Field(
        default="stackLabel",
        description="stackLabel: a label whose value is the stack's name (the app's own "
        "label, or a pod label Prometheus copied when it scraped the pod, such as "
        "app_kubernetes_io_instance). podName: the label with the scraped pod's name; the "
        "API's pods are named <stack>-api-<hash>-<hash>.",
    )
    namespace_label: LabelName = Field(
        default="namespace", description="Label with the namespace of the scraped pod."
    )
    stack_label: LabelName = Field(
        default="stack", description="seriesBy stackLabel: the label whose value is the stack."
    )
    pod_label: LabelName = Field(
        default="pod", description="seriesBy podName: the label with the pod's name."
    )
    matchers: (
        Annotated[str, Field(max_length=1024, pattern=MATCHERS_PATTERN)] | SkipJsonSchema[None]
    ) = Field(
        default=None,
        description='More label matchers for the series, for example route!="/healthz".',
    )
    query: LatencyQuery | SkipJsonSchema[None] = Field(
        default=None,
        description="PromQL templates instead of the histogram: when set, the fields above "
        "are not used, and the stack is read with a query of its own.",
    )


class ApiAutoscaling(_Scaling):
    """How the API scales on its p95 request latency read from Prometheus."""

    enabled: bool = Field(default=True, description="Scale the API on p95 latency.")
    target_p95_milliseconds: int = Field(
        default=200, ge=1, le=600_000, description="p95 request latency to hold, in milliseconds."
    )
    scale_down_stabilization_seconds: StabilizationSeconds = 180
    requests_per_replica_per_second: (
        Annotated[float, Field(gt=0, le=1_000_000)] | SkipJsonSchema[None]
    ) = Field(
        default=None,
        description="Requests per second one replica serves within the p95 target, as a "
        "start: the autoscaler learns the real figure from latency and load. Omit to start "
        "from the first sample.",
    )
    prometheus_url: (
        Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^https?://")]
        | SkipJsonSchema[None]
    ) = Field(
        default=None,
        description="http:// or https:// URL of the Prometheus that scrapes this stack's API. "
        "Omit for the operator's default (RETENTION_PROMETHEUS_URL); with neither, the API "
        "has no latency signal and keeps its replicas within its bounds.",
    )
    latency: LatencySpec = Field(
        default_factory=LatencySpec,
        description="The histogram of request latency and how the stack's series are selected.",
        json_schema_extra={"default": _defaults(LatencySpec)},
    )


_DRAIN_RULE = _cel(
    "self.targetDrainSeconds <= self.targetQueueWaitSeconds",
    "spec.workers.autoscaling.targetDrainSeconds must be less than or equal to "
    "spec.workers.autoscaling.targetQueueWaitSeconds",
    ".targetDrainSeconds",
)


class WorkersAutoscaling(_Scaling):
    """How the workers scale on the queue backlog (consumer-group lag + pending)."""

    model_config = ConfigDict(json_schema_extra=_validations(_DRAIN_RULE))

    enabled: bool = Field(default=True, description="Scale the workers on the queue backlog.")
    target_queue_wait_seconds: int = Field(
        default=60,
        ge=1,
        le=86_400,
        description="Longest a job should wait in the queue before a worker takes it, in "
        "seconds. The age of the oldest undelivered entry is measured each tick; once it has "
        "used up part of this, the backlog is sized to drain in what is left.",
    )
    target_drain_seconds: int = Field(
        default=30,
        ge=1,
        le=86_400,
        description="Time in which the workers should drain the current backlog, in seconds. "
        "At most targetQueueWaitSeconds.",
    )
    scale_down_stabilization_seconds: StabilizationSeconds = 120
    scale_to_zero: bool = Field(
        default=False,
        description="Scale to no workers while the backlog is below activationBacklog. "
        "Must be true exactly when spec.workers.minReplicas is 0.",
    )
    activation_backlog: int = Field(
        default=1,
        ge=1,
        le=1_000_000_000,
        description="Backlog at or above which the workers scale from zero to one.",
    )
    jobs_per_worker_per_second: float = Field(
        default=100.0,
        gt=0,
        le=1_000_000,
        description="Jobs per second one worker completes, as a start: the autoscaler "
        "measures the real figure while every worker is busy.",
    )

    @model_validator(mode="after")
    def _drain_within_wait(self) -> Self:
        if self.target_drain_seconds > self.target_queue_wait_seconds:
            raise ValueError(_message(_DRAIN_RULE))
        return self


# --- Spec: the application ---------------------------------------------------------------------

# Default ports of the workloads; a test holds them equal to retention_contract's
# (the model may not import the contract package).
DEFAULT_HTTP_PORT = 8080
DEFAULT_METRICS_PORT = 9090
DEFAULT_QUEUE_GROUP = "workers"


class ApiSpec(_Model):
    """The HTTP API that accepts jobs and puts them on the queue."""

    model_config = ConfigDict(json_schema_extra=_validations(*_replica_rules("api")))

    image: str = Field(min_length=1, max_length=512, description="Container image of the API.")
    command: CommandList = Field(
        default_factory=lambda: ["retention-api"],
        description="Command that starts the API in the image.",
        json_schema_extra={"default": ["retention-api"]},
    )
    port: int = Field(
        default=DEFAULT_HTTP_PORT, ge=1, le=65535, description="HTTP port; also serves /metrics."
    )
    min_replicas: int = Field(default=2, ge=1, le=1000, description="Fewest API replicas.")
    max_replicas: int = Field(default=10, ge=1, le=1000, description="Most API replicas.")
    max_backlog: Annotated[int, Field(ge=1, le=1_000_000_000)] | SkipJsonSchema[None] = Field(
        default=None,
        description="Backlog (jobs waiting plus jobs in progress) at which the API refuses new "
        "jobs with 503 and Retry-After, before writing them. Omit for no bound but the managed "
        "Redis's maxmemory, a share of its memory limit.",
    )
    resources: ResourcesField
    env: EnvList = Field(default_factory=list, description="Extra environment variables.")
    autoscaling: ApiAutoscaling = Field(
        default_factory=ApiAutoscaling,
        description="Scaling on p95 request latency.",
        json_schema_extra={"default": _defaults(ApiAutoscaling)},
    )

    @model_validator(mode="after")
    def _replica_bounds(self) -> Self:
        _check_replicas(
            "api", self.min_replicas, self.max_replicas, self.autoscaling.fallback_replicas
        )
        return self


# Key names: printable, no spaces (every queue library builds its keys from these).
KEY_PATTERN = r"^[!-~]+$"
# What RQ accepts in RQ_KEY_PREFIX (rq/defaults.py, RQ 3.0).
RQ_PREFIX_PATTERN = r"^[A-Za-z0-9_.:{}-]+$"
QueueKind = Literal["streams", "bullmq", "rq", "celery", "list"]
KeyName = Annotated[str, Field(min_length=1, max_length=256, pattern=KEY_PATTERN)]


class BullMQQueue(_Model):
    """A BullMQ queue: its keys are ``<prefix>:<name>:<state>`` (BullMQ's QueueKeys)."""

    name: KeyName = Field(
        description="Queue name, as given to new Queue(name) and new Worker(name)."
    )
    prefix: KeyName = Field(
        default="bull",
        description="Key prefix (the prefix option of Queue and Worker). On a Redis Cluster "
        "the prefix or the name must hold a hash tag such as {bull}, as BullMQ requires.",
    )


class RQQueue(_Model):
    """An RQ queue: ``<prefix>:queue:<name>`` and its registries (RQ's queue.py, registry.py)."""

    name: KeyName = Field(default="default", description="Queue name, as given to Queue(name).")
    prefix: Annotated[str, Field(min_length=1, max_length=64, pattern=RQ_PREFIX_PATTERN)] = Field(
        default="rq",
        description="Key prefix: RQ_KEY_PREFIX of RQ 3.0 and later (older RQ always uses rq). "
        "The operator sets RQ_KEY_PREFIX on the workers to this. On a Redis Cluster it must "
        "be a hash tag such as {rq}.",
    )


PrioritySteps = Annotated[
    list[Annotated[int, Field(ge=0, le=255)]],
    Field(min_length=1, max_length=32),
]


class CeleryQueue(_Model):
    """A Celery queue on kombu's Redis transport: a list per priority step, and ``unacked``."""

    name: KeyName = Field(
        default="celery", description="Queue name (Celery's task_default_queue is celery)."
    )
    key_prefix: Annotated[str, Field(max_length=64, pattern=r"^[!-~]*$")] = Field(
        default="",
        description="kombu's global_keyprefix transport option, empty by default.",
    )
    priority_steps: PrioritySteps = Field(
        default_factory=lambda: [0, 3, 6, 9],
        description="kombu's priority_steps transport option: one list per step, "
        "<name> for the first and <name>\\x06\\x16<step> for the others.",
        json_schema_extra={"default": [0, 3, 6, 9]},
    )


class ListQueue(_Model):
    """Any Redis list used as a queue, for libraries without a kind of their own."""

    key: KeyName = Field(description="The list jobs wait in.")
    in_progress_key: KeyName | SkipJsonSchema[None] = Field(
        default=None,
        description="A list that holds the jobs being worked on (the LMOVE/RPOPLPUSH "
        "reliable-queue pattern), if the workers keep one.",
    )


_ONE_KIND_RULE = _cel(
    "[has(self.bullmq), has(self.rq), has(self.celery), has(self.list)].filter(x, x).size() <= 1",
    "spec.workers.queue must set at most one of bullmq, rq, celery and list (none: a Redis Stream)",
)
_STREAM_FIELDS_RULE = _cel(
    "!(has(self.stream) || has(self.group)) || "
    "!(has(self.bullmq) || has(self.rq) || has(self.celery) || has(self.list))",
    "spec.workers.queue.stream and group belong to a Redis Stream queue: remove them to "
    "use bullmq, rq, celery or list",
)


class QueueSpec(_Model):
    """The queue the workers consume: a Redis Stream with a consumer group (the default), or
    one of bullmq, rq, celery and list. The autoscaler reads its backlog, arrivals, jobs
    in progress and oldest waiting job in each library's own key layout."""

    model_config = ConfigDict(json_schema_extra=_validations(_ONE_KIND_RULE, _STREAM_FIELDS_RULE))

    stream: Annotated[str, Field(min_length=1, max_length=256)] | SkipJsonSchema[None] = Field(
        default=None,
        description="Redis Stream queue: the stream key. Omit for '{<namespace>/<stack "
        "name>}:jobs'; the hash tag keeps the stream and its dead-letter stream in one Redis "
        "Cluster slot.",
    )
    group: Annotated[str, Field(min_length=1, max_length=256)] | SkipJsonSchema[None] = Field(
        default=None,
        description=f"Redis Stream queue: the consumer group of the workers. Omit for "
        f"{DEFAULT_QUEUE_GROUP!r}.",
    )
    bullmq: BullMQQueue | SkipJsonSchema[None] = Field(default=None, description="A BullMQ queue.")
    rq: RQQueue | SkipJsonSchema[None] = Field(default=None, description="An RQ queue.")
    celery: CeleryQueue | SkipJsonSchema[None] = Field(
        default=None, description="A Celery queue on kombu's Redis transport (standalone Redis)."
    )
    list: ListQueue | SkipJsonSchema[None] = Field(
        default=None, description="Any Redis list used as a queue."
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        others = [self.bullmq, self.rq, self.celery, self.list]
        if sum(other is not None for other in others) > 1:
            raise ValueError(_message(_ONE_KIND_RULE))
        if (self.stream is not None or self.group is not None) and any(
            other is not None for other in others
        ):
            raise ValueError(_message(_STREAM_FIELDS_RULE))
        return self

    @property
    def kind(self) -> QueueKind:
        """Which queue this is: the block that is set, else ``streams``."""
        for kind in ("bullmq", "rq", "celery", "list"):
            if getattr(self, kind) is not None:
                return kind
        return "streams"

    @property
    def consumer_group(self) -> str:
        """The Redis Stream queue's consumer group: ``group``, else the default."""
        return self.group or DEFAULT_QUEUE_GROUP


_SCALE_TO_ZERO_RULE = _cel(
    "!has(self.autoscaling) || "
    "(has(self.autoscaling.scaleToZero) && self.autoscaling.scaleToZero) "
    "== (self.minReplicas == 0)",
    "spec.workers.autoscaling.scaleToZero must be true exactly when spec.workers.minReplicas is 0",
    ".autoscaling.scaleToZero",
)


class WorkersSpec(_Model):
    """The queue workers that consume jobs, write results to PostgreSQL and acknowledge."""

    model_config = ConfigDict(
        json_schema_extra=_validations(*_replica_rules("workers"), _SCALE_TO_ZERO_RULE)
    )

    image: Annotated[str, Field(min_length=1, max_length=512)] | SkipJsonSchema[None] = Field(
        default=None,
        description="Container image of the workers. Omit to use spec.api.image.",
    )
    command: CommandList = Field(
        default_factory=lambda: ["retention-worker"],
        description="Command that starts a worker in the image.",
        json_schema_extra={"default": ["retention-worker"]},
    )
    metrics_port: int = Field(
        default=DEFAULT_METRICS_PORT, ge=1, le=65535, description="Port of the /metrics endpoint."
    )
    min_replicas: int = Field(
        default=1, ge=0, le=1000, description="Fewest workers; 0 needs autoscaling.scaleToZero."
    )
    max_replicas: int = Field(default=20, ge=1, le=1000, description="Most workers.")
    concurrency: Annotated[int, Field(ge=1, le=10_000)] | SkipJsonSchema[None] = Field(
        default=None, description="Jobs one worker runs at once. Omit for the workload's default."
    )
    resources: ResourcesField
    env: EnvList = Field(default_factory=list, description="Extra environment variables.")
    queue: QueueSpec = Field(
        default_factory=QueueSpec,
        description="The queue the workers consume: a Redis Stream (the default), bullmq, rq, "
        "celery or list.",
        json_schema_extra={"default": _defaults(QueueSpec)},
    )
    autoscaling: WorkersAutoscaling = Field(
        default_factory=WorkersAutoscaling,
        description="Scaling on the queue backlog.",
        json_schema_extra={"default": _defaults(WorkersAutoscaling)},
    )

    @model_validator(mode="after")
    def _replica_bounds(self) -> Self:
        _check_replicas(
            "workers", self.min_replicas, self.max_replicas, self.autoscaling.fallback_replicas
        )
        if self.autoscaling.scale_to_zero != (self.min_replicas == 0):
            raise ValueError(_message(_SCALE_TO_ZERO_RULE))
        return self


# --- Spec: Redis ---------------------------------------------------------------------------------

_STORAGE_SIZE_MESSAGE = "spec.redis.managed.storage.size must be a positive quantity such as 10Gi"


class RedisStorage(_Model):
    """The persistent volume of each Redis pod."""

    size: Annotated[
        str,
        Field(max_length=64, pattern=UNSIGNED_QUANTITY_PATTERN),
        AfterValidator(_check_positive_quantity),
    ] = Field(
        default="1Gi",
        description="Size of each pod's volume, a Kubernetes quantity greater than zero.",
        json_schema_extra=_validations(
            _cel(
                "isQuantity(self) && quantity(self).isGreaterThan(quantity('0'))",
                _STORAGE_SIZE_MESSAGE,
            )
        ),
    )
    storage_class_name: (
        Annotated[str, Field(max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)] | SkipJsonSchema[None]
    ) = Field(
        default=None,
        description="StorageClass of the volumes. Omit for the cluster's default class.",
    )


def _exporter_resources() -> Any:
    """The ``resources`` field of an exporter sidecar.

    Spelled out rather than ResourcesField: a model used as a default_factory needs
    every field's default visible to the type checker.
    """
    return Field(
        default_factory=ResourceRequirements,
        description="Compute resources (requests and limits) of the exporter container.",
        json_schema_extra={"default": {}},
    )


REDIS_EXPORTER_IMAGE = "docker.io/oliver006/redis_exporter:v1.45.0"
"""The public image of redis_exporter at the version Debian's prometheus-redis-exporter
packages (1.45.0), the one the project's own redis-exporter image carries."""


class RedisExporter(_Model):
    """redis_exporter beside each Redis server, scraped through the stack's PodMonitor."""

    enabled: bool = Field(
        default=True,
        description="Run the exporter in every Redis pod (memory against maxmemory, clients, "
        "commands/s). Turning it on or off restarts the Redis pods one at a time.",
    )
    image: str = Field(
        default=REDIS_EXPORTER_IMAGE,
        min_length=1,
        max_length=512,
        description="Container image of redis_exporter (oliver006/redis_exporter, 1.45 or "
        "later); its entry point is the exporter.",
    )
    resources: ResourceRequirements = _exporter_resources()


class ManagedRedis(_Model):
    """A Redis Cluster run by the operator as a StatefulSet."""

    image: str = Field(
        default="docker.io/library/redis:7.2",
        min_length=1,
        max_length=512,
        description="Container image of Redis (7.0 or later).",
    )
    shards: int = Field(
        default=3, ge=1, le=100, description="Primaries; the slots are split between them."
    )
    replicas_per_shard: int = Field(default=1, ge=0, le=5, description="Replicas of each primary.")
    storage: RedisStorage = Field(
        default_factory=RedisStorage,
        description="Persistent volume of each pod.",
        json_schema_extra={"default": _defaults(RedisStorage)},
    )
    resources: ResourcesField
    retain_on_delete: bool = Field(
        default=True,
        description="Keep the volumes when the RetentionStack is deleted (or the pods scaled "
        "in); false deletes them with the stack.",
    )
    exporter: RedisExporter = Field(
        default_factory=RedisExporter,
        description="The Prometheus exporter beside each Redis server.",
        json_schema_extra={"default": _defaults(RedisExporter)},
    )

    @property
    def pods(self) -> int:
        """Total Redis pods: every shard's primary and its replicas."""
        return self.shards * (1 + self.replicas_per_shard)


_REDIS_URL_PASSWORD_MESSAGE = (
    "spec.redis.external.url must not carry a password; use spec.redis.external.passwordSecretRef"
)


class ExternalRedis(_Model):
    """A Redis (or Redis Cluster) run elsewhere."""

    url: str = Field(
        min_length=1,
        max_length=1024,
        pattern=r"^rediss?://",
        description="redis:// or rediss:// URL of the server (any seed node for a cluster), "
        "without a password.",
        json_schema_extra=_validations(
            _cel("!self.matches('^rediss?://[^/@]*:[^/@]*@')", _REDIS_URL_PASSWORD_MESSAGE)
        ),
    )
    cluster: bool = Field(default=False, description="Whether the URL names a Redis Cluster.")
    password_secret_ref: KeySelector | SkipJsonSchema[None] = Field(
        default=None, description="Secret key holding the password. Omit when Redis has no auth."
    )

    @model_validator(mode="after")
    def _no_inline_password(self) -> Self:
        if re.match(r"^rediss?://[^/@]*:[^/@]*@", self.url):
            raise ValueError(_REDIS_URL_PASSWORD_MESSAGE)
        return self


_REDIS_ONE_OF_MESSAGE = "spec.redis must set exactly one of managed or external"


class RedisSpec(_Model):
    """Where the job queue lives: a managed Redis Cluster or an external Redis."""

    model_config = ConfigDict(
        json_schema_extra=_validations(
            _cel("has(self.managed) != has(self.external)", _REDIS_ONE_OF_MESSAGE)
        )
    )

    managed: ManagedRedis | SkipJsonSchema[None] = Field(
        default=None, description="Run a Redis Cluster for this stack."
    )
    external: ExternalRedis | SkipJsonSchema[None] = Field(
        default=None, description="Use a Redis run elsewhere."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.managed is None) == (self.external is None):
            raise ValueError(_REDIS_ONE_OF_MESSAGE)
        return self


# --- Spec: PgBouncer -------------------------------------------------------------------------

PoolMode = Literal["session", "transaction", "statement"]


class DatabaseSpec(_Model):
    """The external PostgreSQL database that PgBouncer pools connections to."""

    host: str = Field(
        min_length=1, max_length=253, pattern=HOST_PATTERN, description="Host name or IP address."
    )
    port: int = Field(default=5432, ge=1, le=65535, description="Port.")
    name: str = Field(
        min_length=1, max_length=63, pattern=PG_IDENTIFIER_PATTERN, description="Database name."
    )
    user: str = Field(
        min_length=1, max_length=63, pattern=PG_IDENTIFIER_PATTERN, description="Role to log in as."
    )


class CredentialsSecretRef(_Model):
    """The Secret that holds the database password of spec.pgbouncer.database.user."""

    name: str = Field(
        min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN, description="Secret name."
    )
    password_key: str = Field(
        default="password",
        min_length=1,
        max_length=253,
        pattern=SECRET_KEY_PATTERN,
        description="Key of the password in the Secret.",
    )


class ReadReplica(_Model):
    """A PostgreSQL read replica (a hot standby of spec.pgbouncer.database)."""

    host: str = Field(
        min_length=1, max_length=253, pattern=HOST_PATTERN, description="Host name or IP address."
    )
    port: int = Field(default=5432, ge=1, le=65535, description="Port.")


SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
VERIFYING_SSLMODES = ("verify-ca", "verify-full")

_CA_ONE_OF_MESSAGE = "spec.pgbouncer.tls.ca must set exactly one of secretKeyRef, configMapKeyRef"


class CaBundleRef(_Model):
    """Where the CA certificate (PEM) that signed the database's certificate is kept."""

    model_config = ConfigDict(
        json_schema_extra=_validations(
            _cel("has(self.secretKeyRef) != has(self.configMapKeyRef)", _CA_ONE_OF_MESSAGE)
        )
    )

    secret_key_ref: KeySelector | SkipJsonSchema[None] = Field(
        default=None, description="A key of a Secret in the stack's namespace."
    )
    config_map_key_ref: KeySelector | SkipJsonSchema[None] = Field(
        default=None, description="A key of a ConfigMap in the stack's namespace."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.secret_key_ref is None) == (self.config_map_key_ref is None):
            raise ValueError(_CA_ONE_OF_MESSAGE)
        return self

    @property
    def selector(self) -> KeySelector:
        """The Secret or ConfigMap key, whichever is set."""
        ref = self.secret_key_ref or self.config_map_key_ref
        assert ref is not None
        return ref


class ClientTls(_Model):
    """TLS on PgBouncer's listener, towards the API and the workers."""

    secret_name: str = Field(
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description="A kubernetes.io/tls Secret (tls.crt, tls.key) PgBouncer serves.",
    )
    sslmode: Literal["allow", "prefer", "require"] = Field(
        default="require",
        description="PgBouncer's client_tls_sslmode: require refuses clients without TLS.",
    )


_VERIFY_NEEDS_CA_MESSAGE = "spec.pgbouncer.tls.sslmode verify-ca and verify-full need tls.ca"
_VERIFY_NEEDS_CA_RULE = _cel(
    "!has(self.sslmode) || !(self.sslmode in ['verify-ca', 'verify-full']) || has(self.ca)",
    _VERIFY_NEEDS_CA_MESSAGE,
    ".ca",
)


class PgBouncerTls(_Model):
    """TLS between PgBouncer and PostgreSQL (and, optionally, on PgBouncer's listener)."""

    model_config = ConfigDict(json_schema_extra=_validations(_VERIFY_NEEDS_CA_RULE))

    sslmode: SslMode | SkipJsonSchema[None] = Field(
        default=None,
        description="server_tls_sslmode towards PostgreSQL and its replicas. Omit for "
        "verify-full when ca is given, else require for a host outside the cluster, else prefer.",
    )
    ca: CaBundleRef | SkipJsonSchema[None] = Field(
        default=None, description="CA certificate (PEM) that signed the database's certificate."
    )
    client: ClientTls | SkipJsonSchema[None] = Field(
        default=None, description="TLS on PgBouncer's listener. Omit for plain TCP in the cluster."
    )

    @model_validator(mode="after")
    def _verify_needs_ca(self) -> Self:
        if self.sslmode in VERIFYING_SSLMODES and self.ca is None:
            raise ValueError(_VERIFY_NEEDS_CA_MESSAGE)
        return self


_POOL_RULE = _cel(
    "self.defaultPoolSize <= self.maxClientConn",
    "spec.pgbouncer.defaultPoolSize must be less than or equal to spec.pgbouncer.maxClientConn",
    ".defaultPoolSize",
)
_REPLICA_PORT_MESSAGE = (
    "spec.pgbouncer.readReplicas must all use one port (one PgBouncer database entry has one port)"
)
_REPLICA_PORT_RULE = _cel("self.all(r, r.port == self[0].port)", _REPLICA_PORT_MESSAGE, None)


class PgBouncerExporter(_Model):
    """PgBouncer's exporter beside each PgBouncer, scraped through the stack's PodMonitor."""

    image: Annotated[str, Field(min_length=1, max_length=512)] | SkipJsonSchema[None] = Field(
        default=None,
        description="Container image of prometheus-pgbouncer-exporter (spreaker's, 2.1 or "
        "later; its entry point is the exporter), run in every PgBouncer pod: clients "
        "waiting, server connections, queries. Omit for none. Setting it restarts the "
        "PgBouncer pods one at a time.",
    )
    resources: ResourceRequirements = _exporter_resources()

    @property
    def enabled(self) -> bool:
        """Whether the exporter runs: an image is given."""
        return self.image is not None


class PgBouncerSpec(_Model):
    """PgBouncer in front of the external PostgreSQL."""

    model_config = ConfigDict(json_schema_extra=_validations(_POOL_RULE))

    image: str = Field(
        default="ghcr.io/cloudnative-pg/pgbouncer:1.23.0",
        min_length=1,
        max_length=512,
        description="Container image of PgBouncer; it needs /bin/sh to render the auth file.",
    )
    replicas: int = Field(default=2, ge=1, le=20, description="PgBouncer replicas.")
    database: DatabaseSpec = Field(description="The PostgreSQL database behind the pool.")
    credentials_secret_ref: CredentialsSecretRef = Field(
        description="Secret with the password of database.user."
    )
    pool_mode: PoolMode = Field(
        default="transaction",
        description="When a server connection returns to the pool: session, transaction "
        "(clients must not use prepared statements) or statement.",
    )
    default_pool_size: int = Field(
        default=20, ge=1, le=10_000, description="Server connections per database and user."
    )
    max_client_conn: int = Field(
        default=1000, ge=1, le=100_000, description="Client connections each replica accepts."
    )
    resources: ResourcesField
    read_replicas: list[ReadReplica] = Field(
        default_factory=list,
        max_length=16,
        description="Read replicas of the database. When set, a second pool (<stack>-pgbouncer-ro) "
        "serves reads from those that lag less than maxLagSeconds, and from the primary "
        "when none does.",
        json_schema_extra=_validations(_REPLICA_PORT_RULE),
    )
    max_lag_seconds: float = Field(
        default=1.0,
        gt=0,
        le=3600,
        description="Replication lag past which a read replica leaves the read pool, in seconds.",
    )
    tls: PgBouncerTls = Field(
        default_factory=PgBouncerTls,
        description="TLS towards PostgreSQL and on PgBouncer's listener.",
        json_schema_extra={"default": {}},
    )
    exporter: PgBouncerExporter = Field(
        default_factory=PgBouncerExporter,
        description="The Prometheus exporter beside each PgBouncer.",
        json_schema_extra={"default": {}},
    )

    @model_validator(mode="after")
    def _pool_within_clients(self) -> Self:
        if self.default_pool_size > self.max_client_conn:
            raise ValueError(_message(_POOL_RULE))
        ports = {replica.port for replica in self.read_replicas}
        if len(ports) > 1:
            raise ValueError(_REPLICA_PORT_MESSAGE)
        return self


# --- Spec: monitoring ---------------------------------------------------------------------------

_LabelValue = Annotated[str, Field(max_length=63)]


class PodMonitorSpec(_Model):
    """The PodMonitor (Prometheus Operator) that has the stack's API and workers scraped."""

    enabled: bool = Field(
        default=True,
        description="Create a PodMonitor when the cluster serves monitoring.coreos.com/v1 "
        "PodMonitor (Prometheus Operator's CRDs are installed). false: never create one; one "
        "created before is left as it is (the operator deletes nothing).",
    )
    labels: Annotated[dict[str, _LabelValue], Field(max_length=32)] = Field(
        default_factory=dict,
        description="Extra labels on the PodMonitor, for your Prometheus's podMonitorSelector "
        "(kube-prometheus-stack selects release: <its release name>).",
        json_schema_extra={"default": {}},
    )
    interval: (
        Annotated[str, Field(max_length=16, pattern=r"^[0-9]+(ms|s|m|h)$")] | SkipJsonSchema[None]
    ) = Field(
        default=None,
        description="Scrape interval, for example 15s. Omit for the Prometheus's own.",
    )


class MonitoringSpec(_Model):
    """How the stack's own metrics are collected."""

    pod_monitor: PodMonitorSpec = Field(
        default_factory=PodMonitorSpec,
        description="The PodMonitor of the stack's API and workers.",
        json_schema_extra={"default": _defaults(PodMonitorSpec)},
    )


# A key that Redis Cluster places by a hash tag: the first "{" is followed by a "}" with
# at least one character between (the rule of the cluster specification).
HASH_TAG_PATTERN = r"^[^{]*[{][^}]+[}]"
_ON_CLUSTER = "(has(self.redis.managed) || self.redis.external.cluster)"
_BULLMQ_TAG_RULE = _cel(
    f"!has(self.workers.queue.bullmq) || !{_ON_CLUSTER} || "
    f"(self.workers.queue.bullmq.prefix + ':' + self.workers.queue.bullmq.name)"
    f".matches('{HASH_TAG_PATTERN}')",
    "spec.workers.queue.bullmq: on a Redis Cluster the prefix or the name must hold a hash "
    "tag such as {bull}, as BullMQ requires",
    ".workers.queue.bullmq",
)
_RQ_TAG_RULE = _cel(
    f"!has(self.workers.queue.rq) || !{_ON_CLUSTER} || "
    f"self.workers.queue.rq.prefix.matches('{HASH_TAG_PATTERN}')",
    "spec.workers.queue.rq: on a Redis Cluster the prefix must be a hash tag such as {rq}",
    ".workers.queue.rq",
)
_CELERY_STANDALONE_RULE = _cel(
    f"!has(self.workers.queue.celery) || !{_ON_CLUSTER}",
    "spec.workers.queue.celery needs a standalone Redis (spec.redis.external with cluster "
    "false): kombu's Redis transport does not support Redis Cluster",
    ".workers.queue.celery",
)


class RetentionStackSpec(_Model):
    """Desired state of a RetentionStack: an API, workers, a Redis queue and PgBouncer."""

    model_config = ConfigDict(
        json_schema_extra=_validations(_BULLMQ_TAG_RULE, _RQ_TAG_RULE, _CELERY_STANDALONE_RULE)
    )

    api: ApiSpec = Field(description="The HTTP API.")
    workers: WorkersSpec = Field(description="The queue workers.")
    redis: RedisSpec = Field(description="The Redis that carries the job queue.")
    pgbouncer: PgBouncerSpec = Field(description="PgBouncer in front of PostgreSQL.")
    monitoring: MonitoringSpec = Field(
        default_factory=MonitoringSpec,
        description="Scraping of the stack's metrics by Prometheus Operator.",
        json_schema_extra={"default": _defaults(MonitoringSpec)},
    )
    paused: bool = Field(
        default=False,
        description="Stop reconciling and scaling; the children stay as they are.",
    )

    @model_validator(mode="after")
    def _queue_fits_the_redis(self) -> Self:
        queue = self.workers.queue
        on_cluster = self.redis.managed is not None or (
            self.redis.external is not None and self.redis.external.cluster
        )
        if not on_cluster:
            return self
        if queue.bullmq is not None and not _hash_tagged(
            f"{queue.bullmq.prefix}:{queue.bullmq.name}"
        ):
            raise ValueError(_message(_BULLMQ_TAG_RULE))
        if queue.rq is not None and not _hash_tagged(queue.rq.prefix):
            raise ValueError(_message(_RQ_TAG_RULE))
        if queue.celery is not None:
            raise ValueError(_message(_CELERY_STANDALONE_RULE))
        return self


def _hash_tagged(key: str) -> bool:
    return re.match(HASH_TAG_PATTERN, key) is not None


# --- Status ----------------------------------------------------------------------------------

ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(_StatusModel):
    """One observation of the stack's state (Kubernetes condition conventions)."""

    type: str = Field(max_length=316, description="Condition type: Ready, Reconciling, Stalled.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        default="",
        max_length=1024,
        description="CamelCase reason of the last transition.",
    )
    message: str = Field(default="", max_length=32768, description="Human-readable details.")
    last_transition_time: datetime | None = Field(
        default=None, description="When the status last changed."
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation the condition was set for."
    )


class ComponentStatus(_StatusModel):
    """Replicas and health of one component."""

    desired_replicas: int | None = Field(default=None, ge=0, description="Replicas asked for.")
    ready_replicas: int | None = Field(default=None, ge=0, description="Replicas ready.")
    message: str | None = Field(
        default=None, max_length=4096, description="What is wrong or in progress, if anything."
    )


class ComponentsStatus(_StatusModel):
    """Per-component status blocks."""

    api: ComponentStatus | None = Field(default=None, description="The API Deployment.")
    workers: ComponentStatus | None = Field(default=None, description="The worker Deployment.")
    redis: ComponentStatus | None = Field(
        default=None, description="The managed Redis StatefulSet (or the external Redis)."
    )
    pgbouncer: ComponentStatus | None = Field(default=None, description="The PgBouncer Deployment.")
    pgbouncer_ro: ComponentStatus | None = Field(
        default=None,
        alias="pgbouncer-ro",
        description="The read pool's PgBouncer Deployment (with spec.pgbouncer.readReplicas).",
    )


class ForecastStatus(_StatusModel):
    """The forecast of a component's demand, while spec's forecast is on."""

    in_use: bool | None = Field(
        default=None, description="Whether the forecast raises the replicas now."
    )
    trust: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="How far it is followed: 1 while its recent error is small, 0 once it "
        "has been wrong (a day that deviates), between while its error grows.",
    )
    days_learned: int | None = Field(
        default=None, ge=0, description="Full days of demand learned (from Prometheus' history)."
    )
    error_last_day: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Relative error of the forecast over the last day: the sum of its "
        "misses over the sum of the larger of demand and forecast, minute by minute (0.05 "
        "is 5 %).",
    )


class _ScalingDecisionStatus(_StatusModel):
    """Fields every scaled component reports about its last autoscaling decision."""

    desired_replicas: int | None = Field(
        default=None, ge=0, description="Replicas the last decision asked for."
    )
    last_decision: str | None = Field(
        default=None,
        max_length=64,
        description="Last decision: ScaleUp, ScaleDown, Hold, Fallback or Disabled.",
    )
    last_reason: str | None = Field(
        default=None, max_length=1024, description="Why, in one sentence with the numbers."
    )
    last_scale_time: datetime | None = Field(
        default=None, description="When replicas last changed."
    )
    failed_ticks: int | None = Field(
        default=None, ge=0, description="Signal reads that failed in a row."
    )
    forecast: ForecastStatus | None = Field(
        default=None, description="The forecast in use and how good it has been; absent when off."
    )


class ApiAutoscalingStatus(_ScalingDecisionStatus):
    """The API's autoscaling signal and last decision."""

    p95_milliseconds: float | None = Field(
        default=None, ge=0, description="p95 request latency last read, in milliseconds."
    )
    requests_per_second: float | None = Field(
        default=None, ge=0, description="Request rate last read."
    )


class WorkersAutoscalingStatus(_ScalingDecisionStatus):
    """The workers' autoscaling signal and last decision."""

    backlog: int | None = Field(
        default=None, ge=0, description="Jobs waiting plus jobs in progress, last read."
    )
    lag: int | None = Field(
        default=None, ge=0, description="Jobs waiting for a worker (a stream: the group's lag)."
    )
    pending: int | None = Field(
        default=None,
        ge=0,
        description="Jobs a worker holds, not yet finished (a stream: pending entries).",
    )
    jobs_per_second: float | None = Field(
        default=None, ge=0, description="Completion rate last read."
    )
    queue_wait_seconds: float | None = Field(
        default=None, ge=0, description="Age of the oldest job waiting for a worker, last read."
    )


class AutoscalingStatus(_StatusModel):
    """Autoscaling state per scaled component."""

    api: ApiAutoscalingStatus | None = Field(default=None, description="The API.")
    workers: WorkersAutoscalingStatus | None = Field(default=None, description="The workers.")


class ReadReplicaStatus(_StatusModel):
    """Replication lag of one read replica and whether it serves reads."""

    host: str = Field(max_length=253, description="Host of the replica.")
    port: int = Field(ge=1, le=65535, description="Port of the replica.")
    in_read_pool: bool = Field(description="Whether the read pool sends reads to it.")
    lag_seconds: float | None = Field(
        default=None, ge=0, description="Replication lag last measured; absent if unreachable."
    )
    message: str = Field(default="", max_length=1024, description="Why it is out, if it is.")
    last_transition_time: datetime | None = Field(
        default=None, description="When it last joined or left the read pool."
    )


class PgBouncerStatus(_StatusModel):
    """The read pool's replicas, as the operator last measured them."""

    read_replicas: list[ReadReplicaStatus] = Field(
        default_factory=list,
        max_length=16,
        description="One entry per spec.pgbouncer.readReplicas.",
    )


class RedisMasterStatus(_StatusModel):
    """One master of the managed Redis Cluster serving slots."""

    master: str = Field(max_length=253, description="The pod that serves the slots.")
    slots: int = Field(ge=0, le=16384, description="How many hash slots it serves.")
    ranges: str = Field(
        default="",
        max_length=1024,
        description="The slot ranges, e.g. 0-5460 (the first 32, then a count of the rest).",
    )
    replicas: list[str] = Field(
        default_factory=list, max_length=64, description="The pods that replicate it."
    )
    failing: bool | None = Field(
        default=None,
        description="True while it does not answer: its slots wait for a replica to take over.",
    )
    syncing: list[str] = Field(
        default_factory=list,
        max_length=64,
        description=(
            "Its replicas not yet linked and synced (INFO replication): they could not"
            " take over its slots yet."
        ),
    )


class RedisFailoverStatus(_StatusModel):
    """A shard's slots taken over by its replica (Redis' own failover, or one asked for)."""

    time: datetime | None = Field(default=None, description="When the operator saw it.")
    master: str = Field(max_length=253, description="The pod that serves the slots now.")
    previous_master: str = Field(max_length=253, description="The pod that served them.")
    slots: int = Field(ge=0, le=16384, description="How many slots changed master.")


class RedisClusterStatus(_StatusModel):
    """The managed Redis Cluster as its nodes last reported it."""

    shards: int | None = Field(default=None, ge=0, description="Shards the spec asks for.")
    masters: int | None = Field(
        default=None, ge=0, description="Masters serving slots that answer."
    )
    replicas: int | None = Field(default=None, ge=0, description="Replicas attached that answer.")
    slots_per_master: list[RedisMasterStatus] = Field(
        default_factory=list,
        max_length=256,
        description="Each master serving slots, lowest slot first.",
    )
    last_failover: RedisFailoverStatus | None = Field(
        default=None, description="The last failover seen, if any."
    )


class RetentionStackStatus(_StatusModel):
    """Observed state of a RetentionStack, written by the operator only."""

    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation the status describes."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=16,
        description="Ready, Reconciling and Stalled (kstatus conventions).",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    components: ComponentsStatus | None = Field(
        default=None, description="Replicas and health per component."
    )
    autoscaling: AutoscalingStatus | None = Field(
        default=None, description="Autoscaling signals and decisions."
    )
    pgbouncer: PgBouncerStatus | None = Field(
        default=None, description="Replication lag of the read replicas and the read pool."
    )
    redis: RedisClusterStatus | None = Field(
        default=None,
        description="The managed Redis Cluster: shards, masters, replicas, slots, last failover.",
    )
    api_replicas: int | None = Field(
        default=None, ge=0, description="Ready API replicas (printer column)."
    )
    worker_replicas: int | None = Field(
        default=None, ge=0, description="Ready workers (printer column)."
    )
    p95_milliseconds: float | None = Field(
        default=None, ge=0, description="Last p95 API latency in milliseconds (printer column)."
    )
    backlog: int | None = Field(
        default=None, ge=0, description="Last queue backlog (printer column)."
    )


# --- The object ------------------------------------------------------------------------------


class StackMeta(BaseModel):
    """The part of a RetentionStack's metadata the operator reads."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str = Field(
        min_length=1, max_length=MAX_STACK_NAME_LENGTH, description="Name of the stack."
    )
    namespace: str = Field(min_length=1, max_length=63, description="Namespace of the stack.")
    uid: str = Field(default="", description="UID; needed for owner references.")
    generation: int | None = Field(default=None, description="metadata.generation.")


class RetentionStack(BaseModel):
    """A whole RetentionStack object as read from the API server."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )

    api_version: str = Field(default="", description="apiVersion of the object.")
    kind: str = Field(default="", description="kind of the object.")
    metadata: StackMeta = Field(description="Name, namespace and UID.")
    spec: RetentionStackSpec = Field(description="Desired state.")
    status: RetentionStackStatus | None = Field(default=None, description="Observed state.")

    @property
    def name(self) -> str:
        """The stack's name."""
        return self.metadata.name

    @property
    def namespace(self) -> str:
        """The stack's namespace."""
        return self.metadata.namespace


def stack_from_body(body: dict[str, Any]) -> RetentionStack:
    """Parse a RetentionStack object (a kopf body or a plain dict).

    Raises pydantic.ValidationError when the spec breaks a rule the CRD schema
    should already have refused (for example an object stored before the rule
    existed).
    """
    return RetentionStack.model_validate(dict(body))
