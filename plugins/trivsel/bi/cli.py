"""`trivsel bi up|down|status|provision` (`make bi` = up, `make bi-down` = down)."""

from __future__ import annotations

import json

from trivsel import warehouse
from trivsel.bi import credentials, server


def up() -> int:
    """Warehouse, Superset's venv and metadata database, the server, then provisioning; prints where to look."""
    from trivsel.bi import provision

    warehouse.start()
    server.ensure_venv()
    server.ensure_metadata()
    url = server.start()
    summary = provision.provision()
    print(f"Superset: {url}/dashboard/list/")
    print(f"  admin login: {server.ADMIN}, password in {credentials.secret_file('superset_admin')}")
    for conn in provision.connections():
        boards = summary[conn.database_name]["dashboards"]
        print(f"  {conn.superset_user:<14} ({conn.label}): password in "
              f"{credentials.secret_file('superset_user_' + conn.superset_user)}; "
              f"dashboards {', '.join(f'{url}/superset/dashboard/{slug}/' for slug in boards)}")
    print(f"stop it with `make bi-down` (log: {server.log_file()})")
    return 0


def main(action: str) -> int:
    if action == "up":
        return up()
    if action == "provision":
        from trivsel.bi import provision

        print(json.dumps(provision.provision(), indent=2))
        return 0
    return server.main(action)
