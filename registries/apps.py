from django.apps import AppConfig


class RegistriesConfig(AppConfig):
    name = "registries"
    verbose_name = "External registries"

    def ready(self):
        from registries import (
            checks,  # noqa: F401 (registers the key ring checks)
            services,  # noqa: F401 (registers the encrypted columns)
        )
