"""What a platform's LTI roles make a person here (the LTI 1.3 role vocabulary; README "Add to your LMS")."""

from __future__ import annotations

from collections.abc import Iterable

from app.domain.accounts.models import UserType

MEMBERSHIP_ROLE = "http://purl.imsglobal.org/vocab/lis/v2/membership"
# "TeachingAssistant" alone is the deprecated short name of the Instructor#TeachingAssistant sub-role.
STUDENT_ROLES = frozenset({"Learner", "TeachingAssistant"})


def course_role(roles: Iterable[str]) -> UserType | None:
    """What a launch's roles make a person here, by the LTI 1.3 role vocabulary (README "Add to your LMS"):

    | role (context = course membership)                 | here      |
    |----------------------------------------------------|-----------|
    | membership#Instructor                              | professor |
    | membership/Instructor#TeachingAssistant            | student   |
    | membership#Learner (and its sub-roles)             | student   |
    | any other context role (Mentor, ContentDeveloper,  | nothing   |
    | Administrator of the course, Manager, Member)      |           |
    | institution and system roles (Administrator, staff,| nothing   |
    | Open edX global staff)                             |           |

    A teaching assistant books office hours like a student; one who holds office hours is made a professor by an
    administrator (`app users promote`). Roles may also come as the deprecated short names (`Instructor`).
    A launch whose roles make nothing is refused.
    """
    principal_roles: set[str] = set()
    student_roles: set[str] = set()
    for role in roles:
        if role.startswith(MEMBERSHIP_ROLE):
            rest = role.removeprefix(MEMBERSHIP_ROLE)
        elif ":" not in role and "/" not in role:
            rest = f"#{role}"
        else:
            continue  # institution or system role
        if rest.startswith("/"):  # a sub-role: membership/<Role>#<SubRole>
            principal, _, sub_role = rest[1:].partition("#")
        else:  # membership#<Role>
            principal, sub_role = rest.lstrip("#"), ""
        if principal == "Instructor" and not sub_role:
            principal_roles.add(principal)
        elif (principal == "Instructor" and sub_role == "TeachingAssistant") or principal in STUDENT_ROLES:
            student_roles.add(principal)
    if principal_roles:
        return UserType.PROFESSOR
    if student_roles:
        return UserType.STUDENT
    return None
