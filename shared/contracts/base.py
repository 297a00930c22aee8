"""Base of every event contract: a typed, versioned payload bound to one topic."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field

# Money and other reward units are integers in minor units with a unit code, never floats.
MinorUnits = Annotated[int, Field(ge=0, le=10**12, strict=True)]
UnitCode = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]{1,15}$")]


class Event(BaseModel):
    """``TOPIC`` is where it is published; ``TYPE`` is the contract name with its major version,
    sent as ``ce_type``. ``key()`` decides partitioning and therefore ordering."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    TOPIC: ClassVar[str]
    TYPE: ClassVar[str]

    def key(self) -> str:
        raise NotImplementedError

    def subject(self) -> str | None:
        return None


class Amount(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    amount: MinorUnits
    unit: UnitCode
