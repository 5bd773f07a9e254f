"""Bearer JWT authentication; a deactivated user's tokens stop working at once."""

from rest_framework_simplejwt.authentication import JWTAuthentication

from wallet_project.request_context import user_id_var


class BearerAuthentication(JWTAuthentication):
    def authenticate(self, request):
        result = super().authenticate(request)
        if result is not None:
            user_id_var.set(result[0].pk)
        return result
