"""A dispatcher that fails on its first two calls and notes the time of each (in TEST_DISPATCH_ATTEMPTS)."""

import os
import time
from pathlib import Path

from django.apps import AppConfig

FAILURES = 2


def fail_twice(batch):
    log = Path(os.environ["TEST_DISPATCH_ATTEMPTS"])
    with log.open("a") as attempts:
        attempts.write(f"{time.time()}\n")
    if len(log.read_text().split()) <= FAILURES:
        raise RuntimeError("the receiver is down")


class FlakyDispatchConfig(AppConfig):
    name = "tests.live"
    label = "flaky_dispatch"

    def ready(self):
        from core import events

        events.register_dispatcher(fail_twice)
