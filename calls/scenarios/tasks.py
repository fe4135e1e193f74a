"""The Celery task that plays a scenario run (``POST /api/scenarios/{sid}/run``).

It runs on the ``default`` queue, not a pipeline stage's: it only holds the
call, while the call's turns go through the stt/classify/respond/tts pools
like any other call's.
"""

from voiceproj.celery import app
from voiceproj.pipeline import RUN_SCENARIO_TASK

from .models import TURNS_MAX, ScenarioRun
from .runner import TURN_TIMEOUT_S, play

# Every turn may take up to its backstop; a minute on top for the call around them.
RUN_TIME_LIMIT_S = int(TURNS_MAX * TURN_TIMEOUT_S) + 60


@app.task(
    name=RUN_SCENARIO_TASK,
    time_limit=RUN_TIME_LIMIT_S,
    soft_time_limit=RUN_TIME_LIMIT_S - 10,
    # Acknowledged on receipt: a run may outlast the broker's visibility
    # timeout, and a redelivered run would play the call a second time.
    acks_late=False,
)
def run_scenario(run_id: str) -> None:
    run = ScenarioRun.objects.select_related("scenario__agent__owner").filter(pk=run_id).first()
    if run is not None and run.status == ScenarioRun.Status.QUEUED:
        play(run)
