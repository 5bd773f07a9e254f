"""Create the demo accounts once (admin, auditor, two users) and print their credentials."""

from decimal import Decimal

from django.core.management.base import BaseCommand

from accounts import services
from accounts.models import Role, User
from transactions import services as money

DEMO_USERS = [
    ("admin", "admin@example.com", "admin-Demo-pass-1", Role.ADMIN),
    ("auditor", "auditor@example.com", "auditor-Demo-pass-1", Role.AUDITOR),
    ("alice", "alice@example.com", "alice-Demo-pass-1", Role.USER),
    ("bob", "bob@example.com", "bob-Demo-pass-1", Role.USER),
]


class Command(BaseCommand):
    help = "Create demo users (once) and print their credentials."

    def handle(self, *args, **options):
        created = False
        for username, email, password, role in DEMO_USERS:
            if User.objects.filter(username__iexact=username).exists():
                continue
            user = services.register_user(
                username=username, email=email, password=password, role=role
            )
            if role == Role.ADMIN:
                user.is_superuser = True
                user.save(update_fields=["is_superuser"])
            if role == Role.USER:
                money.credit(
                    actor=user,
                    user=user,
                    amount=Decimal("1000.00"),
                    currency="USD",
                    description="Demo opening balance",
                )
            created = True
        verb = "Created" if created else "Demo accounts already exist"
        self.stdout.write(f"{verb}. Log in at /api/docs/ (POST auth/login) or /admin/ with:")
        for username, _email, password, role in DEMO_USERS:
            self.stdout.write(f"  {role:8} {username:8} {password}")
