from django.db import connection
from django.db.models import Value
from django.db.models.functions import Lower

from customers.models import Customer
from tests.factories import CustomerFactory


def test_create_rejects_an_email_that_differs_only_in_case(api, db):
    CustomerFactory(email="Alice@Example.com")
    response = api.post("/api/customers", {"name": "Alice again", "email": "alice@EXAMPLE.com"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["email"] == ["A customer with this email already exists."]
    assert Customer.objects.count() == 1


def test_the_email_check_is_an_index_lookup(db):
    """The clash check compares LOWER(email) like the unique index does, so it never scans the table."""
    queryset = Customer.objects.alias(email_lower=Lower("email")).filter(email_lower=Lower(Value("a@b.c")))
    sql, params = queryset.order_by().query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {sql}", params)
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        plan = " ".join(str(row[-1]) for row in cursor.fetchall())
    assert "customer_email_ci_unique" in plan
