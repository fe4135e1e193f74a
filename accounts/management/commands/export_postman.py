"""``manage.py export_postman``: regenerate the checked-in Postman collection."""

from typing import Any

from django.core.management.base import BaseCommand

from voiceproj.postman import COLLECTION_PATH, render


class Command(BaseCommand):
    help = "Write postman/voice-platform.postman_collection.json from the OpenAPI schema."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--check", action="store_true", help="Exit 1 if the checked-in file is stale."
        )

    def handle(self, *args: Any, check: bool = False, **options: Any) -> None:
        text = render()
        current = COLLECTION_PATH.read_text() if COLLECTION_PATH.exists() else ""
        if check:
            if current != text:
                self.stderr.write(f"{COLLECTION_PATH} is stale: run `make postman`.")
                raise SystemExit(1)
            self.stdout.write("Postman collection is up to date.")
            return
        COLLECTION_PATH.parent.mkdir(parents=True, exist_ok=True)
        COLLECTION_PATH.write_text(text)
        self.stdout.write(f"Wrote {COLLECTION_PATH.relative_to(COLLECTION_PATH.parents[1])}")
