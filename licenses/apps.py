from django.apps import AppConfig


class LicensesConfig(AppConfig):
    name = "licenses"
    verbose_name = "Apps and licenses"

    def ready(self):
        from licenses import services  # noqa: F401 (registers the encrypted license ID column)
