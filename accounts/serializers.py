"""Input and output shapes for auth and user endpoints."""

import re

from rest_framework import serializers

from accounts.models import Role, User

USERNAME_PATTERN = re.compile(r"[A-Za-z0-9_.-]{3,150}")


def _validate_username(value: str) -> str:
    if not USERNAME_PATTERN.fullmatch(value):
        raise serializers.ValidationError(
            "Use 3-150 characters: letters, digits, underscore, dot or hyphen."
        )
    return value


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ("id", "username", "email", "role", "is_active", "created_at", "updated_at")
        read_only_fields = fields


class RegisterInputSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150, trim_whitespace=False)
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, trim_whitespace=False, write_only=True)

    def validate_username(self, value: str) -> str:
        return _validate_username(value)


class LoginInputSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=254, help_text="Username or email.")
    password = serializers.CharField(max_length=128, trim_whitespace=False)


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()
    token_type = serializers.CharField(default="Bearer")
    expires_in = serializers.IntegerField(help_text="Seconds until the access token expires.")


class RefreshInputSerializer(serializers.Serializer):
    refresh = serializers.CharField()


class RefreshOutputSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class UserUpdateInputSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150, required=False, trim_whitespace=False)
    email = serializers.EmailField(max_length=254, required=False)
    password = serializers.CharField(
        max_length=128, required=False, write_only=True, trim_whitespace=False
    )
    current_password = serializers.CharField(
        max_length=128, required=False, write_only=True, trim_whitespace=False
    )
    role = serializers.ChoiceField(choices=Role.choices, required=False)
    is_active = serializers.BooleanField(required=False)

    def validate_username(self, value: str) -> str:
        return _validate_username(value)


class UserReplaceInputSerializer(UserUpdateInputSerializer):
    """PUT: the whole editable profile, so `username` and `email` are required."""

    username = serializers.CharField(max_length=150, trim_whitespace=False)
    email = serializers.EmailField(max_length=254)


class UserFilterSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices, required=False)
    is_active = serializers.BooleanField(required=False, allow_null=True, default=None)
    search = serializers.CharField(required=False, allow_blank=True, max_length=254)
