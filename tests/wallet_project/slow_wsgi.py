"""The Wallet WSGI app plus one deliberately slow route, to watch gunicorn drain a request."""

import time
from urllib.parse import parse_qs

from wallet_project.wsgi import application as wallet_application


def application(environ, start_response):
    if environ.get("PATH_INFO") == "/test-only/slow":
        seconds = float(parse_qs(environ.get("QUERY_STRING", "")).get("seconds", ["2"])[0])
        time.sleep(seconds)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"drained"]
    return wallet_application(environ, start_response)
