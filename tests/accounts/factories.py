import factory
from factory.django import DjangoModelFactory

from accounts.models import User

PASSWORD = "Correct-Horse-42"


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    role = "user"
    is_active = True
    password = factory.django.Password(PASSWORD)
