from django_filters import rest_framework as filters

from .models import Delivery


class DeliveryFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=Delivery.Status.choices)

    class Meta:
        model = Delivery
        fields = ["status"]
