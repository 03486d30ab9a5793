"""core.uuids.uuid5_text makes the text of uuid.uuid5 without building a UUID: the advisor's
decision, intent and telemetry ids and the detector's signal ids go through it, and a backtest
reproduces a live run's ids only if it is the very same text."""

from __future__ import annotations

import random
import uuid

from core.advisor.engine import ids as advisor_ids
from core.detector.engine.outputs import emission_id
from core.uuids import uuid5_text

NAMESPACES = [uuid.UUID(int=0), uuid.UUID("2b7c6f0e-8d4a-4c1f-9a3e-616476697372"), uuid.UUID(int=2**128 - 1)]


def _names(count: int) -> list[str]:
    rng = random.Random(18)
    alphabet = "abcXYZ019/-_.:é€😀 "
    names = ["", "decision/sig-1/1767229320000000000", "ü" * 300]
    names += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 80))) for _ in range(count)]
    return names


def test_the_text_is_uuid5s_for_any_namespace_and_name() -> None:
    for namespace in NAMESPACES:
        for name in _names(2_000):
            expected = str(uuid.uuid5(namespace, name))
            assert uuid5_text(namespace.bytes, name) == expected
    made = uuid.UUID(uuid5_text(NAMESPACES[1].bytes, "x"))
    assert made.version == 5 and made.variant == uuid.RFC_4122


def test_the_advisors_and_detectors_ids_are_the_uuid5s_they_always_were() -> None:
    advisor = uuid.UUID("2b7c6f0e-8d4a-4c1f-9a3e-616476697372")
    detector = uuid.UUID("6f1d3c1e-5a52-4be0-9d1e-6d6574656374")
    assert advisor_ids.decision_id("sig-1", 5) == str(uuid.uuid5(advisor, "decision/sig-1/5"))
    assert advisor_ids.intent_id("d-1") == str(uuid.uuid5(advisor, "intent/d-1"))
    assert advisor_ids.telemetry_id(3, 5, "d-1") == str(uuid.uuid5(advisor, "telemetry/3/5/d-1"))
    assert emission_id("trend/sim/BTC/USDT", 2, 5, 7) == str(uuid.uuid5(detector, "trend/sim/BTC/USDT/2/5/7"))
