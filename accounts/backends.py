"""Log in with a username or an email, both case-insensitively."""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.db.models import Q


class UsernameOrEmailBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None or password is None:
            return None
        user_model = get_user_model()
        user = (
            user_model._default_manager.filter(
                Q(username__iexact=username) | Q(email__iexact=username)
            )
            .order_by("id")
            .first()
        )
        if user is None:
            user_model().set_password(password)  # same time spent whether the user exists or not
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
