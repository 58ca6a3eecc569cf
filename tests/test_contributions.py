"""What an app contributes is declared in one module with real imports, found through its
AppConfig: no dotted string names a function, no module is found by its name. A developer who
adds a CRF app writes ``<app>/contributions.py`` and its config's ``declared_contributions``;
these tests fail if a contribution is left undeclared or the old ways come back.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

from django.conf import settings

from core.apps import ProjectAppConfig
from core.contributions import AppContributions
from core.registry import project_app_configs

ROOT = Path(settings.BASE_DIR)
# The AppConfig attributes of the former dotted-string hooks.
OLD_HOOKS = {
    "subject_panel",
    "record_field_flags",
    "record_form_action",
    "guard_write",
    "lock_state",
    "locked_data",
    "after_subject_change",
    "on_subject_data_change",
    "treatment_calendar_facts",
}
# Django's own attributes of an AppConfig (``name`` and ``default_auto_field`` are dotted).
DJANGO_ATTRIBUTES = {"name", "label", "verbose_name", "default_auto_field", "default", "path"}
# Modules once found by their name, and what each declares: (module, its list, the field).
DECLARING_MODULES = [
    ("export", "FORMS", "export_forms"),
    ("export", "SIGNED", "signed_forms"),
    ("sdtm", "DATASETS", "datasets"),
    ("edit_checks", "CHECKS", "edit_checks"),
    ("api", "ROUTES", "api_routes"),
]


def test_every_apps_contributions_are_its_contributions_module_found_through_its_config():
    configs = project_app_configs()
    assert configs
    for config in configs:
        assert isinstance(config, ProjectAppConfig)
        contributions = config.contributions()
        assert isinstance(contributions, AppContributions)
        declared = None  # core's contributions module is the types, it declares nothing
        if (ROOT / config.label / "contributions.py").is_file():
            module = importlib.import_module(f"{config.name}.contributions")
            declared = getattr(module, "CONTRIBUTIONS", None)
        if declared is None:
            assert contributions == AppContributions(), config.label
        else:
            assert contributions is declared, config.label


def test_what_an_apps_modules_offer_is_declared():
    """An app's ``export.FORMS``, ``sdtm.DATASETS``, ``edit_checks.CHECKS``, ``api.ROUTES`` and
    demo seeders count only once declared: one left out of the declaration fails here."""
    for config in project_app_configs():
        contributions = config.contributions()
        for module_name, attribute, field in DECLARING_MODULES:
            if not (ROOT / config.label / f"{module_name}.py").is_file():
                continue
            module = importlib.import_module(f"{config.name}.{module_name}")
            if hasattr(module, attribute):
                declared = getattr(contributions, field)
                assert declared == tuple(getattr(module, attribute)), (config.label, field)
        if (ROOT / config.label / "demo.py").is_file():
            demo = importlib.import_module(f"{config.name}.demo")
            for seeder in ("seed", "seed_follow_up"):
                assert getattr(contributions, seeder) is getattr(demo, seeder, None), (
                    config.label,
                    seeder,
                )


def test_no_app_config_names_a_function_by_a_dotted_string():
    for config in project_app_configs():
        for hook in OLD_HOOKS:
            assert not hasattr(config, hook), f"{config.label}'s AppConfig has {hook}"
        for klass in type(config).__mro__:
            if not issubclass(klass, ProjectAppConfig):
                continue
            for name, value in vars(klass).items():
                if name in DJANGO_ATTRIBUTES or name.startswith("__"):
                    continue
                assert not (isinstance(value, str) and "." in value), (
                    f"{klass.__name__}.{name} = {value!r}: declare it in the app's "
                    "contributions module, by import"
                )


def _computed_module_names(path: Path) -> list[str]:
    """Calls in ``path`` that import or look up a module whose name the code builds (an
    f-string or a concatenation): the way a module is found by a naming convention."""
    found = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if called in {"import_module", "find_spec", "import_string", "__import__"} and (
            isinstance(node.args[0], ast.JoinedStr | ast.BinOp)
        ):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_no_app_module_is_found_by_its_name():
    found = [
        where
        for config in project_app_configs()
        for path in (ROOT / config.label).rglob("*.py")
        for where in _computed_module_names(path)
    ]
    assert found == []
