"""Lua scripts run in Redis by their SHA1, the text sent only when Redis does not know it."""

import hashlib

from redis.exceptions import NoScriptError

_shas: dict[str, str] = {}


def run_script(client, source: str, *, keys: list, args: list):
    """Run the Lua `source` with `keys` and `args` (`EVALSHA`); its reply.

    One command, sent as it is: redis-py's `Script` objects take several layers of calls
    per run, and this runs on every request (throttles, counters). After a Redis restart
    or `SCRIPT FLUSH` the script is loaded again and run once more.
    """
    sha = _shas.get(source)
    if sha is None:
        sha = _shas[source] = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
    try:
        return client.execute_command("EVALSHA", sha, len(keys), *keys, *args)
    except NoScriptError:
        client.script_load(source)
        return client.execute_command("EVALSHA", sha, len(keys), *keys, *args)
