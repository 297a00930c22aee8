"""Program section owned by links: codes, sharing, scoreboard embedding, promoter invitations."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Channel = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]
# A web origin as browsers send it: https, a host, an optional port; no path, no wildcard.
Origin = Annotated[
    str,
    Field(
        max_length=270,
        pattern=r"^https://[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[0-9]{1,5})?$",
    ),
]


class LinkPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Random codes: at least 9 characters of a 30-symbol alphabet (44 bits).
    code_length: int = Field(default=10, ge=9, le=32)
    # Whether enrolment may choose a vanity code instead of a random one.
    vanity_codes: bool = True
    # Channels a share link may name (``?ch=``); empty means the built-in list.
    channels: list[Channel] = Field(default=[], max_length=50)
    # Query parameter that carries the channel to the destination.
    channel_param: str = Field(default="ref_channel", pattern=r"^[A-Za-z][A-Za-z0-9_\-]{0,39}$")
    # Pages that may show the participant scoreboard in an iframe (``/s/{token}/embed``): exact
    # https origins, no path. Empty: nobody may frame it.
    embed_origins: list[Origin] = Field(default=[], max_length=20)
    # Invite NPS promoters (score 9-10) who are not participants yet: they are enrolled the
    # same way as through the API, and notifications sends them the welcome.
    invite_promoters: bool = False
