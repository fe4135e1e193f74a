"""The lookup_knowledge built-in says what the knowledge says, as a knowledge route does."""

import pytest

from agents.models import KnowledgeEntry
from workers.tools.builtins import lookup_knowledge
from workers.tools.net import ToolFailure


@pytest.mark.django_db
def test_lookup_knowledge_answers_from_the_agents_own_entries(agent) -> None:
    KnowledgeEntry.objects.create(
        agent=agent,
        title="Opening hours",
        content="The bakery opens at seven on weekdays. On Sundays it stays closed.",
    )

    said = lookup_knowledge(agent.pk, "When does the bakery open on weekdays?")

    assert "seven" in said

    with pytest.raises(ToolFailure) as failure:
        lookup_knowledge(agent.pk, "Do you repair bicycles?")
    assert failure.value.code == "not_found"
