import pytest

from engine.workflows.references import (
    Const,
    ReferenceError_,
    Scope,
    Text,
    Whole,
    compile_value,
    reference_errors,
    step_references,
)


def scope() -> Scope:
    return Scope(
        {"q": "hello", "n": 3, "tags": ["a", "b"], "user": {"name": "Ada"}},
        {"search": {"documents": [{"content": "first", "score": 0.9}], "count": 1},
         "none": None},
    )


def render(text, s=None):
    s = s or scope()
    return compile_value(text).render(s), s.warnings


def test_request_reference_whole_field_keeps_type():
    assert render("${request:n}") == (3, [])
    assert render("${request:tags}") == (["a", "b"], [])
    assert render("${request:user.name}") == ("Ada", [])


def test_request_reference_with_default():
    assert render("${request:missing:fallback}") == ("fallback", [])
    assert render("${request:missing:5}") == (5, [])  # JSON default as whole field
    assert render("x=${request:missing:5}") == ("x=5", [])
    assert render("${request:q:unused}") == ("hello", [])


def test_step_reference_with_indexed_path():
    assert render("${step:search:documents.0.content}") == ("first", [])
    assert render("${step:search:count}") == (1, [])
    assert render("${step:search}")[0]["count"] == 1


def test_step_reference_with_default():
    assert render("${step:search:documents.5.content:none found}") == ("none found", [])
    assert render("${step:absent:x:d}") == ("d", [])


def test_lists_and_objects_are_json_inside_text():
    assert render("tags: ${request:tags}") == ('tags: ["a", "b"]', [])
    assert render("user=${request:user}")[0] == 'user={"name": "Ada"}'


def test_missing_without_default_is_null_with_warning():
    value, warnings = render("${step:search:documents.3.content}")
    assert value is None
    assert warnings == ["${step:search:documents.3.content} resolved to null (no such value)"]
    value, warnings = render("a${request:nope}b")
    assert value == "ab" and len(warnings) == 1


def test_present_null_is_not_a_warning():
    assert render("${step:none}") == (None, [])


def test_nested_values_and_constants():
    compiled = compile_value({"a": ["${request:q}", 1], "b": "plain"})
    assert compiled.render(scope()) == {"a": ["hello", 1], "b": "plain"}
    assert isinstance(compile_value({"a": [1, "x"]}), Const)
    assert isinstance(compile_value("${request:q}"), Whole)
    assert isinstance(compile_value("q=${request:q}"), Text)


def test_escape_writes_literal():
    assert render("$${request:q} ${request:q}") == ("${request:q} hello", [])


def test_malformed_references():
    with pytest.raises(ReferenceError_):
        compile_value("${step:bad name:x}")
    with pytest.raises(ReferenceError_):
        compile_value("${request:a..b}")
    errors = reference_errors({"x": "${var:oops}"}, "steps[0]")
    assert errors and errors[0][0] == "steps[0].x"


def test_step_references_lists_referenced_steps():
    step = {"name": "s", "type": "template", "depends_on": ["x"],
            "template": {"a": "${step:one:x}", "b": ["${step:two}"], "c": "${request:q}"}}
    assert step_references(step) == {"one", "two"}
    conditional = {"name": "c", "type": "conditional",
                   "conditions": [{"field": "${step:one:n}", "operator": "eq", "value": 1,
                                   "action": {"end_workflow": "${step:later:x}"}}]}
    assert step_references(conditional) == {"one"}
