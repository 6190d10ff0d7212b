import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("licenses", "0005_channels_for_existing_apps")]

    operations = [
        migrations.AlterField(
            model_name="license",
            name="channel",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="licenses", to="licenses.channel"
            ),
        ),
    ]
