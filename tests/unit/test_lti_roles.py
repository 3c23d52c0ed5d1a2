"""What a platform's LTI roles make a person here: only course membership roles count, never institution or system
roles (an LMS administrator or Open edX global staff is not a professor of every course)."""

from __future__ import annotations

import pytest

from app.domain.accounts.models import UserType
from app.domain.lti.roles import course_role

MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership"
INSTITUTION = "http://purl.imsglobal.org/vocab/lis/v2/institution/person"
SYSTEM = "http://purl.imsglobal.org/vocab/lis/v2/system/person"


@pytest.mark.parametrize(
    ("roles", "made"),
    [
        ([f"{MEMBERSHIP}#Instructor"], UserType.PROFESSOR),
        ([f"{MEMBERSHIP}/Instructor#TeachingAssistant"], UserType.STUDENT),
        ([f"{MEMBERSHIP}#Learner"], UserType.STUDENT),
        (["Instructor"], UserType.PROFESSOR),
        (["Learner"], UserType.STUDENT),
    ],
)
def test_course_membership_roles_make_a_professor_or_a_student(roles: list[str], made: UserType) -> None:
    assert course_role(roles) == made


@pytest.mark.parametrize(
    "roles",
    [
        [f"{INSTITUTION}#Administrator"],
        [f"{SYSTEM}#Administrator"],
        [f"{INSTITUTION}#Staff", f"{INSTITUTION}#Faculty"],
        ["http://purl.imsglobal.org/vocab/lis/v2/system/person#SysAdmin"],
        ["global_staff"],
        [f"{MEMBERSHIP}#Mentor"],
        [f"{MEMBERSHIP}#Administrator"],
        [],
    ],
)
def test_institution_system_and_other_course_roles_make_nothing(roles: list[str]) -> None:
    assert course_role(roles) is None
