"""``manage.py run_scenarios [--agent ID]``: play scenarios now, print a table, fail on a failure.

The runs play in this process (not through the ``default`` queue), one after
another, while their turns go through the running stt/classify/respond/tts
workers as any call's do. Without ``--agent`` it runs the scenarios of every
active agent; exit status 1 when any run failed, so CI can gate on it.
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from calls.scenarios.models import Scenario, ScenarioRun
from calls.scenarios.runner import play

HEADER = ("agent", "scenario", "result", "previous", "turns", "first failure")


def first_failure(run: ScenarioRun) -> str:
    if run.error:
        return run.error
    for number, turn in enumerate(run.turns, start=1):
        for check in turn["checks"]:
            if not check["ok"]:
                return f"turn {number} {check['name']}: {check['detail']}"
    return ""


class Command(BaseCommand):
    help = "Run agents' scenarios through the pipeline and print the outcome; exit 1 on a failure."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--agent", type=int, help="Only this agent's scenarios (its id).")

    def handle(self, *args: Any, agent: int | None = None, **options: Any) -> None:
        scenarios = Scenario.objects.select_related("agent__owner").order_by("agent_id", "name")
        if agent is None:
            scenarios = scenarios.filter(agent__is_active=True)
        else:
            scenarios = scenarios.filter(agent_id=agent)
        if not scenarios:
            raise CommandError("No scenarios to run.")
        rows = []
        failed = 0
        for scenario in scenarios:
            previous = scenario.runs.order_by("-created_at").first()
            run = play(ScenarioRun.objects.create(scenario=scenario))
            failed += run.status == ScenarioRun.Status.FAILED
            rows.append(
                (
                    scenario.agent.name,
                    scenario.name,
                    run.status,
                    previous.status if previous else "-",
                    str(len(run.turns)),
                    first_failure(run),
                )
            )
        self.print_table([HEADER, *rows])
        self.stdout.write(f"{len(rows) - failed} passed, {failed} failed")
        if failed:
            raise SystemExit(1)

    def print_table(self, rows: list[tuple[str, ...]]) -> None:
        widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER) - 1)]
        for row in rows:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            self.stdout.write("  ".join([*cells, row[-1]]).rstrip())
