from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Model
from factory.django import DjangoModelFactory

from companies.models import Company
from customers.models import Customer
from interactions.models import Interaction
from opportunities.models import Opportunity
from tasks.models import Task

PASSWORD = "correct horse battery staple"


class UserFactory(DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.django.Password(PASSWORD)


class ManagerFactory(UserFactory):
    """A member of "Sales manager" (created by a migration): sees and changes every record."""

    @factory.post_generation
    def sales_manager(self, create, extracted, **kwargs):
        if create:
            self.groups.add(Group.objects.get(name="Sales manager"))


class StaffFactory(UserFactory):
    is_staff = True
    is_superuser = True


class CustomerFactory(DjangoModelFactory):
    class Meta:
        model = Customer

    name = factory.Sequence(lambda n: f"Customer {n}")
    company_name = None
    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    phone = "13800138000"
    status = Customer.Status.ACTIVE

    @classmethod
    def _adjust_kwargs(cls, **kwargs):
        # ``company="ABC"`` is the company's name, as in the API; a Company instance links to it.
        if "company" in kwargs and not isinstance(kwargs["company"], Company):
            kwargs["company_name"] = kwargs.pop("company")
        return kwargs


# Customers' emails with capitals beyond ASCII (as stored, and written in other letter cases), which the database
# compares as its unique index does, by its own LOWER(): SQLite's lowers ASCII letters only, and PostgreSQL's
# lowers a word's last Σ to σ, where Python's lower() writes ς.
EMAILS_BEYOND_ASCII = {
    "umlaut": ("Info@ÖKO.example", "INFO@ÖKO.EXAMPLE"),
    "final sigma": ("Info@ΟΔΟΣ-net.example", "info@ΟΔΟΣ-NET.example"),
}


class InteractionFactory(DjangoModelFactory):
    class Meta:
        model = Interaction

    customer = factory.SubFactory(CustomerFactory)
    interaction_type = Interaction.Type.CALL
    notes = factory.Sequence(lambda n: f"Note {n}")


class OpportunityFactory(DjangoModelFactory):
    class Meta:
        model = Opportunity

    customer = factory.SubFactory(CustomerFactory)
    title = factory.Sequence(lambda n: f"Deal {n}")
    value = Decimal("1000.00")
    stage = Opportunity.Stage.LEAD


class TaskFactory(DjangoModelFactory):
    class Meta:
        model = Task

    customer = factory.SubFactory(CustomerFactory)
    title = factory.Sequence(lambda n: f"Follow up {n}")
    kind = Task.Kind.CALL
    assignee = factory.LazyAttribute(lambda task: task.customer.owner or ManagerFactory())


class CompanyFactory(DjangoModelFactory):
    class Meta:
        model = Company

    name = factory.Sequence(lambda n: f"Company {n}")


def member(username, group=None, time_zone=None, **fields):
    """A user named ``username`` in the role ``group`` ("Sales rep"...), with a time zone if given."""
    from core.models import UserPreferences

    user = UserFactory(username=username, **fields)
    if group:
        user.groups.add(Group.objects.get(name=group))
    if time_zone:
        UserPreferences.objects.create(user=user, time_zone=time_zone)
    return user


def fresh(value):
    """``value`` with every model instance in it, in dicts and lists at any depth, read anew from the database."""
    if isinstance(value, Model):
        return type(value)._base_manager.get(pk=value.pk)
    if isinstance(value, dict):
        return {key: fresh(item) for key, item in value.items()}
    if isinstance(value, list):
        return [fresh(item) for item in value]
    return value
