"""One seeded, deterministic company: Northwind Robotics, whose initiatives show up coherently in all
seven platforms (a Linear project, a GitHub repository and Project, a Slack channel, an Asana
project, a Notion page, a HubSpot deal with its customer, Gong calls with that customer).

Every platform's sandbox module derives its objects from these lists, so one initiative can be
followed across platforms by its `key`.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Literal

Status = Literal["planned", "active", "paused", "completed", "canceled"]

COMPANY = "Northwind Robotics"
DOMAIN = "northwind.example"
SLUG = "northwind"
NAMESPACE = uuid.UUID("6f1c1a52-5d0e-4c53-9a43-2f1f2f6a0b11")
#: "now" for the dataset: fixed, so every run serves the same data and dates read consistently.
EPOCH = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def stable_uuid(*parts: object) -> str:
    return str(uuid.uuid5(NAMESPACE, "/".join(str(p) for p in parts)))


def stable_int(*parts: object, digits: int = 9) -> int:
    return int(uuid.uuid5(NAMESPACE, "/".join(str(p) for p in parts)).int % 10**digits) + 10 ** (digits - 1)


@dataclass(frozen=True)
class Person:
    key: str
    name: str
    title: str
    team: str

    @property
    def email(self) -> str:
        return f"{self.key}@{DOMAIN}"

    @property
    def handle(self) -> str:
        return self.key.replace(".", "-")


@dataclass(frozen=True)
class Customer:
    key: str
    name: str
    domain: str
    industry: str
    contact_name: str
    contact_title: str


@dataclass(frozen=True)
class WorkItem:
    key: str  # e.g. "NAV-3"
    number: int
    title: str
    state: Literal["backlog", "todo", "in_progress", "in_review", "done", "canceled"]
    assignee: Person | None
    priority: int  # 0 none, 1 urgent ... 4 low
    due: date | None
    created: datetime
    updated: datetime
    description: str


@dataclass(frozen=True)
class Initiative:
    key: str  # slug, e.g. "fleet-navigation"
    code: str  # issue prefix, e.g. "NAV"
    name: str
    summary: str
    status: Status
    lead: Person
    team: str
    start: date
    target: date
    progress: float
    customer: Customer | None
    deal_amount: int
    created: datetime
    updated: datetime
    items: tuple[WorkItem, ...] = field(default=())

    @property
    def repo(self) -> str:
        return self.key


PEOPLE: tuple[Person, ...] = (
    Person("ada.okafor", "Ada Okafor", "VP Engineering", "Platform"),
    Person("ben.lindqvist", "Ben Lindqvist", "Staff Engineer", "Autonomy"),
    Person("chen.wei", "Chen Wei", "Engineering Manager", "Autonomy"),
    Person("dara.nguyen", "Dara Nguyen", "Product Manager", "Fleet"),
    Person("eli.moreau", "Eli Moreau", "Senior Engineer", "Fleet"),
    Person("fatima.haddad", "Fatima Haddad", "Designer", "Experience"),
    Person("gus.romero", "Gus Romero", "Account Executive", "Sales"),
    Person("hana.sato", "Hana Sato", "Customer Success Lead", "Sales"),
    Person("ivan.petrov", "Ivan Petrov", "Site Reliability Engineer", "Platform"),
    Person("jo.adeyemi", "Jo Adeyemi", "Data Scientist", "Autonomy"),
)

CUSTOMERS: tuple[Customer, ...] = (
    Customer("harbor", "Harbor Logistics", "harborlogistics.example", "Logistics", "Maya Chen", "Director of Ops"),
    Customer("greenleaf", "Greenleaf Farms", "greenleaf.example", "Agriculture", "Tom Becker", "COO"),
    Customer("metro", "Metro Hospital Group", "metrohealth.example", "Healthcare", "Priya Raman", "CIO"),
    Customer("polar", "Polar Cold Storage", "polarcold.example", "Warehousing", "Lars Holm", "Head of Automation"),
    Customer("summit", "Summit Mining", "summitmining.example", "Mining", "Rosa Alvarez", "VP Operations"),
    Customer("bayview", "Bayview Airports", "bayview.example", "Aviation", "Kwame Mensah", "Ground Ops Manager"),
    Customer("orchid", "Orchid Retail", "orchidretail.example", "Retail", "Sofia Rossi", "Supply Chain Lead"),
    Customer("atlas", "Atlas Manufacturing", "atlasmfg.example", "Manufacturing", "Noah Fischer", "Plant Director"),
)

# key, code, name, summary, status, lead, team, customer, progress, deal amount
_INITIATIVES = (
    ("fleet-navigation", "NAV", "Fleet Navigation v2", "Rebuild path planning for mixed indoor/outdoor fleets.",
     "active", "ben.lindqvist", "Autonomy", "harbor", 0.62, 480_000),
    ("battery-health", "BAT", "Battery Health Monitoring", "Predict battery failures from telemetry a week ahead.",
     "active", "jo.adeyemi", "Autonomy", "polar", 0.41, 220_000),
    ("customer-portal", "POR", "Customer Portal", "Self-serve portal for fleet status, invoices and tickets.",
     "active", "dara.nguyen", "Fleet", "orchid", 0.55, 150_000),
    ("safety-certification", "SAF", "ISO 3691-4 Safety Certification", "Certify the AMR line for industrial use.",
     "active", "chen.wei", "Autonomy", "atlas", 0.73, 610_000),
    ("warehouse-pilot", "WHP", "Polar Warehouse Pilot", "Ten-robot pilot in a -25 °C cold store.",
     "completed", "hana.sato", "Fleet", "polar", 1.0, 390_000),
    ("hospital-delivery", "HOS", "Hospital Delivery Robots", "Autonomous linen and lab-sample delivery.",
     "planned", "eli.moreau", "Fleet", "metro", 0.05, 720_000),
    ("mining-haulage", "MIN", "Underground Haulage", "Teleoperated haulage for narrow mine tunnels.",
     "paused", "ben.lindqvist", "Autonomy", "summit", 0.30, 950_000),
    ("airport-baggage", "AIR", "Airport Baggage Tugs", "Autonomous baggage tugs on the apron.",
     "planned", "chen.wei", "Autonomy", "bayview", 0.0, 830_000),
    ("farm-harvest", "FRM", "Harvest Assist", "Row-following carts that shadow pickers.",
     "canceled", "dara.nguyen", "Fleet", "greenleaf", 0.18, 120_000),
    ("observability", "OBS", "Fleet Observability", "Metrics, traces and alerts for every robot in the field.",
     "active", "ivan.petrov", "Platform", None, 0.48, 0),
    ("design-system", "DSN", "Operator Console Design System", "One component library for every operator UI.",
     "active", "fatima.haddad", "Experience", None, 0.66, 0),
    ("ota-updates", "OTA", "Over-the-Air Updates", "Signed, staged firmware rollouts with automatic rollback.",
     "completed", "ivan.petrov", "Platform", "harbor", 1.0, 90_000),
    ("sim-lab", "SIM", "Simulation Lab", "Nightly simulation of every release against recorded routes.",
     "active", "jo.adeyemi", "Autonomy", None, 0.35, 0),
    ("onboarding-revamp", "ONB", "Customer Onboarding Revamp", "Cut time from contract to first mission to 2 weeks.",
     "planned", "hana.sato", "Sales", "atlas", 0.1, 60_000),
)

_ITEM_TITLES = (
    "Write the technical design", "Prototype on the test track", "Add telemetry for {name}",
    "Fix flaky integration test", "Review security findings", "Load test with 50 robots",
    "Document the operator runbook", "Handle network loss gracefully", "Ship beta to {customer}",
    "Tune parameters from field data", "Accessibility pass on the console", "Migrate config to v2 schema",
)
_STATES = ("backlog", "todo", "in_progress", "in_review", "done", "done", "canceled")


def _items(index: int, code: str, name: str, customer: Customer | None, status: Status) -> tuple[WorkItem, ...]:
    rng = random.Random(f"items-{code}")
    count = 6 + index % 5
    items = []
    for n in range(1, count + 1):
        title = _ITEM_TITLES[(index + n * 5) % len(_ITEM_TITLES)].format(
            name=name, customer=customer.name if customer else "the pilot site"
        )
        if status == "completed":
            state = "done"
        elif status == "canceled":
            state = "canceled" if n % 2 else "done"
        else:
            state = rng.choice(_STATES)
        created = EPOCH - timedelta(days=90 - index * 3 - n, hours=n)
        items.append(
            WorkItem(
                key=f"{code}-{n}",
                number=n,
                title=title,
                state=state,  # type: ignore[arg-type]
                assignee=rng.choice(PEOPLE) if rng.random() > 0.15 else None,
                priority=rng.randint(0, 4),
                due=(EPOCH + timedelta(days=rng.randint(-10, 40))).date() if rng.random() > 0.3 else None,
                created=created,
                updated=created + timedelta(days=rng.randint(1, 30)),
                description=f"{title} for {name}. Acceptance: reviewed by the team lead and demoed on Friday.",
            )
        )
    return tuple(items)


@cache
def initiatives() -> tuple[Initiative, ...]:
    people = {p.key: p for p in PEOPLE}
    customers = {c.key: c for c in CUSTOMERS}
    result = []
    for i, (key, code, name, summary, status, lead, team, customer, progress, amount) in enumerate(_INITIATIVES):
        cust = customers.get(customer) if customer else None
        start = (EPOCH - timedelta(days=120 - i * 7)).date()
        created = EPOCH - timedelta(days=130 - i * 7)
        result.append(
            Initiative(
                key=key,
                code=code,
                name=name,
                summary=summary,
                status=status,  # type: ignore[arg-type]
                lead=people[lead],
                team=team,
                start=start,
                target=start + timedelta(days=150 + i * 10),
                progress=progress,
                customer=cust,
                deal_amount=amount,
                created=created,
                updated=EPOCH - timedelta(days=i % 6, hours=i),
                items=_items(i, code, name, cust, status),  # type: ignore[arg-type]
            )
        )
    return tuple(result)


def person(key: str) -> Person:
    return next(p for p in PEOPLE if p.key == key)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def iso_ms(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
