"""HubSpot CRM v3 (`/crm/v3/objects/...`, `/crm/v3/pipelines/...`), as ../shared/specs/hubspot/CONTRACT.md
describes it.

`Authorization: Bearer <token>`; scopes per object type (the demo token has all three, the
`DEALS_ONLY_TOKEN` only deals, to show HubSpot's 403). Every property value is a string or null.
List pages carry `paging.next.after` (opaque) and a `link`; search pages `total` and an offset `after`,
200 results a page and nothing past the 10,000th. Errors are HubSpot's `{"status": "error", "message",
"correlationId", "category"}`. The 10-second rolling limit is enforced (190 requests, as on Professional)
and reported in the `X-HubSpot-RateLimit-*` headers; a 429 carries Retry-After.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from functools import cache
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sophia_mcp.sandbox import SandboxState
from sophia_mcp.sandbox.dataset import CUSTOMERS, EPOCH, Customer, initiatives, iso_ms, stable_int

TOKEN = "pat-na1-sandbox-northwind-demo"
DEALS_ONLY_TOKEN = "pat-na1-sandbox-northwind-deals-only"
OBJECT_TYPES = ("deals", "companies", "contacts")
SCOPES: dict[str, frozenset[str]] = {
    TOKEN: frozenset(f"crm.objects.{t}.read" for t in OBJECT_TYPES),
    DEALS_ONLY_TOKEN: frozenset({"crm.objects.deals.read"}),
}
TYPE_NAMES = {
    "deals": "deals",
    "0-3": "deals",
    "companies": "companies",
    "0-2": "companies",
    "contacts": "contacts",
    "0-1": "contacts",
}
SINGULAR = {"deals": "DEAL", "companies": "COMPANY", "contacts": "CONTACT"}
DEFAULT_PROPERTIES = {
    "deals": (
        "dealname",
        "amount",
        "closedate",
        "pipeline",
        "dealstage",
        "createdate",
        "hs_lastmodifieddate",
        "hs_object_id",
    ),
    "companies": ("name", "domain", "createdate", "hs_lastmodifieddate", "hs_object_id"),
    "contacts": ("firstname", "lastname", "email", "createdate", "lastmodifieddate", "hs_object_id"),
}
ALWAYS_RETURNED = {
    "deals": ("createdate", "hs_lastmodifieddate", "hs_object_id"),
    "companies": ("createdate", "hs_lastmodifieddate", "hs_object_id"),
    "contacts": ("createdate", "lastmodifieddate", "hs_object_id"),
}
#: what the free-text `query` of a search looks at (HubSpot's default searchable properties)
SEARCHABLE = {
    "deals": ("dealname",),
    "companies": ("name", "domain", "website", "phone"),
    "contacts": ("firstname", "lastname", "email", "phone", "company"),
}
DATE_PROPERTIES = {"closedate", "createdate", "hs_lastmodifieddate", "lastmodifieddate"}
OPERATORS = {
    "EQ",
    "NEQ",
    "LT",
    "LTE",
    "GT",
    "GTE",
    "BETWEEN",
    "IN",
    "NOT_IN",
    "HAS_PROPERTY",
    "NOT_HAS_PROPERTY",
    "CONTAINS_TOKEN",
    "NOT_CONTAINS_TOKEN",
}
LIST_LIMIT_MAX = 100
SEARCH_LIMIT_MAX = 200
SEARCH_RESULTS_MAX = 10_000
FILTER_GROUPS_MAX = 6
BATCH_MAX = 100
ASSOCIATIONS_PAGE_MAX = 100  # association rows per type in an object read; `paging.next` points at the rest
RATE_LIMIT_MAX = 190
RATE_LIMIT_INTERVAL = 10.0
INDUSTRIES = {
    "Logistics": "LOGISTICS_AND_SUPPLY_CHAIN",
    "Agriculture": "FARMING",
    "Healthcare": "HOSPITAL_HEALTH_CARE",
    "Warehousing": "WAREHOUSING",
    "Mining": "MINING_METALS",
    "Aviation": "AIRLINES_AVIATION",
    "Retail": "RETAIL",
    "Manufacturing": "MACHINERY",
}
CITIES = {
    "harbor": ("Rotterdam", "Netherlands"),
    "greenleaf": ("Fresno", "United States"),
    "metro": ("Chicago", "United States"),
    "polar": ("Oslo", "Norway"),
    "summit": ("Perth", "Australia"),
    "bayview": ("Singapore", "Singapore"),
    "orchid": ("Milan", "Italy"),
    "atlas": ("Stuttgart", "Germany"),
}

Node = dict[str, Any]


def demo_settings(base_url: str) -> dict[str, Any]:
    return {"hubspot_token": TOKEN, "hubspot_base_url": base_url}


# -- errors ---------------------------------------------------------------------------------------


class HubSpotError(Exception):
    def __init__(self, status: int, message: str, category: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.category, self.extra = status, message, category, extra

    def response(self, headers: Mapping[str, str] | None = None) -> JSONResponse:
        return JSONResponse(
            error_body(self.message, self.category, **self.extra), status_code=self.status, headers=headers
        )


def error_body(message: str, category: str, **extra: Any) -> Node:
    return {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category, **extra}


def rate_limit_response(retry_after: float | None) -> JSONResponse:
    headers = {
        "X-HubSpot-RateLimit-Max": str(RATE_LIMIT_MAX),
        "X-HubSpot-RateLimit-Remaining": "0",
        "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(RATE_LIMIT_INTERVAL * 1000)),
    }
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, round(retry_after)))
    body = error_body(
        "You have reached your ten_secondly_rolling limit.",
        "RATE_LIMITS",
        errorType="RATE_LIMIT",
        policyName="TEN_SECONDLY_ROLLING",
        groupName=f"publicapi:private-app:{stable_int('hubspot-app')}",
    )
    return JSONResponse(body, status_code=429, headers=headers)


def error_response(status: int, retry_after: float | None) -> Response:
    if status == 429:
        return rate_limit_response(retry_after)
    categories = {
        400: "VALIDATION_ERROR",
        401: "INVALID_AUTHENTICATION",
        403: "MISSING_SCOPES",
        404: "OBJECT_NOT_FOUND",
    }
    message = "internal error" if status >= 500 else "The request could not be processed."
    return JSONResponse(error_body(message, categories.get(status, "INTERNAL_ERROR")), status_code=status)


def unauthorized() -> HubSpotError:
    return HubSpotError(
        401,
        "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more "
        "details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
        "INVALID_AUTHENTICATION",
    )


def missing_scope(scope: str) -> HubSpotError:
    return HubSpotError(
        403,
        "This app hasn't been granted all required scopes to make this call. Read more about required scopes here: "
        "https://developers.hubspot.com/scopes.",
        "MISSING_SCOPES",
        errors=[
            {
                "message": "One or more of the following scopes are required.",
                "context": {"requiredGranularScopes": [scope]},
            }
        ],
        links={"scopes": "https://developers.hubspot.com/scopes"},
    )


def invalid(message: str) -> HubSpotError:
    return HubSpotError(400, message, "VALIDATION_ERROR")


# -- the seeded CRM -------------------------------------------------------------------------------


@dataclass
class Crm:
    objects: dict[str, dict[str, Node]]  # object type -> id -> object
    pipelines: list[Node]
    #: (object type, id) -> associated object type -> [(id, association type)]
    associations: dict[tuple[str, str], dict[str, list[tuple[str, str]]]] = field(default_factory=dict)

    def associate(self, a_type: str, a_id: str, b_type: str, b_id: str, *labels: str) -> None:
        for label in labels:
            self.associations.setdefault((a_type, a_id), {}).setdefault(b_type, []).append((b_id, label))
        back = f"{SINGULAR[b_type].lower()}_to_{SINGULAR[a_type].lower()}"
        self.associations.setdefault((b_type, b_id), {}).setdefault(a_type, []).append((a_id, back))


def object_id(kind: str, key: str) -> str:
    return str(stable_int("hubspot", kind, key, digits=11))


def owner_id(person_key: str) -> str:
    return str(stable_int("hubspot-owner", person_key, digits=9))


def midnight(day: Any) -> datetime:
    return datetime.combine(day, clock_time(0), tzinfo=UTC)


DEFAULT_STAGES = (  # HubSpot's default sales pipeline
    ("appointmentscheduled", "Appointment scheduled", "0.2", "false"),
    ("qualifiedtobuy", "Qualified to buy", "0.4", "false"),
    ("presentationscheduled", "Presentation scheduled", "0.6", "false"),
    ("decisionmakerboughtin", "Decision maker bought-In", "0.8", "false"),
    ("contractsent", "Contract sent", "0.9", "false"),
    ("closedwon", "Closed won", "1.0", "true"),
    ("closedlost", "Closed lost", "0.0", "true"),
)
RENEWAL_PIPELINE = str(stable_int("hubspot-pipeline", "renewals", digits=9))
RENEWAL_STAGES = tuple(
    (str(stable_int("hubspot-stage", label, digits=9)), label, probability, closed)
    for label, probability, closed in (
        ("Renewal identified", "0.3", "false"),
        ("Renewal proposal sent", "0.7", "false"),
        ("Renewed", "1.0", "true"),
        ("Churned", "0.0", "true"),
    )
)
RENEWAL_STAGE = {label: stage_id for stage_id, label, _, _ in RENEWAL_STAGES}
#: extra deals beyond one per initiative: customer, name, pipeline, stage, amount, owner, close (days from EPOCH)
EXTRA_DEALS = (
    (
        "harbor",
        "2027 Fleet Support Renewal",
        RENEWAL_PIPELINE,
        RENEWAL_STAGE["Renewal proposal sent"],
        180_000,
        "hana.sato",
        40,
    ),
    ("greenleaf", "Service Contract Renewal", RENEWAL_PIPELINE, RENEWAL_STAGE["Churned"], 45_000, "hana.sato", -20),
    ("polar", "Cold Store Expansion (40 robots)", "default", "contractsent", 1_200_000, "gus.romero", 25),
    ("metro", "Pharmacy Delivery Add-on", "default", "appointmentscheduled", 260_000, "gus.romero", 75),
    ("bayview", "Terminal Cleaning Robots", "default", "closedlost", 310_000, "gus.romero", -45),
    ("orchid", "Store Replenishment Pilot", "default", "qualifiedtobuy", 95_000, "gus.romero", 60),
    ("atlas", "Annual Maintenance Renewal", RENEWAL_PIPELINE, RENEWAL_STAGE["Renewed"], 70_000, "hana.sato", -10),
)


def stage_for(status: str, progress: float) -> str:
    """Where an initiative's deal stands: its customer signed once work is well under way."""
    if status == "completed" or (status == "active" and progress >= 0.5):
        return "closedwon"
    return {
        "canceled": "closedlost",
        "paused": "decisionmakerboughtin",
        "active": "contractsent",
        "planned": "presentationscheduled" if progress > 0 else "qualifiedtobuy",
    }[status]


def pipeline_node(pipeline_id: str, label: str, order: int, stages: tuple[tuple[str, str, str, str], ...]) -> Node:
    created = iso_ms(EPOCH.replace(year=2024, month=1, day=10))
    return {
        "id": pipeline_id,
        "label": label,
        "displayOrder": order,
        "archived": False,
        "createdAt": created,
        "updatedAt": iso_ms(EPOCH - timedelta(days=200)),
        "stages": [
            {
                "id": stage_id,
                "label": stage_label,
                "displayOrder": i,
                "metadata": {"isClosed": closed, "probability": probability},
                "createdAt": created,
                "updatedAt": created,
                "archived": False,
                "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
            }
            for i, (stage_id, stage_label, probability, closed) in enumerate(stages)
        ],
    }


def crm_object(
    object_id_: str, created: datetime, updated: datetime, properties: Mapping[str, Any], modified_key: str
) -> Node:
    props = {k: None if v is None else str(v) for k, v in properties.items()}
    props.update({"createdate": iso_ms(created), modified_key: iso_ms(updated), "hs_object_id": object_id_})
    return {
        "id": object_id_,
        "properties": props,
        "createdAt": iso_ms(created),
        "updatedAt": iso_ms(updated),
        "archived": False,
    }


@cache
def crm() -> Crm:
    pipelines = [
        pipeline_node("default", "Sales Pipeline", 0, DEFAULT_STAGES),
        pipeline_node(RENEWAL_PIPELINE, "Renewals & Expansion", 1, RENEWAL_STAGES),
    ]
    probabilities = {s["id"]: s["metadata"] for p in pipelines for s in p["stages"]}
    data = Crm(objects={t: {} for t in OBJECT_TYPES}, pipelines=pipelines)
    since = EPOCH - timedelta(days=400)

    def company_and_contact(customer: Customer) -> tuple[str, str]:
        company_id, contact_id = object_id("company", customer.key), object_id("contact", customer.key)
        if company_id not in data.objects["companies"]:
            city, country = CITIES[customer.key]
            data.objects["companies"][company_id] = crm_object(
                company_id,
                since + timedelta(days=len(data.objects["companies"]) * 9),
                EPOCH - timedelta(days=len(data.objects["companies"])),
                {
                    "name": customer.name,
                    "domain": customer.domain,
                    "website": f"https://www.{customer.domain}",
                    "industry": INDUSTRIES[customer.industry],
                    "city": city,
                    "country": country,
                    "lifecyclestage": "customer",
                    "hubspot_owner_id": owner_id("gus.romero"),
                },
                "hs_lastmodifieddate",
            )
            first, last = customer.contact_name.split(" ", 1)
            data.objects["contacts"][contact_id] = crm_object(
                contact_id,
                since + timedelta(days=len(data.objects["contacts"]) * 9, hours=2),
                EPOCH - timedelta(days=len(data.objects["contacts"]), hours=3),
                {
                    "firstname": first,
                    "lastname": last,
                    "email": f"{first}.{last}@{customer.domain}".lower(),
                    "company": customer.name,
                    "jobtitle": customer.contact_title,
                    "lifecyclestage": "customer",
                    "hubspot_owner_id": owner_id("hana.sato"),
                },
                "lastmodifieddate",
            )
            data.associate("companies", company_id, "contacts", contact_id, "company_to_contact")
        return company_id, contact_id

    def add_deal(
        key: str, customer: Customer, properties: dict[str, Any], created: datetime, updated: datetime
    ) -> None:
        deal_id = object_id("deal", key)
        stage = properties["dealstage"]
        metadata = probabilities[stage]
        properties.update(
            hs_is_closed=metadata["isClosed"],
            hs_is_closed_won=str(metadata["isClosed"] == "true" and metadata["probability"] == "1.0").lower(),
            hs_deal_stage_probability=metadata["probability"],
            deal_currency_code="USD",
        )
        data.objects["deals"][deal_id] = crm_object(deal_id, created, updated, properties, "hs_lastmodifieddate")
        company_id, contact_id = company_and_contact(customer)
        data.associate("deals", deal_id, "companies", company_id, "deal_to_company", "deal_to_company_unlabeled")
        data.associate("deals", deal_id, "contacts", contact_id, "deal_to_contact")

    for i, initiative in enumerate(initiatives()):
        if initiative.customer is None:
            continue
        stage = stage_for(initiative.status, initiative.progress)
        closed = stage in ("closedwon", "closedlost")
        close = midnight(initiative.start) if closed else midnight((EPOCH + timedelta(days=15 + i * 5)).date())
        add_deal(
            initiative.key,
            initiative.customer,
            {
                "dealname": f"{initiative.customer.name} – {initiative.name}",
                "amount": initiative.deal_amount,
                "dealstage": stage,
                "pipeline": "default",
                "closedate": iso_ms(close),
                "hubspot_owner_id": owner_id("hana.sato" if initiative.lead.team == "Sales" else "gus.romero"),
                "dealtype": "newbusiness",
                "description": initiative.summary,
            },
            initiative.created - timedelta(days=45),
            initiative.updated,
        )
    customers = {c.key: c for c in CUSTOMERS}
    for n, (customer_key, name, pipeline, stage, amount, owner, close_days) in enumerate(EXTRA_DEALS):
        customer = customers[customer_key]
        add_deal(
            f"extra-{customer_key}-{n}",
            customer,
            {
                "dealname": f"{customer.name} – {name}",
                "amount": amount,
                "dealstage": stage,
                "pipeline": pipeline,
                "closedate": iso_ms(midnight((EPOCH + timedelta(days=close_days)).date())),
                "hubspot_owner_id": owner_id(owner),
                "dealtype": "existingbusiness" if pipeline == RENEWAL_PIPELINE else "newbusiness",
                "description": f"{name} for {customer.name}.",
            },
            EPOCH - timedelta(days=90 - n * 7),
            EPOCH - timedelta(days=n, hours=5),
        )
    for object_type in OBJECT_TYPES:  # HubSpot lists objects in id order
        data.objects[object_type] = dict(sorted(data.objects[object_type].items(), key=lambda kv: int(kv[0])))
    return data


@cache
def defined_properties(object_type: str) -> frozenset[str]:
    """The properties an object type has (HubSpot leaves unknown property names out of its answers)."""
    defined = {name for obj in crm().objects[object_type].values() for name in obj["properties"]}
    return frozenset(defined | set(DEFAULT_PROPERTIES[object_type]))


def shaped(object_type: str, obj: Node, properties: Sequence[str] | None, associations: Sequence[str] = ()) -> Node:
    """The object as HubSpot answers: the requested properties (null when unset), or the defaults."""
    wanted = properties if properties else list(DEFAULT_PROPERTIES[object_type])
    defined = defined_properties(object_type)
    names = [p for p in dict.fromkeys([*wanted, *ALWAYS_RETURNED[object_type]]) if p in defined]
    node: Node = {
        "id": obj["id"],
        "properties": {name: obj["properties"].get(name) for name in names},
        "createdAt": obj["createdAt"],
        "updatedAt": obj["updatedAt"],
        "archived": False,
    }
    linked = crm().associations.get((object_type, obj["id"]), {})
    found = {
        to_type: associations_page(object_type, obj["id"], to_type, linked[to_type])
        for to_type in (TYPE_NAMES.get(a.strip()) for a in associations)
        if to_type and linked.get(to_type)
    }
    if found:
        node["associations"] = found
    return node


def associations_page(object_type: str, object_id_: str, to_type: str, rows: list[tuple[str, str]]) -> Node:
    """The first page of one type's association rows (one row per id and label), as v3 reads return it."""
    page: Node = {"results": [{"id": i, "type": label} for i, label in rows[:ASSOCIATIONS_PAGE_MAX]]}
    if len(rows) > ASSOCIATIONS_PAGE_MAX:
        after = encode_after(ASSOCIATIONS_PAGE_MAX)
        link = f"crm/v3/objects/{object_type}/{object_id_}/associations/{to_type}?after={after}"
        page["paging"] = {"next": {"after": after, "link": link}}
    return page


# -- request parsing ------------------------------------------------------------------------------


def object_type_of(request: Request, scopes: frozenset[str]) -> str:
    raw = request.path_params["object_type"]
    object_type = TYPE_NAMES.get(raw)
    if object_type is None:
        raise HubSpotError(400, f"Unable to infer object type from: {raw}", "OBJECT_NOT_FOUND")
    if f"crm.objects.{object_type}.read" not in scopes:
        raise missing_scope(f"crm.objects.{object_type}.read")
    return object_type


def listed(request: Request, name: str) -> list[str]:
    return [part.strip() for value in request.query_params.getlist(name) for part in value.split(",") if part.strip()]


def bounded_int(raw: Any, name: str, default: int, maximum: int) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise invalid(f"Invalid value for {name}: {raw!r} is not an integer.") from None
    if not 1 <= value <= maximum:
        raise invalid(f"{name} must be between 1 and {maximum}; got {value}.")
    return value


def encode_after(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode().rstrip("=")


def decode_after(after: str | None) -> int:
    if not after:
        return 0
    try:
        return int(base64.urlsafe_b64decode(after + "=" * (-len(after) % 4)).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise invalid(f"Invalid after: {after}") from None


async def json_body(request: Request) -> Node:
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError as exc:
        raise invalid(f"Invalid input JSON on line 1: {exc}") from None
    if not isinstance(body, dict):
        raise invalid("Invalid input JSON: expected an object.")
    return body


# -- search ---------------------------------------------------------------------------------------


def comparable(name: str, value: Any) -> float | str | None:
    """Numbers as numbers, dates as epoch milliseconds (from ISO-8601 or milliseconds), else lowercase text."""
    if value is None or value == "":
        return None
    text = str(value)
    if name in DATE_PROPERTIES:
        if text.isdigit():
            return float(text)
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return text.lower()
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp() * 1000
    try:
        return float(text)
    except ValueError:
        return text.lower()


def matches(flt: Mapping[str, Any], props: Mapping[str, Any]) -> bool:
    name, operator = flt["propertyName"], flt["operator"]
    actual = comparable(name, props.get(name))
    if operator == "HAS_PROPERTY":
        return actual is not None
    if operator == "NOT_HAS_PROPERTY":
        return actual is None
    if operator in ("IN", "NOT_IN"):
        inside = actual in {comparable(name, v) for v in flt.get("values") or []}
        return inside if operator == "IN" else not inside
    if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        pattern = str(flt.get("value", "")).lower()
        words = str(props.get(name) or "").lower().replace("@", " ").replace(".", " ").split()
        text = str(props.get(name) or "").lower()
        found = any(fnmatch.fnmatchcase(w, pattern) for w in words) or fnmatch.fnmatchcase(text, pattern)
        return found if operator == "CONTAINS_TOKEN" else not found
    wanted = comparable(name, flt.get("value"))
    if operator == "EQ":
        return actual == wanted
    if operator == "NEQ":
        return actual != wanted
    if actual is None or wanted is None or type(actual) is not type(wanted):
        return False
    if operator == "BETWEEN":
        high = comparable(name, flt.get("highValue"))
        return type(high) is type(actual) and wanted <= actual <= high  # type: ignore[operator]
    return {"LT": actual < wanted, "LTE": actual <= wanted, "GT": actual > wanted, "GTE": actual >= wanted}[operator]  # type: ignore[operator]


def validated_filter_groups(body: Mapping[str, Any]) -> list[list[Node]]:
    groups = body.get("filterGroups") or []
    if not isinstance(groups, list) or len(groups) > FILTER_GROUPS_MAX:
        raise invalid(f"There can be at most {FILTER_GROUPS_MAX} filterGroups.")
    result = []
    for group in groups:
        filters = group.get("filters") if isinstance(group, dict) else None
        if not isinstance(filters, list):
            raise invalid("Each filter group needs a list of filters.")
        for flt in filters:
            if not isinstance(flt, dict) or not flt.get("propertyName"):
                raise invalid("Each filter needs a propertyName.")
            if flt.get("operator") not in OPERATORS:
                raise invalid(f"Unknown operator {flt.get('operator')!r}; use one of {', '.join(sorted(OPERATORS))}.")
            if flt["operator"] in ("IN", "NOT_IN") and not isinstance(flt.get("values"), list):
                raise invalid(f"{flt['operator']} needs `values`.")
            if flt["operator"] == "BETWEEN" and ("value" not in flt or "highValue" not in flt):
                raise invalid("BETWEEN needs `value` and `highValue`.")
        result.append(filters)
    return result


def sort_key(body: Mapping[str, Any]) -> tuple[str, bool] | None:
    sorts = body.get("sorts") or []
    if not sorts:
        return None
    first = sorts[0]
    if isinstance(first, str):
        return first.lstrip("-"), first.startswith("-")
    if isinstance(first, dict) and first.get("propertyName"):
        return first["propertyName"], str(first.get("direction", "ASCENDING")).upper() == "DESCENDING"
    raise invalid("Each sort needs a propertyName.")


def sortable(value: float | str | None) -> tuple[bool, float | str]:
    """Numbers before text, each in its own order."""
    return isinstance(value, str), value if value is not None else ""


def search(object_type: str, body: Mapping[str, Any]) -> Node:
    limit = bounded_int(body.get("limit"), "limit", 10, SEARCH_LIMIT_MAX)
    after = body.get("after") or "0"
    if not str(after).isdigit():
        raise invalid(f"Invalid after: {after}")
    offset = int(after)
    if offset >= SEARCH_RESULTS_MAX:
        raise invalid(f"Paging beyond {SEARCH_RESULTS_MAX} results is not supported; narrow the search.")
    groups = validated_filter_groups(body)
    order = sort_key(body)
    for name in [f["propertyName"] for group in groups for f in group] + ([order[0]] if order else []):
        if name not in defined_properties(object_type):  # HubSpot refuses these; it ignores unknown `properties`
            raise invalid(f'Property "{name}" does not exist on {object_type}.')
    words = str(body.get("query") or "").lower().split()
    properties = body.get("properties") or None
    if properties is not None and not (isinstance(properties, list) and all(isinstance(p, str) for p in properties)):
        raise invalid("properties must be a list of property names.")
    found = []
    for obj in crm().objects[object_type].values():
        props = obj["properties"]
        if groups and not any(all(matches(f, props) for f in group) for group in groups):
            continue
        text = " ".join(str(props.get(p) or "") for p in SEARCHABLE[object_type]).lower()
        if not all(word in text for word in words):
            continue
        found.append(obj)
    if order is not None:
        name, descending = order
        present = [o for o in found if comparable(name, o["properties"].get(name)) is not None]
        absent = [o for o in found if comparable(name, o["properties"].get(name)) is None]
        present.sort(key=lambda o: sortable(comparable(name, o["properties"][name])), reverse=descending)
        found = present + absent
    total = len(found)
    reachable = found[:SEARCH_RESULTS_MAX]
    page: Node = {
        "total": total,
        "results": [shaped(object_type, o, properties) for o in reachable[offset : offset + limit]],
    }
    if offset + limit < len(reachable):
        page["paging"] = {"next": {"after": str(offset + limit), "link": f"?after={offset + limit}"}}
    return page


# -- the app --------------------------------------------------------------------------------------

Handler = Callable[[Request, frozenset[str]], Awaitable[Response]]


def build(state: SandboxState) -> Starlette:
    window: deque[float] = state.extra.setdefault("hubspot_requests", deque())

    def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if token not in SCOPES:
                return unauthorized().response()
            now = time.monotonic()
            while window and now - window[0] >= RATE_LIMIT_INTERVAL:
                window.popleft()
            if len(window) >= RATE_LIMIT_MAX:
                return rate_limit_response(RATE_LIMIT_INTERVAL - (now - window[0]))
            window.append(now)
            try:
                response = await handler(request, SCOPES[token])
            except HubSpotError as error:
                response = error.response()
            if not request.url.path.endswith("/search"):  # search has its own per-second limit, no headers
                response.headers["X-HubSpot-RateLimit-Max"] = str(RATE_LIMIT_MAX)
                response.headers["X-HubSpot-RateLimit-Remaining"] = str(RATE_LIMIT_MAX - len(window))
                response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] = str(int(RATE_LIMIT_INTERVAL * 1000))
            return response

        return run

    async def list_objects(request: Request, scopes: frozenset[str]) -> Response:
        object_type = object_type_of(request, scopes)
        params = request.query_params
        limit = bounded_int(params.get("limit"), "limit", 10, LIST_LIMIT_MAX)
        offset = decode_after(params.get("after"))
        objects = [] if params.get("archived", "false").lower() == "true" else list(crm().objects[object_type].values())
        properties, associations = listed(request, "properties"), listed(request, "associations")
        body: Node = {
            "results": [shaped(object_type, o, properties, associations) for o in objects[offset : offset + limit]]
        }
        if offset + limit < len(objects):
            after = encode_after(offset + limit)
            link = request.url.remove_query_params("after").include_query_params(after=after)
            body["paging"] = {"next": {"after": after, "link": str(link)}}
        return JSONResponse(body)

    async def get_object(request: Request, scopes: frozenset[str]) -> Response:
        object_type = object_type_of(request, scopes)
        ident = request.path_params["object_id"]
        obj = crm().objects[object_type].get(ident)
        if obj is None or request.query_params.get("archived", "false").lower() == "true":
            raise HubSpotError(
                404, "Object not found.  objectId are usually numeric.", "OBJECT_NOT_FOUND", context={"id": [ident]}
            )
        return JSONResponse(shaped(object_type, obj, listed(request, "properties"), listed(request, "associations")))

    async def search_objects(request: Request, scopes: frozenset[str]) -> Response:
        object_type = object_type_of(request, scopes)
        return JSONResponse(search(object_type, await json_body(request)))

    async def batch_read(request: Request, scopes: frozenset[str]) -> Response:
        object_type = object_type_of(request, scopes)
        body = await json_body(request)
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not all(isinstance(i, dict) and "id" in i for i in inputs):
            raise invalid('inputs must be a list of {"id": ...} objects.')
        if len(inputs) > BATCH_MAX:
            raise invalid(f"Batch input may hold at most {BATCH_MAX} inputs.")
        started = iso_ms(datetime.now(UTC))
        objects = crm().objects[object_type]
        ids = [str(i["id"]) for i in inputs]
        properties = body.get("properties") or None
        result: Node = {
            "status": "COMPLETE",
            "results": [shaped(object_type, objects[i], properties) for i in dict.fromkeys(ids) if i in objects],
            "startedAt": started,
            "completedAt": iso_ms(datetime.now(UTC)),
        }
        missing = [i for i in ids if i not in objects]
        if missing:
            result["numErrors"] = 1
            result["errors"] = [
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": f"Could not get some {SINGULAR[object_type]} objects, they may be deleted or not exist. "
                    "Check that ids are valid.",
                    "context": {"ids": missing},
                }
            ]
            return JSONResponse(result, status_code=207)
        return JSONResponse(result)

    def pipelines_for(request: Request, scopes: frozenset[str]) -> list[Node]:
        object_type = object_type_of(request, scopes)
        return crm().pipelines if object_type == "deals" else []

    def one_pipeline(request: Request, scopes: frozenset[str]) -> Node:
        ident = request.path_params["pipeline_id"]
        for pipeline in pipelines_for(request, scopes):
            if pipeline["id"] == ident:
                return pipeline
        raise HubSpotError(
            404, f"Unable to find pipeline {ident}.", "OBJECT_NOT_FOUND", context={"pipelineId": [ident]}
        )

    async def list_pipelines(request: Request, scopes: frozenset[str]) -> Response:
        return JSONResponse({"results": pipelines_for(request, scopes)})

    async def get_pipeline(request: Request, scopes: frozenset[str]) -> Response:
        return JSONResponse(one_pipeline(request, scopes))

    async def list_stages(request: Request, scopes: frozenset[str]) -> Response:
        return JSONResponse({"results": one_pipeline(request, scopes)["stages"]})

    async def not_found(request: Request, scopes: frozenset[str]) -> Response:
        raise HubSpotError(404, f"No route found for {request.method} {request.url.path}", "OBJECT_NOT_FOUND")

    objects = "/crm/v3/objects/{object_type}"
    pipelines = "/crm/v3/pipelines/{object_type}"
    return Starlette(
        routes=[
            Route(objects, endpoint(list_objects), methods=["GET"]),
            Route(objects + "/search", endpoint(search_objects), methods=["POST"]),
            Route(objects + "/batch/read", endpoint(batch_read), methods=["POST"]),
            Route(objects + "/{object_id}", endpoint(get_object), methods=["GET"]),
            Route(pipelines, endpoint(list_pipelines), methods=["GET"]),
            Route(pipelines + "/{pipeline_id}", endpoint(get_pipeline), methods=["GET"]),
            Route(pipelines + "/{pipeline_id}/stages", endpoint(list_stages), methods=["GET"]),
            Route("/{path:path}", endpoint(not_found), methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        ]
    )
