"""Users of the wallet: one table, a role per user, case-insensitive unique username and email."""

from typing import ClassVar

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.db.models.functions import Lower


class Role(models.TextChoices):
    USER = "user", "User"
    AUDITOR = "auditor", "Auditor"
    ADMIN = "admin", "Admin"


class WalletUserManager(UserManager["User"]):
    def get_by_natural_key(self, username):
        return self.get(username__iexact=username)

    def create_superuser(self, username=None, email=None, password=None, **extra_fields):
        extra_fields.setdefault("role", Role.ADMIN)
        return super().create_superuser(username, email, password, **extra_fields)


class User(AbstractUser):
    """A wallet user. Superusers are admins; `is_staff` follows the role (admin console entry)."""

    # None removes the inherited field (Django's way); django-stubs declare it a str.
    first_name = None  # type: ignore[assignment]
    last_name = None  # type: ignore[assignment]
    email = models.EmailField("email address")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.USER)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects: ClassVar[WalletUserManager] = WalletUserManager()

    REQUIRED_FIELDS = ["email"]

    class Meta:
        db_table = "users"
        ordering = ("id",)
        constraints = [
            models.UniqueConstraint(Lower("username"), name="user_username_ci_unique"),
            models.UniqueConstraint(Lower("email"), name="user_email_ci_unique"),
            models.CheckConstraint(
                condition=models.Q(role__in=["user", "auditor", "admin"]), name="user_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.username

    @property
    def is_admin(self) -> bool:
        return self.is_superuser or self.role == Role.ADMIN

    @property
    def is_auditor(self) -> bool:
        return self.role == Role.AUDITOR

    @property
    def can_read_all(self) -> bool:
        return self.is_admin or self.is_auditor
