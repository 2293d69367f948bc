from django.utils.translation import gettext_lazy as _

from customers.resources import CustomerChildResource

from .models import Task
from .serializers import TaskSerializer


class TaskResource(CustomerChildResource):
    serializer_class = TaskSerializer
    required_columns = ("customer", "title")
    serializer_fields = {"customer": "customer_id", "assignee": "assignee_id"}

    class Meta:
        model = Task
        fields = (
            "id",
            "customer",
            "customer_name",
            "title",
            "kind",
            "assignee",
            "due_at",
            "due_is_date_only",
            "priority",
            "notes",
            "done_at",
            "created_at",
        )
        export_order = fields
        name = _("Tasks")

    def before_save_instance(self, instance, row, **kwargs):
        super().before_save_instance(instance, row, **kwargs)
        # Assigned to whoever imports it, unless the row names someone.
        if instance.assignee_id is None and self.user is not None:
            instance.assignee = self.user
