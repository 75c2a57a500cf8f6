"""Rule file schema: the document's shape as written, before names are checked against catalogues. Pure."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from workers.rules.model import Named, RuleBase

SUPPORTED_VERSIONS: tuple[int, ...] = (1,)


def _none_as_empty_mapping(value: object) -> object:
    return {} if value is None else value


class FileDoc(BaseModel):
    """The top level of a rule file. Each rule is validated on its own (RuleDoc) so one bad rule hides no other."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = Field(strict=True)
    rules: list[Any]

    @field_validator("version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value not in SUPPORTED_VERSIONS:
            supported = ", ".join(str(v) for v in SUPPORTED_VERSIONS)
            raise ValueError(f"unsupported version {value} (supported: {supported})")
        return value


class ActionDoc(BaseModel):
    """An action as written: its type and its raw `with:` parameters (validated later, per type)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    type: Named
    with_: Annotated[dict[str, Any], BeforeValidator(_none_as_empty_mapping)] = Field(
        default_factory=dict, alias="with"
    )


class RuleDoc(RuleBase):
    """A rule as written."""

    actions: Annotated[tuple[ActionDoc, ...], Field(min_length=1)]
