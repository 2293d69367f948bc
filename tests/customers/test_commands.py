from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command

from customers.models import Customer
from interactions.models import Interaction
from opportunities.models import Opportunity
from tests.factories import CustomerFactory, UserFactory


def run_init_demo(capsys):
    call_command("init_demo")
    return capsys.readouterr().out


def test_init_demo_on_an_empty_database_loads_demo_and_prints_a_working_password(db, capsys):
    out = run_init_demo(capsys)
    assert Customer.objects.filter(name="张三", company="ABC科技").exists()
    assert Interaction.objects.exists() and Opportunity.objects.exists()
    password = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.strip().startswith("password:"))
    admin = authenticate(username="admin", password=password)
    assert admin is not None and admin.is_superuser and admin.is_staff


def test_init_demo_changes_nothing_on_a_database_in_use(db, capsys):
    UserFactory(username="existing")
    CustomerFactory(name="Real customer")
    out = run_init_demo(capsys)
    assert "password" not in out
    assert list(Customer.objects.values_list("name", flat=True)) == ["Real customer"]
    assert list(get_user_model().objects.values_list("username", flat=True)) == ["existing"]


def test_init_demo_twice_prints_the_password_only_once(db, capsys):
    first = run_init_demo(capsys)
    second = run_init_demo(capsys)
    assert "password:" in first
    assert "password:" not in second
    assert get_user_model().objects.count() == 1
    assert Customer.objects.count() == 10


def test_demo_fixture_loads_on_an_empty_database(db):
    call_command("loaddata", "demo", verbosity=0)
    assert Customer.objects.count() == 10
    assert Opportunity.objects.filter(stage=Opportunity.Stage.CLOSED).exists()
