from django.apps import AppConfig


class RegistriesConfig(AppConfig):
    name = "registries"
    verbose_name = "External registries"

    def ready(self):
        from licenses.signals import release_created
        from registries import (
            checks,  # noqa: F401 (registers the key ring checks)
            release_resolve,
            services,  # noqa: F401 (registers the encrypted columns)
        )

        release_created.connect(release_resolve.on_release_created, dispatch_uid="registries.release_resolve")
