from django.apps import AppConfig


class InsightsConfig(AppConfig):
    """What a vendor sees across everything: the dashboard and pull analytics."""

    name = "insights"
    verbose_name = "Dashboard and analytics"
