from core.apps import ProjectAppConfig


class DashboardConfig(ProjectAppConfig):
    default = True
    name = "dashboard"
    verbose_name = "Dashboard"
