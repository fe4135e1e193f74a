from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_email_case_insensitive_unique")]

    operations = [
        migrations.AddField(
            model_name="user",
            name="token_generation",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
    ]
