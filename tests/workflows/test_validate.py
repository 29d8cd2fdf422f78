import pytest

from engine.errors import InvalidRequest
from engine.workflows import WorkflowInvalid, load_workflow, validate_input, validate_workflow


def tpl(name, template="x", **extra):
    return {"type": "template", "name": name, "template": template, **extra}


def wf(*steps, **extra):
    return {"id": "wf-1", "steps": list(steps), **extra}


def problems(data):
    return [(p.path, p.message) for p in validate_workflow(data)]


def paths(data):
    return [p for p, _ in problems(data)]


def test_valid_workflow_has_no_problems():
    assert problems(wf(tpl("a"), tpl("b", "${step:a}"))) == []


def test_unknown_step_type():
    assert paths(wf({"type": "teleport", "name": "a"})) == ["steps[0].type"]


def test_unknown_field():
    assert paths(wf(tpl("a", colour="red"))) == ["steps[0].colour"]


def test_type_specific_field_errors():
    data = wf({"type": "chat_completion", "name": "a"},
              {"type": "knowledge_base_search", "name": "s", "knowledge_base_id": "kb",
               "query": "q", "filter": {"field": "x", "operator": "bogus", "value": 1}},
              {"type": "crag_scoring", "name": "c", "query": "q", "strategy": "llm"})
    found = paths(data)
    assert "steps[0].model_id" in found
    assert any(p.startswith("steps[1].filter") for p in found)
    assert "steps[2]" in found  # llm strategy needs model_id


def test_duplicate_names():
    assert problems(wf(tpl("a"), tpl("a"))) == [
        ("steps[1].name", "duplicate step name 'a' (also steps[0])")]


def test_reference_to_unknown_step():
    assert problems(wf(tpl("a", "${step:ghost:x}"))) == [
        ("steps[0].template", "references unknown step 'ghost'")]


def test_reference_to_later_step_and_self():
    found = problems(wf(tpl("a", "${step:b:x}"), tpl("b", "${step:b}")))
    assert ("steps[0].template", "references step 'b', which comes later") in found
    assert ("steps[1].template", "a step cannot reference its own output") in found


def test_unknown_depends_on():
    assert problems(wf(tpl("a", depends_on=["ghost"]))) == [
        ("steps[0].depends_on", "unknown step 'ghost'")]


def test_depends_on_cycle():
    found = problems(wf(tpl("a", depends_on=["b"]), tpl("b", depends_on=["c"]),
                        tpl("c", depends_on=["a"])))
    assert found == [("steps[0].depends_on", "depends_on cycle: a -> b -> c -> a")]


def test_depends_on_across_a_conditional():
    cond = {"type": "conditional", "name": "c", "conditions": []}
    found = paths(wf(tpl("a", depends_on=["b"]), cond, tpl("b")))
    assert found == ["steps[0].depends_on"]


def test_go_to_step_unknown_target():
    cond = {"type": "conditional", "name": "c", "conditions": [
        {"field": "${request:x}", "operator": "eq", "value": 1,
         "action": {"go_to_step": "nowhere"}}]}
    assert paths(wf(cond)) == ["steps[0].conditions[0].action.go_to_step"]


def test_backward_go_to_step_needs_bound():
    cond = {"type": "conditional", "name": "c", "conditions": [],
            "default_action": {"go_to_step": "a"}}
    assert problems(wf(tpl("a"), cond)) == [
        ("steps[1].default_action.max_iterations",
         "go_to_step 'a' jumps backwards: set max_iterations to bound the loop")]
    cond["default_action"]["max_iterations"] = 3
    assert problems(wf(tpl("a"), cond)) == []


def test_conditional_field_must_be_reference():
    cond = {"type": "conditional", "name": "c",
            "conditions": [{"field": "count", "operator": "eq", "value": 1}]}
    assert paths(wf(cond)) == ["steps[0].conditions[0].field"]


def test_every_problem_at_once_and_error_lists_them():
    data = wf(tpl("a", "${step:ghost}"), tpl("a", bogus=1), {"type": "nope", "name": "z"})
    with pytest.raises(WorkflowInvalid) as caught:
        load_workflow(data)
    assert len(caught.value.problems) == 4
    assert caught.value.param == caught.value.problems[0].path
    assert "steps[1].bogus" in caught.value.message


def test_fallback_value_required_and_bad_input_schema_and_jinja_syntax():
    found = paths(wf(tpl("a", on_error="fallback_value")))
    assert found == ["steps[0]"]
    assert paths(wf(tpl("a"), input_schema={"type": "nonsense"})) == ["input_schema"]
    assert paths(wf(tpl("a", "{% if %}", format="jinja2"))) == ["steps[0]"]


def test_crag_without_documents_source():
    crag = {"type": "crag_scoring", "name": "c", "query": "q", "strategy": "threshold"}
    assert paths(wf(crag)) == ["steps[0].input_documents"]


def test_malformed_reference_and_output_unknown_step():
    found = paths(wf(tpl("a", "${step:bad name}"), output={"x": "${step:ghost}"}))
    assert "steps[0].template" in found and "output" in found


def test_input_validation_names_the_field():
    compiled = load_workflow(wf(tpl("a"), input_schema={
        "type": "object", "required": ["query"],
        "properties": {"query": {"type": "string"},
                       "opts": {"type": "object", "properties": {"k": {"type": "integer"}}}}}))
    validate_input(compiled, {"query": "x"})
    with pytest.raises(InvalidRequest) as caught:
        validate_input(compiled, {})
    assert caught.value.param == "query"
    with pytest.raises(InvalidRequest) as caught:
        validate_input(compiled, {"query": "x", "opts": {"k": "no"}})
    assert caught.value.param == "opts.k"
    with pytest.raises(InvalidRequest):
        validate_input(compiled, ["not", "an", "object"])


def test_load_from_a_validated_spec_object():
    from engine.workflows.schema import WorkflowSpec

    spec = WorkflowSpec.model_validate(wf(
        tpl("a", "${request:q}"),
        {"type": "crag_scoring", "name": "c", "query": "q", "strategy": "threshold",
         "threshold": 0.5, "input_documents": "${request:docs}"}))
    compiled = load_workflow(spec)
    assert [s.name for s in compiled.steps] == ["a", "c"]
    assert compiled.spec.steps[1].correct_threshold == 0.5
