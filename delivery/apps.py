from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    """The customer-facing layer: token service, registry proxy, pull log, pull secrets,
    install kits and air-gap bundles."""

    name = "delivery"
    verbose_name = "Delivery to customers"

    def ready(self):
        from delivery import routing
        from delivery.airgap import bundles
        from delivery.proxy import cache
        from licenses import signals

        routing.connect_signals()
        cache.connect_signals()
        signals.release_promoted.connect(bundles.on_release_promoted, dispatch_uid="airgap-on-promoted")
        signals.release_resolved.connect(bundles.on_release_resolved, dispatch_uid="airgap-on-resolved")
