"""The one Celery app of the project, with the pipeline's queues declared.

Each pipeline stage has its own queue so its worker pool can be sized and
placed independently (STT/TTS on CPU hosts, classify/respond on GPU hosts).
"""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceproj.settings")

PIPELINE_QUEUES = ("stt", "classify", "respond", "tts")
ALL_QUEUES = (*PIPELINE_QUEUES, "default")

app = Celery("voiceproj")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue(name) for name in ALL_QUEUES]
app.conf.task_default_queue = "default"
app.autodiscover_tasks()
