from core.apps import ProjectAppConfig


class SubjectsConfig(ProjectAppConfig):
    default = True
    name = "subjects"
    verbose_name = "Sites and subjects"
