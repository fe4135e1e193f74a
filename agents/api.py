"""``/api/agents``: an operator's agents (list, create, retrieve, replace, update,
delete) and each agent's knowledge entries (``/api/agents/{id}/knowledge``).

Every query is scoped to the authenticated owner, so another user's agent (and
its knowledge) is a 404.
"""

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Query, Router, Status
from ninja.errors import HttpError
from ninja.pagination import paginate

from accounts.auth import current_user, jwt_auth
from calls.models import CallSession
from voiceproj.errors import DbId, ErrorOut, ValidationErrorOut, from_django
from voiceproj.pagination import Pages

from .models import Agent, KnowledgeEntry
from .schemas import (
    AgentFilters,
    AgentIn,
    AgentOut,
    AgentPatch,
    KnowledgeIn,
    KnowledgeOut,
    routes_json,
)
from .tools import keep_secrets

router = Router(tags=["agents"], auth=jwt_auth)


def owned_agent(request: HttpRequest, agent_id: int) -> Agent:
    return get_object_or_404(Agent, pk=agent_id, owner=current_user(request))


def save_validated(agent: Agent, fields: dict) -> Agent:
    """Apply ``fields``, run the model's validators (422 per field), save.

    Tools keep only the keys sent (an absent ``method`` takes the model's
    default rather than a null), and a header sent back masked keeps its
    stored secret.
    """
    if fields.get("tools") is not None:
        sent = [{k: v for k, v in tool.items() if v is not None} for tool in fields["tools"]]
        fields["tools"] = keep_secrets(sent, agent.tools)
    if "routes" in fields:
        fields["routes"] = routes_json(fields["routes"])
    for name, value in fields.items():
        setattr(agent, name, value)
    try:
        agent.full_clean(exclude=["owner"])
    except ValidationError as exc:
        raise from_django(exc) from exc
    agent.save()
    return agent


def save_entry(entry: KnowledgeEntry, payload: KnowledgeIn) -> KnowledgeEntry:
    """Apply ``payload`` to a knowledge entry, validate (422 per field), save with its passages."""
    entry.title, entry.content = payload.title, payload.content
    try:
        entry.full_clean(exclude=["agent"])
    except ValidationError as exc:
        raise from_django(exc) from exc
    entry.save()
    return entry


@router.get("", response=list[AgentOut])
@paginate(Pages, page_size=20)
def list_agents(request: HttpRequest, filters: Query[AgentFilters]) -> QuerySet[Agent]:
    """The user's agents, newest first; ``search`` matches name or description."""
    agents = Agent.objects.filter(owner=current_user(request))
    term = filters.search.strip()
    if term:
        agents = agents.filter(Q(name__icontains=term) | Q(description__icontains=term))
    return agents


@router.post("", response={201: AgentOut, 422: ValidationErrorOut})
def create_agent(request: HttpRequest, payload: AgentIn):  # type: ignore[no-untyped-def]
    return Status(201, save_validated(Agent(owner=current_user(request)), payload.dict()))


@router.get("/{agent_id}", response={200: AgentOut, 404: ErrorOut})
def get_agent(request: HttpRequest, agent_id: DbId) -> Agent:
    return owned_agent(request, agent_id)


@router.put("/{agent_id}", response={200: AgentOut, 404: ErrorOut, 422: ValidationErrorOut})
def replace_agent(request: HttpRequest, agent_id: DbId, payload: AgentIn) -> Agent:
    """Replace every field; omitted fields go back to their defaults."""
    return save_validated(owned_agent(request, agent_id), payload.dict())


@router.patch("/{agent_id}", response={200: AgentOut, 404: ErrorOut, 422: ValidationErrorOut})
def update_agent(request: HttpRequest, agent_id: DbId, payload: AgentPatch) -> Agent:
    """Change only the fields sent."""
    return save_validated(owned_agent(request, agent_id), payload.dict(exclude_unset=True))


@router.delete("/{agent_id}", response={204: None, 404: ErrorOut, 409: ErrorOut})
def delete_agent(request: HttpRequest, agent_id: DbId):  # type: ignore[no-untyped-def]
    """Delete the agent and, with it, its ended call sessions and their turns.

    Refused (409) while a call is active: the live conversation would lose its record.
    """
    agent = owned_agent(request, agent_id)
    if agent.sessions.filter(status=CallSession.Status.ACTIVE).exists():
        raise HttpError(409, "This agent has an active call; end it before deleting the agent.")
    agent.delete()
    return Status(204, None)


# --- knowledge -----------------------------------------------------------------


def owned_entry(request: HttpRequest, agent_id: int, entry_id: int) -> KnowledgeEntry:
    return get_object_or_404(
        KnowledgeEntry, pk=entry_id, agent_id=agent_id, agent__owner=current_user(request)
    )


@router.get("/{agent_id}/knowledge", response={200: list[KnowledgeOut], 404: ErrorOut})
def list_knowledge(request: HttpRequest, agent_id: DbId) -> QuerySet[KnowledgeEntry]:
    """The agent's knowledge entries, oldest first."""
    return owned_agent(request, agent_id).knowledge.all()


@router.post(
    "/{agent_id}/knowledge",
    response={201: KnowledgeOut, 404: ErrorOut, 422: ValidationErrorOut},
)
def create_knowledge(request: HttpRequest, agent_id: DbId, payload: KnowledgeIn):  # type: ignore[no-untyped-def]
    """Add an entry; its content is split into passages for retrieval."""
    entry = KnowledgeEntry(agent=owned_agent(request, agent_id))
    return Status(201, save_entry(entry, payload))


@router.get("/{agent_id}/knowledge/{entry_id}", response={200: KnowledgeOut, 404: ErrorOut})
def get_knowledge(request: HttpRequest, agent_id: DbId, entry_id: DbId) -> KnowledgeEntry:
    return owned_entry(request, agent_id, entry_id)


@router.put(
    "/{agent_id}/knowledge/{entry_id}",
    response={200: KnowledgeOut, 404: ErrorOut, 422: ValidationErrorOut},
)
def replace_knowledge(
    request: HttpRequest, agent_id: DbId, entry_id: DbId, payload: KnowledgeIn
) -> KnowledgeEntry:
    """Replace the title and content; the passages are split again."""
    return save_entry(owned_entry(request, agent_id, entry_id), payload)


@router.delete("/{agent_id}/knowledge/{entry_id}", response={204: None, 404: ErrorOut})
def delete_knowledge(request: HttpRequest, agent_id: DbId, entry_id: DbId):  # type: ignore[no-untyped-def]
    owned_entry(request, agent_id, entry_id).delete()
    return Status(204, None)
