import pytest
from django.core.management import CommandError, call_command

from core.roles import Role
from subjects.models import Site, Subject

pytestmark = pytest.mark.django_db


def test_seed_demo_builds_a_study_with_every_role(tmp_path, settings, capsys):
    settings.VAR_DIR = tmp_path
    call_command("seed_demo", "--subjects", "10", "--password", "demo pass phrase")
    out = capsys.readouterr().out
    for role in Role:
        assert f"({role.value};" in out
    assert Site.objects.count() == 3
    assert Subject.objects.count() >= 10
    assert Subject.objects.filter(consent_date__isnull=True).exists()
    assert "demo pass phrase" in (tmp_path / "demo_credentials.txt").read_text()
    with pytest.raises(CommandError, match="already has users"):
        call_command("seed_demo")
    call_command("seed_demo", "--skip-if-seeded")
    assert "already present" in capsys.readouterr().out


def test_seed_demo_refuses_a_bad_size():
    with pytest.raises(CommandError, match="between 0 and 100000"):
        call_command("seed_demo", "--subjects", "-1")
