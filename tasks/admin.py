from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import F
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _

from core import access
from core.admin.base import CRMModelAdmin, CRMModelForm
from core.admin.display import cut_column
from core.admin.inlines import CRMTabularInline
from core.admin.owners import owner_filter
from core.rowlocks import lock_keys
from customers.admin import (
    QuickAction,
    QuickForm,
    customer_header_item,
    customer_inline,
    customer_quick_action,
    date_input,
)
from customers.search import SEARCH as CUSTOMER_SEARCH
from opportunities.admin import opportunity_inline
from opportunities.models import Opportunity

from .models import Task, date_only_due_at, zone_of
from .my_day import MyDay
from .resources import TaskResource
from .search import SEARCH
from .serializers import TEXT_MAX_LENGTH, TaskSerializer, may_be_assigned
from .windows import WINDOWS, condition, day_of, start_of


class DueAtField(forms.SplitDateTimeField):
    """A task's due date and time; a date-only task's is its date, at the start of that day, whatever time is
    shown beside it (00:00 does not exist in every zone on every day: Cairo's clocks go from 00:00 to 01:00
    on some)."""

    # Set on a bound form whose date-only box is ticked (``DueDateForm``); a timed task's time is read as it is.
    date_alone = False

    def compress(self, data_list):
        if self.date_alone and data_list and data_list[0]:
            return start_of(data_list[0], timezone.get_current_timezone())
        return super().compress(data_list)


class DueDateForm(CRMModelForm):
    """A task's form whose date-only due date reads as the date it is due on, whoever is looking.

    Shown as 00:00 of that date in the user's own zone (the admin's), and taken back as 00:00 of the date
    entered in the assignee's zone, as the API stores it (``Task.due_date``).
    """

    class Meta:
        field_classes = {"due_at": DueAtField}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        day = None if self.instance._state.adding else self.instance.due_date
        if "due_at" in self.fields and day is not None:
            self.initial["due_at"] = start_of(day, timezone.get_current_timezone())
        if isinstance(self.fields.get("due_at"), DueAtField):
            self.fields["due_at"].date_alone = self.is_bound and self._posted_date_only()

    def _posted_date_only(self):
        field = self.fields.get("due_is_date_only")
        name = self.add_prefix("due_is_date_only")
        return field is not None and field.clean(field.widget.value_from_datadict(self.data, self.files, name))

    def _post_clean(self):
        super()._post_clean()
        task = self.instance
        if task.due_is_date_only and task.due_at is not None and task.assignee_id is not None:
            task.due_at = date_only_due_at(timezone.localtime(task.due_at).date(), zone_of(task.assignee_id))


def due_day(task):
    """The day ``task`` is due on: a date-only task's own date, a timed task's in the current time zone."""
    return task.due_date if task.due_is_date_only else timezone.localtime(task.due_at).date()


class TaskForm(DueDateForm):
    """A task's form, under the API's rules: the deal is one of the customer's; the assignee a manager or a rep."""

    def clean(self):
        cleaned = super().clean()
        customer = cleaned.get("customer", getattr(self.instance, "customer", None))
        opportunity = cleaned.get("opportunity")
        if opportunity is not None and customer is not None and opportunity.customer_id != customer.pk:
            self.add_error("opportunity", _("The opportunity belongs to another customer."))
        assignee = cleaned.get("assignee")
        if assignee is not None and not may_be_assigned(assignee):
            self.add_error("assignee", _("A task goes to an active manager or rep."))
        return cleaned


class InlineTaskForm(DueDateForm):
    """A task added from its customer's or deal's page: assigned to, and created by, whoever adds it."""

    user = None  # set per request by the inline's get_formset

    def _post_clean(self):
        task = self.instance
        if task._state.adding and self.has_changed():
            if task.assignee_id is None:
                task.assignee = self.user
            task.created_by = self.user
            if task.customer_id is None and task.opportunity_id is not None:
                task.customer_id = task.opportunity.customer_id
        super()._post_clean()


class TaskInlineBase(CRMTabularInline):
    model = Task
    form = InlineTaskForm
    extra = 0
    fields = ["title", "kind", "due_at", "priority", "assignee_name", "done_at"]
    readonly_fields = ["assignee_name", "done_at"]
    ordering = ["done_at", "due_at", "id"]
    show_change_link = True

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("assignee")

    def get_formset(self, request, obj=None, **kwargs):
        kwargs["form"] = type("InlineTaskForm", (self.form,), {"user": request.user})
        return super().get_formset(request, obj, **kwargs)

    @admin.display(description=_("assignee"))
    def assignee_name(self, task):
        return task.assignee.get_username() if task.assignee_id else ""


@customer_inline
class CustomerTaskInline(TaskInlineBase):
    fk_name = "customer"


@opportunity_inline
class OpportunityTaskInline(TaskInlineBase):
    fk_name = "opportunity"


@customer_header_item(_("Next task"))
def next_task(request, customer):
    """The customer's earliest open task (undated ones last), as "title (due)"."""
    task = (
        access.scope(Task.objects.filter(customer=customer, done_at__isnull=True), request.user)
        .order_by(F("due_at").asc(nulls_last=True), "id")
        .select_related("assignee__crm_preferences")
        .first()
    )
    if task is None:
        return None
    return f"{task.title} ({date_format(due_day(task), 'SHORT_DATE_FORMAT')})" if task.due_at else task.title


class AddTaskForm(QuickForm):
    title = forms.CharField(label=_("title"), max_length=200)
    kind = forms.ChoiceField(label=_("kind"), choices=Task.Kind.choices, initial=Task.Kind.CALL)
    due = forms.DateField(label=_("due on"), required=False, widget=date_input())
    opportunity = forms.ModelChoiceField(label=_("opportunity"), queryset=Opportunity.objects.none(), required=False)
    notes = forms.CharField(
        label=_("notes"), required=False, max_length=TEXT_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["opportunity"].queryset = Opportunity.objects.filter(
            customer=self.customer, stage__in=Opportunity.OPEN_STAGES
        ).order_by("-created_at", "-id")


def add_task(request, customer, cleaned):
    """The tasks API's create: its serializer; assigned to, and created by, the writer."""
    data = {"customer_id": customer.pk, "title": cleaned["title"], "kind": cleaned["kind"], "notes": cleaned["notes"]}
    if cleaned.get("due") is not None:
        data["due_at"] = cleaned["due"].isoformat()
    if cleaned.get("opportunity") is not None:
        data["opportunity_id"] = cleaned["opportunity"].pk
        # Held before the serializer reads it, after its customer (held by the quick action), as the customer's
        # delete takes them: one deleted by someone else meanwhile is read as gone, an error on its field, rather
        # than failing the save's commit. With the lock of the task's foreign key (``FOR KEY SHARE``): a change of
        # the deal meanwhile is not waited for.
        lock_keys(Opportunity._base_manager.filter(pk=data["opportunity_id"]))
    serializer = TaskSerializer(data=data, context={"request": request})
    serializer.is_valid(raise_exception=True)
    return serializer.save(created_by=request.user, assignee=request.user)


customer_quick_action(
    QuickAction(
        name="task",
        label=_("Add a task"),
        model=Task,
        form=AddTaskForm,
        save=add_task,
        done=_("Task “%(record)s” added."),
    )
)


class DueWindowFilter(admin.SimpleListFilter):
    title = _("due")
    parameter_name = "due"
    LABELS = {"overdue": _("Overdue"), "today": _("Today"), "upcoming": _("Upcoming"), "none": _("No due date")}

    def lookups(self, request, model_admin):
        return [(window, self.LABELS[window]) for window in WINDOWS]

    def queryset(self, request, queryset):
        if self.value() in WINDOWS:
            return queryset.filter(condition(self.value(), day_of(request.user)))
        return queryset


class DoneFilter(admin.SimpleListFilter):
    title = _("done")
    parameter_name = "done"

    def lookups(self, request, model_admin):
        return [("no", _("Open")), ("yes", _("Done"))]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(done_at__isnull=self.value() == "no")
        return queryset


@admin.register(Task)
class TaskAdmin(MyDay, CRMModelAdmin):
    resource_classes = [TaskResource]
    form = TaskForm
    change_list_template = "admin/tasks/task/change_list.html"
    list_display = ["title_cut", "customer_cut", "kind", "assignee", "due", "priority", "done_at"]
    title_cut = cut_column("title", _("title"), "title", size="wide")
    # Sorted by the name the task carries (tasks/customer_name.py), which an index serves.
    customer_cut = cut_column("customer.name", _("customer"), "customer_name", size="narrow")
    list_filter = [
        owner_filter("assignee", _("assignee"), "assignee", offers_none=False),
        DueWindowFilter,
        DoneFilter,
        "kind",
        "priority",
    ]
    # Each word in the title, the notes, the customer's name or company: through the indexes of the tasks'
    # and the customers' own search (core/search.py).
    search_fields = ["title", "notes", "customer__name", "customer__company_name"]
    text_search = SEARCH
    text_search_related = [("customer", CUSTOMER_SEARCH, ["name", "company_name"])]
    # The assignee's preferences: the time zone a date-only task's date is read in.
    list_select_related = ["customer", "assignee__crm_preferences"]
    autocomplete_fields = ["customer", "opportunity"]
    # Locked before the task when its page is posted, as their deletes lock them (``CRMModelAdmin.lock_parents``).
    parents_locked_first = ["customer", "opportunity"]
    ordering = ["done_at", "due_at", "id"]
    readonly_fields = ["done_at", "created_at", "updated_at"]
    fields = [
        "title",
        "kind",
        "customer",
        "opportunity",
        "assignee",
        "due_at",
        "due_is_date_only",
        "priority",
        "reminder_lead_minutes",
        "notes",
        "outcome",
        "done_at",
        "created_at",
        "updated_at",
    ]

    @admin.display(description=_("due at"), ordering="due_at")
    def due(self, task):
        """A date-only task's date (whoever is looking), a timed task's date and time in the user's zone."""
        if task.due_at is None:
            return self.get_empty_value_display()
        if task.due_is_date_only:
            return date_format(task.due_date, "DATE_FORMAT")
        return date_format(timezone.localtime(task.due_at), "DATETIME_FORMAT")

    def get_changeform_initial_data(self, request):
        return {"assignee": request.user.pk, **super().get_changeform_initial_data(request)}

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "assignee":
            kwargs["queryset"] = get_user_model().objects.filter(is_active=True).order_by("username")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        # A rep assigned a task on a customer of another book sees the task, not the customer.
        if obj is not None and not access.sees_everything(request.user) and obj.customer.owner_id != request.user.pk:
            fields += ["customer", "opportunity"]
        return fields
