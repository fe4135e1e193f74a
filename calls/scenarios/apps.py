from django.apps import AppConfig


class ScenariosConfig(AppConfig):
    name = "calls.scenarios"
    # The label the migrations and the admin know the app by.
    label = "scenarios"
    verbose_name = "Scenarios"
