"""The column presets of other CRMs' exports: HubSpot and Pipedrive (``operations/switching.py`` imports them).

A preset names, for one kind of record, the export's headers (lower-cased) and the
field of ours each fills. Several headers may fill one field (HubSpot names a
contact's company both "Company Name" and "Associated Company"): the first
non-empty cell in the preset's order wins. Fields ending in ``_ref`` hold the
other system's id of a related record (a deal's contact), matched against the
``external_id`` the import gives every record: ``"<vendor>:<their id>"``.

The headers are those of the vendors' documented exports (HubSpot: "Export your
records"; Pipedrive: "Exporting data"); headers that are not listed are ignored
and reported, so a file with extra columns imports all the same.
"""

import re
from dataclasses import dataclass, field

from django.utils.translation import gettext_lazy as _

from customers.models import Customer
from opportunities.models import Opportunity

COMPANIES, CUSTOMERS, DEALS = "companies", "customers", "deals"
# The order of a run over several files: a contact names its company, a deal its contact.
KIND_ORDER = (COMPANIES, CUSTOMERS, DEALS)

# The fields a column may fill, per kind (the column mapping screen offers these).
FIELDS = {
    COMPANIES: ("external_id", "name", "domain", "website", "phone", "address", "industry", "notes", "owner"),
    CUSTOMERS: (
        "external_id",
        "name",
        "first_name",
        "last_name",
        "email",
        "phone",
        "company",
        "company_ref",
        "status",
        "tags",
        "owner",
    ),
    DEALS: (
        "external_id",
        "title",
        "value",
        "currency",
        "stage",
        "status",
        "expected_close_date",
        "customer",
        "customer_ref",
        "company",
        "company_ref",
        "owner",
        "lost_reason",
    ),
}
# Without these a row cannot make a record.
REQUIRED = {COMPANIES: ("name",), CUSTOMERS: ("name",), DEALS: ("title",)}


def value_key(text):
    """A vendor's value as compared with the maps: lower case, without spaces, hyphens or underscores."""
    return re.sub(r"[\s_\-]+", "", (text or "").strip().lower())


@dataclass(frozen=True)
class Preset:
    vendor: str  # "hubspot", "pipedrive"; "" for a mapping typed in the admin
    kind: str
    label: str
    columns: dict  # header (lower-cased) -> field; several headers may name one field
    stages: dict = field(default_factory=dict)  # value_key(stage) -> Opportunity.Stage
    statuses: dict = field(default_factory=dict)  # value_key(status) -> Customer.Status / "won"/"lost"

    @property
    def id_prefix(self):
        """What the vendor's ids are prefixed with in ``external_id``."""
        return f"{self.vendor}:" if self.vendor else ""


S, St = Opportunity.Stage, Customer.Status

HUBSPOT_LIFECYCLE = {
    "subscriber": St.LEAD,
    "lead": St.LEAD,
    "marketingqualifiedlead": St.LEAD,
    "salesqualifiedlead": St.LEAD,
    "opportunity": St.PROSPECT,
    "customer": St.ACTIVE,
    "evangelist": St.ACTIVE,
    "other": St.INACTIVE,
    # The same stages as HubSpot's Chinese interface exports them.
    "订阅者": St.LEAD,
    "潜在客户": St.LEAD,
    "营销认可的潜在客户": St.LEAD,
    "销售认可的潜在客户": St.LEAD,
    "商机": St.PROSPECT,
    "客户": St.ACTIVE,
    "推广者": St.ACTIVE,
    "其他": St.INACTIVE,
}
# HubSpot's default sales pipeline, by label and by internal value.
HUBSPOT_STAGES = {
    "appointmentscheduled": S.LEAD,
    "qualifiedtobuy": S.LEAD,
    "presentationscheduled": S.PROPOSAL,
    "decisionmakerboughtin": S.NEGOTIATION,
    "contractsent": S.NEGOTIATION,
    "closedwon": S.CLOSED,
    "closedlost": S.LOST,
    "已安排预约": S.LEAD,
    "有资格购买": S.LEAD,
    "已安排演示": S.PROPOSAL,
    "决策者已认可": S.NEGOTIATION,
    "已发送合同": S.NEGOTIATION,
    "成交": S.CLOSED,
    "丢单": S.LOST,
}
# Pipedrive's default pipeline; "Deal - Status" (won, lost) overrides the stage.
PIPEDRIVE_STAGES = {
    "leadin": S.LEAD,
    "contactmade": S.LEAD,
    "qualified": S.LEAD,
    "needsdefined": S.PROPOSAL,
    "demoscheduled": S.PROPOSAL,
    "proposalmade": S.PROPOSAL,
    "negotiationsstarted": S.NEGOTIATION,
}
PIPEDRIVE_STATUSES = {"open": "", "won": S.CLOSED, "lost": S.LOST, "deleted": "deleted"}

HUBSPOT = {
    COMPANIES: Preset(
        "hubspot",
        COMPANIES,
        "HubSpot companies",
        {
            "record id": "external_id",
            "company id": "external_id",
            "company name": "name",
            "name": "name",
            "company domain name": "domain",
            "website url": "website",
            "phone number": "phone",
            "street address": "address",
            "industry": "industry",
            "description": "notes",
            "company owner": "owner",
        },
    ),
    CUSTOMERS: Preset(
        "hubspot",
        CUSTOMERS,
        "HubSpot contacts",
        {
            "record id": "external_id",
            "contact id": "external_id",
            "first name": "first_name",
            "last name": "last_name",
            "email": "email",
            "email address": "email",
            "phone number": "phone",
            "mobile phone number": "phone",
            "associated company id": "company_ref",
            "associated company ids": "company_ref",
            "associated company ids (primary)": "company_ref",
            "company name": "company",
            "associated company": "company",
            "lifecycle stage": "status",
            "contact owner": "owner",
        },
        statuses=HUBSPOT_LIFECYCLE,
    ),
    DEALS: Preset(
        "hubspot",
        DEALS,
        "HubSpot deals",
        {
            "record id": "external_id",
            "deal id": "external_id",
            "deal name": "title",
            "amount": "value",
            "currency": "currency",
            "deal stage": "stage",
            "close date": "expected_close_date",
            "associated contact ids": "customer_ref",
            "associated contact id": "customer_ref",
            "associated contact": "customer",
            "associated company ids": "company_ref",
            "associated company id": "company_ref",
            "associated company": "company",
            "deal owner": "owner",
            "closed lost reason": "lost_reason",
        },
        stages=HUBSPOT_STAGES,
    ),
}

PIPEDRIVE = {
    COMPANIES: Preset(
        "pipedrive",
        COMPANIES,
        "Pipedrive organizations",
        {
            "organization - id": "external_id",
            "organization - name": "name",
            "organization - address": "address",
            "organization - website": "website",
            "organization - owner": "owner",
        },
    ),
    CUSTOMERS: Preset(
        "pipedrive",
        CUSTOMERS,
        "Pipedrive persons",
        {
            "person - id": "external_id",
            "person - name": "name",
            "person - first name": "first_name",
            "person - last name": "last_name",
            "person - email": "email",
            "person - email - work": "email",
            "person - email - home": "email",
            "person - phone": "phone",
            "person - phone - work": "phone",
            "person - phone - mobile": "phone",
            "person - organization id": "company_ref",
            "person - organization": "company",
            "person - owner": "owner",
        },
    ),
    DEALS: Preset(
        "pipedrive",
        DEALS,
        "Pipedrive deals",
        {
            "deal - id": "external_id",
            "deal - title": "title",
            "deal - value": "value",
            "deal - currency": "currency",
            "deal - stage": "stage",
            "deal - status": "status",
            "deal - expected close date": "expected_close_date",
            "deal - person id": "customer_ref",
            "deal - contact person id": "customer_ref",
            "deal - person": "customer",
            "deal - contact person": "customer",
            "deal - organization id": "company_ref",
            "deal - organization": "company",
            "deal - owner": "owner",
            "deal - lost reason": "lost_reason",
            "lost reason": "lost_reason",
        },
        stages=PIPEDRIVE_STAGES,
        statuses=PIPEDRIVE_STATUSES,
    ),
}

VENDORS = {"hubspot": HUBSPOT, "pipedrive": PIPEDRIVE}


def detect(vendor, headers):
    """The preset of ``vendor`` that a file with these headers (lower-cased) was exported with, or None."""
    presets = VENDORS[vendor]
    found = set(headers)
    if vendor == "pipedrive":
        prefixes = {"organization - ": COMPANIES, "person - ": CUSTOMERS, "deal - ": DEALS}
        counts = {kind: sum(header.startswith(prefix) for header in found) for prefix, kind in prefixes.items()}
        best = max(counts, key=counts.get)
        return presets[best] if counts[best] else None
    # HubSpot's headers carry no prefix: a deal has a name, a contact an email or a first name.
    if "deal name" in found:
        return presets[DEALS]
    if found & {"first name", "last name", "email", "email address"}:
        return presets[CUSTOMERS]
    if found & {"company name", "name", "company domain name"}:
        return presets[COMPANIES]
    return None


def custom_preset(kind, mapping):
    """A preset from a mapping typed in the admin: {header (lower-cased): field}; values are ours."""
    return Preset("", kind, "", {header: name for header, name in mapping.items() if name})


# The fields as the column mapping screen names them.
FIELD_LABELS = {
    "external_id": _("Id in the other system (external_id)"),
    "name": _("Name"),
    "first_name": _("First name"),
    "last_name": _("Last name"),
    "email": _("Email"),
    "phone": _("Phone"),
    "domain": _("Domain"),
    "website": _("Website"),
    "address": _("Address"),
    "industry": _("Industry"),
    "notes": _("Notes"),
    "company": _("Company (name)"),
    "company_ref": _("Company (id in the other system)"),
    "customer": _("Person (name or email)"),
    "customer_ref": _("Person (id in the other system)"),
    "status": _("Status"),
    "tags": _("Tags"),
    "owner": _("Owner (email or username)"),
    "title": _("Title"),
    "value": _("Amount"),
    "currency": _("Currency"),
    "stage": _("Stage"),
    "expected_close_date": _("Expected close date"),
    "lost_reason": _("Lost reason"),
}


def guess_mapping(kind, headers, aliases=()):
    """{header (lower-cased): field} as a first guess: a field's own name, then ``aliases`` (dicts of
    header -> field, such as the import commands' columns), then the vendors' headers; each field once."""
    allowed = set(FIELDS[kind])
    known = {name: name for name in allowed}
    for table in (*aliases, *(presets[kind].columns for presets in VENDORS.values())):
        for header, name in table.items():
            if name in allowed:
                known.setdefault(header, name)
    mapping, taken = {}, set()
    for header in headers:
        name = known.get(header, "")
        if name in taken:
            name = ""
        mapping[header] = name
        taken.add(name)
    return mapping
