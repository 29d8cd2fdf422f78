"""Workflows as a registry kind: saved only when the whole definition is valid."""

from __future__ import annotations

from pydantic import BaseModel

from engine.registry import Kind, Registry
from engine.workflows.schema import WorkflowSpec
from engine.workflows.validate import load_workflow


async def _valid_as_a_whole(_: Registry, spec: BaseModel) -> None:
    load_workflow(spec)  # WorkflowInvalid (a 400) lists every problem


def workflow_kinds() -> list[Kind]:
    return [Kind("workflow", WorkflowSpec, checks=[_valid_as_a_whole])]
