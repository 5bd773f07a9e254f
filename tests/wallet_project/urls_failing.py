"""The project's URLs plus views that fail on purpose, for the error-envelope tests."""

from django.db import connection
from django.http import Http404
from django.urls import path
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny

from wallet_project import urls as project_urls

LEAKY_TEXT = "SELECT secret_column FROM secret_table -- sk_live_do_not_show"


@api_view(["GET"])
@permission_classes([AllowAny])
def api_crash(request):
    raise RuntimeError(LEAKY_TEXT)


@api_view(["GET"])
@permission_classes([AllowAny])
def api_database_crash(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret_column FROM no_such_table_here")


def django_crash(request):
    raise RuntimeError(LEAKY_TEXT)


def django_not_found(request):
    raise Http404(LEAKY_TEXT)


urlpatterns = [
    path("test-only/api-crash", api_crash),
    path("test-only/api-database-crash", api_database_crash),
    path("test-only/django-crash", django_crash),
    path("test-only/django-not-found", django_not_found),
    *project_urls.urlpatterns,
]

handler400 = project_urls.handler400
handler403 = project_urls.handler403
handler404 = project_urls.handler404
handler500 = project_urls.handler500
