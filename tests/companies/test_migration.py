"""The data migration that creates the companies from the customers' company texts, forwards and backwards."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from companies.search import SEARCH as COMPANY_SEARCH
from customers.search import SEARCH as CUSTOMER_SEARCH
from interactions.search import SEARCH as INTERACTION_SEARCH
from opportunities.search import SEARCH as OPPORTUNITY_SEARCH
from tasks import customer_name as task_customer_name
from tasks.search import SEARCH as TASK_SEARCH

BEFORE = [("customers", "0007_customer_company"), ("companies", "0003_staff_group_permissions")]
AFTER_LINK = [("customers", "0008_link_companies"), ("opportunities", "0006_opportunity_company")]

# (name, company text as typed, owner)
PEOPLE = [
    ("张三", "ABC科技", "rep_a"),
    ("李四", " abc科技 ", "rep_a"),
    ("王五", "ABC科技", "rep_a"),
    ("赵六", "华为技术有限公司", "rep_a"),
    ("钱七", "华为技术有限公司\u3000", "rep_b"),  # an ideographic space after it
    ("Ann", "Acme  Inc", "rep_b"),
    ("Bob", "ACME inc", "rep_b"),
    ("Cid", "acme inc ", "rep_b"),
    ("Dee", "Globex", None),
    ("Eve", "   ", "rep_a"),
    ("Fay", None, "rep_a"),
    ("Gus", "", None),
]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def leaves():
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()


def to_latest():
    """Back to the latest schema for the tests that follow, with every app's SQLite triggers (search
    indexes, the tasks' customer names): a table remade by a migration loses them (``migrate`` heals
    that after it runs; the executor alone does not)."""
    apps = migrate(leaves())
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            for search in (CUSTOMER_SEARCH, COMPANY_SEARCH, INTERACTION_SEARCH, OPPORTUNITY_SEARCH, TASK_SEARCH):
                search.ensure_sqlite_index(cursor)
        task_customer_name.heal_after_migrate(connection.alias, "0005_task_customer_name")
    return apps


@pytest.fixture
def at_0007(transactional_db):
    yield migrate(BEFORE)
    to_latest()


def seed(apps):
    User = apps.get_model("auth", "User")
    Customer = apps.get_model("customers", "Customer")
    Opportunity = apps.get_model("opportunities", "Opportunity")
    users = {name: User.objects.create(username=name) for name in ("rep_a", "rep_b")}
    people = {}
    for name, text, owner in PEOPLE:
        people[name] = Customer.objects.create(name=name, company_name=text, owner=users.get(owner), status="active")
    Opportunity.objects.create(customer=people["Ann"], title="Deal", value=10, stage="lead", probability=10)
    return people


def test_forwards_groups_case_and_spacing_variants_and_backwards_restores_the_texts(at_0007):
    # On an empty table, forwards creates nothing (and back again, for the customers typed below).
    apps = migrate(AFTER_LINK)
    assert not apps.get_model("companies", "Company").objects.exists()
    people = seed(migrate(BEFORE))

    apps = migrate(leaves())

    Company = apps.get_model("companies", "Company")
    Customer = apps.get_model("customers", "Customer")
    companies = {c.name: c for c in Company.objects.all()}
    assert set(companies) == {"ABC科技", "华为技术有限公司", "Acme Inc", "Globex"}
    assert {c.name_key for c in companies.values()} == {"abc科技", "华为技术有限公司", "acme inc", "globex"}
    linked = {c.name: (c.company.name if c.company else None, c.company_name) for c in Customer.objects.all()}
    assert linked == {
        "张三": ("ABC科技", "ABC科技"),
        "李四": ("ABC科技", "ABC科技"),
        "王五": ("ABC科技", "ABC科技"),
        "赵六": ("华为技术有限公司", "华为技术有限公司"),
        "钱七": ("华为技术有限公司", "华为技术有限公司"),
        # Three spellings, one each: the earliest customer's wins, spaces collapsed.
        "Ann": ("Acme Inc", "Acme Inc"),
        "Bob": ("Acme Inc", "Acme Inc"),
        "Cid": ("Acme Inc", "Acme Inc"),
        "Dee": ("Globex", "Globex"),
        "Eve": (None, None),
        "Fay": (None, None),
        "Gus": (None, None),
    }
    # Owned by the one owner of its people; by no one when they have several (or none).
    User = apps.get_model("auth", "User")
    rep_a = User.objects.get(username="rep_a")
    assert companies["ABC科技"].owner_id == rep_a.pk
    assert companies["华为技术有限公司"].owner_id is None
    assert companies["Globex"].owner_id is None
    # Each company has its "created" entry; each linked customer an entry of the change.
    HistoricalCompany = apps.get_model("companies", "HistoricalCompany")
    assert HistoricalCompany.objects.filter(history_type="+").count() == 4
    HistoricalCustomer = apps.get_model("customers", "HistoricalCustomer")
    latest = HistoricalCustomer.objects.filter(id=people["李四"].pk, history_type="~").get()
    assert (latest.company_id, latest.company_name) == (companies["ABC科技"].pk, "ABC科技")
    # The opportunity is with its customer's company.
    Opportunity = apps.get_model("opportunities", "Opportunity")
    assert Opportunity.objects.get().company_id == companies["Acme Inc"].pk

    # A company renamed since: backwards, its people carry its current name.
    Company.objects.filter(pk=companies["Globex"].pk).update(name="Globex Corp", name_key="globex corp")

    apps = migrate(BEFORE)

    Customer = apps.get_model("customers", "Customer")
    texts = dict(Customer.objects.values_list("name", "company_name"))
    assert texts == {
        "张三": "ABC科技",
        "李四": "ABC科技",
        "王五": "ABC科技",
        "赵六": "华为技术有限公司",
        "钱七": "华为技术有限公司",
        "Ann": "Acme Inc",
        "Bob": "Acme Inc",
        "Cid": "Acme Inc",
        "Dee": "Globex Corp",
        "Eve": None,
        "Fay": None,
        "Gus": None,
    }
    assert not Customer.objects.filter(company__isnull=False).exists()
    # And to the schema before companies: the text column as it was, without the link.
    apps = migrate([("customers", "0006_customer_external_id")])
    Customer = apps.get_model("customers", "Customer")
    assert "company_id" not in {f.column for f in Customer._meta.concrete_fields}
    assert dict(Customer.objects.values_list("name", "company")) == texts

    # Forwards again reuses the companies that are still there instead of making twins.
    apps = migrate(leaves())
    Company = apps.get_model("companies", "Company")
    assert Company.objects.count() == 4
    assert apps.get_model("customers", "Customer").objects.filter(company__name="Globex Corp").count() == 1
