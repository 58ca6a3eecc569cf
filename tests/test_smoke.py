from subjects.models import SubjectStatus


def test_subject_registered_with_identifier(subject):
    assert subject.subject_identifier == "101-0001"
    assert subject.status == SubjectStatus.SCREENING
    assert subject.is_consented
