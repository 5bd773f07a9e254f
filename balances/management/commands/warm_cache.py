"""Read the balances of recently active accounts (or of named users) into the balance cache."""

from django.core.management.base import BaseCommand

from balances import cache


class Command(BaseCommand):
    help = (
        "Read the current balances of the accounts active in the last "
        "BALANCE_CACHE_WARM_WINDOW_SECONDS (or of --user ids) into the Redis balance cache."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--user", type=int, action="append", default=[], help="a user id")

    def handle(self, *args, **options) -> None:
        users = options["user"]
        written = cache.warm(users) if users else cache.warm_recent()
        self.stdout.write(f"balance cache warmed: {written} accounts written")
