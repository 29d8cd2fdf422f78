"""Workflow engine core: schema, references, validation, executor and steps.

Public API: `load_workflow`, `validate_workflow`, `validate_input`,
`WorkflowExecutor`, `RunResult`, `StepServices`.
"""

from engine.workflows.executor import RunResult, StepResult, WorkflowExecutor
from engine.workflows.steps.base import StepServices
from engine.workflows.validate import (
    CompiledWorkflow,
    Problem,
    WorkflowInvalid,
    load_workflow,
    validate_input,
    validate_workflow,
)

__all__ = ["CompiledWorkflow", "Problem", "RunResult", "StepResult", "StepServices",
           "WorkflowExecutor", "WorkflowInvalid", "load_workflow", "validate_input",
           "validate_workflow"]
