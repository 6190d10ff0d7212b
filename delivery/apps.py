from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    """The customer-facing layer: token service, registry proxy, pull log, pull secrets."""

    name = "delivery"
    verbose_name = "Delivery to customers"

    def ready(self):
        from delivery import routing

        routing.connect_signals()
