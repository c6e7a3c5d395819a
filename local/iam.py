"""IAM for the local stack: each function may call only what its template.yaml policy allows.

moto answers every call, whatever the caller's role; in AWS a grant missing from the template
fails the first webhook after deploy. So each worker process (local.worker) checks its own
function's calls to DynamoDB, SQS and Secrets Manager (the data the relay holds) against the
statements the template gives that function (`FunctionSpec.iam_statements`, resolved like the
rest of the template) before they leave, and refuses what AWS would refuse with the same
error, `AccessDeniedException`. Other services (STS, CloudWatch) are not checked.

What is evaluated, as IAM does: Allow and Deny statements; `Action` and `Resource` with `*`
and `?` wildcards; the `dynamodb:LeadingKeys` condition (`ForAllValues:StringLike` or
`StringEquals`) over every partition-key value a request names (Key, Item, the keys of a
batch). A Query or Scan names none here, so the condition passes, as `ForAllValues` does for
a Scan in AWS; the relay's grants allow neither. A statement with another condition never
allows (it is reported when the worker starts), so a template using one fails locally first.
"""

from __future__ import annotations

import fnmatch
import json
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

ENVIRONMENT_VARIABLE = "_LOCAL_IAM_POLICY"  # the worker's policy, as JSON (local only)
CHECKED_SERVICES = ("dynamodb", "sqs", "secretsmanager")
LEADING_KEYS = "dynamodb:leadingkeys"
SECRET_SUFFIX = "-LOCALx"  # Secrets Manager appends six random characters to a secret's ARN


@dataclass(frozen=True)
class Request:
    """One authorization IAM makes for an API call: action, resource, and the keys it names."""

    action: str
    resource: str
    leading_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[str, ...]  # fnmatch patterns, lower case (IAM actions are case-insensitive)
    resources: tuple[str, ...]  # fnmatch patterns
    leading_keys: tuple[str, ...] | None  # the LeadingKeys condition's patterns (fnmatch), if any
    understood: bool  # False: a condition this emulation does not evaluate (never allows)

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> Statement:
        if "NotAction" in raw or "NotResource" in raw:
            raise ValueError(f"NotAction/NotResource are not emulated: {raw}")
        leading: tuple[str, ...] | None = None
        understood = True
        for operator, conditions in (raw.get("Condition") or {}).items():
            for key, values in conditions.items():
                if key.lower() == LEADING_KEYS and operator in (
                    "ForAllValues:StringLike",
                    "ForAllValues:StringEquals",
                ):
                    patterns = tuple(_listed(values))
                    leading = tuple(map(_glob if operator.endswith("Like") else _literal, patterns))
                else:
                    understood = False
        return cls(
            effect=raw["Effect"],
            actions=tuple(_glob(a.lower()) for a in _listed(raw.get("Action"))),
            resources=tuple(map(_glob, _listed(raw.get("Resource")))),
            leading_keys=leading,
            understood=understood,
        )

    def matches(self, request: Request) -> bool:
        if not any(fnmatch.fnmatchcase(request.action.lower(), a) for a in self.actions):
            return False
        if not any(fnmatch.fnmatchcase(request.resource, r) for r in self.resources):
            return False
        if self.leading_keys is None:
            return self.understood
        return self.understood and all(
            any(fnmatch.fnmatchcase(key, p) for p in self.leading_keys) for key in request.leading_keys
        )


class Policy:
    """A function's identity policy: allowed when a statement allows and none denies."""

    def __init__(self, statements: list[Mapping[str, Any]]):
        self.statements = [Statement.parse(s) for s in statements if s]

    def allows(self, request: Request) -> bool:
        matching = [s for s in self.statements if s.matches(request)]
        return any(s.effect == "Allow" for s in matching) and not any(s.effect == "Deny" for s in matching)

    def unevaluated(self) -> list[Statement]:
        return [s for s in self.statements if not s.understood]


@dataclass(frozen=True)
class Account:
    region: str
    account_id: str
    hash_keys: Mapping[str, str]  # table name → its partition key attribute

    def table_arn(self, table: str) -> str:
        return f"arn:aws:dynamodb:{self.region}:{self.account_id}:table/{table}"


def requests_of(service: str, operation: str, params: Mapping[str, Any], account: Account) -> list[Request]:
    """The authorizations IAM makes for one API call (a batch: one per table)."""
    action = f"{service}:{operation}"
    if service == "dynamodb":
        return list(_dynamodb(action, params, account))
    if service == "sqs":
        # SQS authorizes a batch by its single action: SendMessageBatch needs sqs:SendMessage.
        action = f"sqs:{operation.removesuffix('Batch')}"
        url = params.get("QueueUrl")
        name = url.rstrip("/").rsplit("/", 1)[-1] if url else params.get("QueueName", "*")
        return [Request(action, f"arn:aws:sqs:{account.region}:{account.account_id}:{name}")]
    if service == "secretsmanager":
        secret = str(params.get("SecretId", "*"))
        if not secret.startswith("arn:"):
            arn_prefix = f"arn:aws:secretsmanager:{account.region}:{account.account_id}:secret:"
            secret = f"{arn_prefix}{secret}{SECRET_SUFFIX}"
        return [Request(action, secret)]
    return []


def _dynamodb(action: str, params: Mapping[str, Any], account: Account) -> Iterator[Request]:
    if "RequestItems" in params:  # BatchGetItem, BatchWriteItem
        for table, items in params["RequestItems"].items():
            key = account.hash_keys.get(table, "")
            if isinstance(items, dict):  # BatchGetItem: {"Keys": [...]}
                keys = [_value(k, key) for k in items.get("Keys", [])]
            else:  # BatchWriteItem: [{"PutRequest": {"Item"}} | {"DeleteRequest": {"Key"}}]
                keys = [_value(_written(w), key) for w in items]
            yield Request(action, account.table_arn(table), tuple(k for k in keys if k is not None))
        return
    table = params.get("TableName", "*")
    resource = account.table_arn(table)
    if params.get("IndexName"):
        resource += f"/index/{params['IndexName']}"
    key = account.hash_keys.get(table, "")
    named = _value(params.get("Key") or params.get("Item") or {}, key)
    yield Request(action, resource, (named,) if named is not None else ())


def _written(write: Mapping[str, Any]) -> Mapping[str, Any]:
    return write.get("PutRequest", {}).get("Item") or write.get("DeleteRequest", {}).get("Key") or {}


def _value(item: Mapping[str, Any], attribute: str) -> str | None:
    typed = item.get(attribute)
    if not isinstance(typed, dict) or not typed:
        return None
    return str(next(iter(typed.values())))


def denied_error(function: str, request: Request, operation: str) -> Exception:
    from botocore.exceptions import ClientError

    message = (
        f"User: arn:aws:sts::local:assumed-role/{function}Role/{function} is not authorized to perform: "
        f"{request.action} on resource: {request.resource}"
        + (f" (keys {', '.join(request.leading_keys)})" if request.leading_keys else "")
        + " because no identity-based policy allows it (template.yaml)"
    )
    return ClientError({"Error": {"Code": "AccessDeniedException", "Message": message}}, operation)


def enforce(function: str, policy: Policy, account: Account, report: Callable[[str], None]) -> None:
    """Check every later AWS call of this process against `policy` (botocore's one entry point)."""
    from botocore.client import BaseClient

    for statement in policy.unevaluated():
        report(f"[local IAM] {function}: a statement with a condition not emulated never allows: {statement}")
    make_api_call = BaseClient._make_api_call

    def checked(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        service = client.meta.service_model.service_name
        if service in CHECKED_SERVICES:
            for request in requests_of(service, operation, params, account):
                if not policy.allows(request):
                    error = denied_error(function, request, operation)
                    report(f"[local IAM] AccessDenied: {error}")
                    raise error
        return make_api_call(client, operation, params)

    BaseClient._make_api_call = checked  # type: ignore[method-assign]


def enforce_from_environment(environ: Mapping[str, str]) -> bool:
    """In a worker: enforce the policy the stack passed, if any (tests may run without one)."""
    raw = environ.get(ENVIRONMENT_VARIABLE)
    if not raw:
        return False
    spec = json.loads(raw)
    account = Account(spec["region"], spec["account_id"], spec["hash_keys"])
    enforce(spec["function"], Policy(spec["statements"]), account, lambda line: print(line, file=sys.stderr))
    return True


def policy_variable(
    function: str,
    statements: list[dict[str, Any]],
    region: str,
    account_id: str,
    hash_keys: Mapping[str, str],
) -> dict[str, str]:
    """The worker environment variable that carries a function's policy."""
    spec = {
        "function": function,
        "statements": statements,
        "region": region,
        "account_id": account_id,
        "hash_keys": dict(hash_keys),
    }
    return {ENVIRONMENT_VARIABLE: json.dumps(spec, separators=(",", ":"))}


def _listed(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _glob(pattern: str) -> str:
    """IAM's wildcards are `*` and `?`; fnmatch's brackets are literal in ARNs."""
    return re.sub(r"([\[\]])", r"[\1]", pattern)


def _literal(value: str) -> str:
    return _glob(value).replace("*", "[*]").replace("?", "[?]")
