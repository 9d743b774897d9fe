"""Ready-made UPS situations for tests and the demo: load-shedding days, aged batteries, outages
of the monitoring path itself.

Time is the simulator's clock, so with an injected fake clock a test lives through days in
seconds, and the demo shrinks a day with `day_seconds`::

    clock = FakeClock()
    ups = aged_battery(clock=clock)                  # 60 % of rated capacity, Lahore schedule
    ups = new_battery(clock=clock)                   # the same, health 1.0
    await gateway_reboot(ups, seconds=5)             # card / gateway gone for 5 s, same port
    with ups_silent(ups): ...                        # requests get no answer at all
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .ups import SimulatedUps

DAY_S = 86400.0

# A typical Pakistani urban feeder on a load-shedding roster: three one-hour cuts a day
# (hour of the day the cut starts, minutes it lasts).
LAHORE_CUTS: tuple[tuple[float, float], ...] = ((8.0, 60.0), (14.0, 60.0), (20.0, 60.0))

# Scenario batteries: a 1000 W Smart-UPS on 2 x 12 V 18 Ah at a centre's 300 W rack, with a
# real battery's runtime exponent (NUT's default runtimecal 240,100,720,50 gives 1.58).
_SCENARIO_LOAD_W = 300.0
_RUNTIME_EXPONENT = 1.3


class DailyLoadShedding:
    """Mains cut at fixed hours of every simulated day; `day_seconds` scales the day.

    Cuts are (start hour 0..24, minutes); hours and minutes scale with the day, so a 600 s demo
    day keeps the roster's shape.
    """

    def __init__(
        self, cuts: Sequence[tuple[float, float]] = LAHORE_CUTS, day_seconds: float = DAY_S
    ) -> None:
        scale = day_seconds / DAY_S
        spans = sorted(
            (hour * 3600 * scale, (hour * 3600 + minutes * 60) * scale) for hour, minutes in cuts
        )
        for (_, end), (start, _) in itertools.pairwise(spans):
            if start < end:
                raise ValueError("cuts overlap")
        if spans and (spans[0][0] < 0 or spans[-1][1] > day_seconds):
            raise ValueError("every cut must start and end within the day")
        self.day_seconds = day_seconds
        self.spans = tuple(spans)

    def mains_on(self, elapsed: float) -> bool:
        phase = elapsed % self.day_seconds
        return not any(start <= phase < end for start, end in self.spans)

    def next_edge(self, elapsed: float) -> float:
        if not self.spans:
            return math.inf
        day_start = elapsed // self.day_seconds * self.day_seconds
        for offset in (0.0, self.day_seconds):
            for start, end in self.spans:
                for edge in (start, end):
                    if day_start + offset + edge > elapsed:
                        return day_start + offset + edge
        return day_start + 2 * self.day_seconds  # unreachable: the next day always has an edge


def _scenario_ups(health: float, clock: Callable[[], float], **overrides: Any) -> SimulatedUps:
    settings: dict[str, Any] = {
        "load_w": _SCENARIO_LOAD_W,
        "health": health,
        "runtime_exponent": _RUNTIME_EXPONENT,
        "schedule": DailyLoadShedding(),
        "clock": clock,
    }
    settings.update(overrides)
    return SimulatedUps(**settings)


def aged_battery(clock: Callable[[], float] = time.monotonic, **overrides: Any) -> SimulatedUps:
    """A UPS whose battery holds 60 % of its rated capacity, on the daily load-shedding roster."""
    return _scenario_ups(0.6, clock, **overrides)


def new_battery(clock: Callable[[], float] = time.monotonic, **overrides: Any) -> SimulatedUps:
    """The same UPS with a new battery (health 1.0)."""
    return _scenario_ups(1.0, clock, **overrides)


async def gateway_reboot(ups: SimulatedUps, seconds: float) -> None:
    """The network card or serial gateway reboots: connections drop, nothing listens for a while,
    then it answers again on the same address (as after every power cut at some sites)."""
    await ups.stop()
    await asyncio.sleep(seconds)
    await ups.restart()


@contextlib.contextmanager
def ups_silent(ups: SimulatedUps) -> Iterator[SimulatedUps]:
    """The UPS stops answering (hung firmware, cable pulled behind a gateway): requests are
    accepted by the gateway but get no reply, so the collector times out."""
    ups.answering = False
    try:
        yield ups
    finally:
        ups.answering = True
