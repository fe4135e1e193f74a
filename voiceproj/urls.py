"""Top-level URL map: admin, REST API, allauth pages, web app, telephony webhooks."""

from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import URLPattern, URLResolver, include, path

from accounts.views import logout_everywhere
from calls import views as call_views

from .api import api
from .metrics import metrics

# The admin's own login form has no failed-attempt limit and no second factor:
# send it to the site's allauth login, which has both (allauth's documented way).
admin.site.login = secure_admin_login(admin.site.login)  # type: ignore[method-assign]

urlpatterns: list[URLPattern | URLResolver] = [
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("metrics", metrics, name="metrics"),
    path("accounts/logout/everywhere/", logout_everywhere, name="logout_everywhere"),
    path("accounts/", include("allauth.urls")),
    path("", call_views.home, name="home"),
    path("dashboard/", call_views.dashboard, name="dashboard"),
    path("agents/", include("agents.urls")),
    path("", include("calls.scenarios.urls")),
    path("telephony/", include("calls.telephony.urls")),
    path("", include("calls.urls")),
]

# daphne, unlike runserver, serves no static files: without this the admin and
# the /api/docs Swagger UI load unstyled and blank under `make run` (DEBUG only;
# production serves `collectstatic` output from a web server or CDN).
urlpatterns += staticfiles_urlpatterns()
