"""The root Ninja API mounted at ``/api/``; each app contributes one router."""

from ninja import NinjaAPI

api = NinjaAPI(title="Voice Agent Platform API", version="1.0.0", urls_namespace="api")
