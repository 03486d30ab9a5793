"""The cheap step protocol: a module's step as a plain function of positional values.

`Module.step(inputs, now_ns)` takes an `Inputs` (a dict and a frozenset) and answers a dict;
building those costs more than most modules' own work. A module may instead offer a
`Kernel`: a callable the compiled plan (trademesh.core.detector.engine.plan) calls with the values of
the input ports it names, then their fresh flags, then the time when it asks for it, and
which answers its outputs positionally:

- one output: its new value, or UNCHANGED when the step does not answer it;
- several outputs: a tuple of them in the spec's order, an entry UNCHANGED for an output not
  answered; or UNCHANGED alone when none is;
- no output (a sink): anything, ignored.

An answered output is fresh downstream even when its value did not change, exactly as a key
of `step`'s mapping. A kernel is asked for at every plan build (every change of the graph or
of a parameter) with the module's connected inputs, so it may bind its parameters and its
wiring; state that must outlive a rebuild lives on the module. `KernelModule` gives such a
module its `step` from its kernel: one implementation, two ways in.

A kernel of a hot module kind may also carry `inline`: its call written out as statements
the generated walk pastes in place of the call (no call at all on the common path). The
statements assign the answer to `r`, name their own locals `t_*`, and find the call's
arguments as `{0}`, `{1}`, ..., the kernel's callable as `{call}` (for the uncommon path:
the inline code must answer exactly what the call would) and their constants by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, final

from trademesh.core.detector.engine.values import Value

__all__ = ["UNCHANGED", "Inline", "Kernel", "Unchanged", "answer_of", "kernel_args"]


@final
class Unchanged:
    """The type of UNCHANGED: an output the step does not answer."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNCHANGED"

    def __reduce__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Final = Unchanged()


@dataclass(frozen=True, slots=True)
class Inline:
    """A kernel's call as statements (see the module's doc): `lines` with str.format fields."""

    lines: tuple[str, ...]
    names: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Kernel:
    """How the plan calls a module: call(*values of `values`, *fresh flags of `fresh`[, now_ns])."""

    call: Callable[..., object]
    values: tuple[str, ...] = ()
    fresh: tuple[str, ...] = ()
    now: bool = False
    inline: Inline | None = None
    # Several outputs answered all together or not at all (never one UNCHANGED in the tuple):
    # the plan then stores them without a test each.
    whole: bool = False


def kernel_args(kernel: Kernel, values: dict[str, Value], fresh: frozenset[str], now_ns: int) -> list[object]:
    """The positional arguments of a kernel call for these inputs (the step adapter's path)."""
    args: list[object] = [values.get(port) for port in kernel.values]
    args += [port in fresh for port in kernel.fresh]
    if kernel.now:
        args.append(now_ns)
    return args


def answer_of(answer: object, ports: tuple[str, ...]) -> dict[str, Value]:
    """A kernel's positional answer as `step` gives it: output port -> value, answered only."""
    if answer is UNCHANGED or not ports:
        return {}
    if len(ports) == 1:
        return {ports[0]: answer}  # type: ignore[dict-item]
    assert isinstance(answer, tuple) and len(answer) == len(ports), f"a kernel answered {answer!r}"
    return {port: value for port, value in zip(ports, answer, strict=True) if value is not UNCHANGED}
