"""Superset's roles and users, run by Superset's own interpreter in its app context (no trivsel import).

Reads a JSON document on stdin:

    {"roles": [{"name": "Kommune 461", "databases": ["trivsel_municipality_461"]}, ...],
     "users": [{"username": "kommune_461", "password": "...", "role": "Kommune 461", ...}, ...]}

Each role is Superset's Gamma (read dashboards and charts) plus `database_access` on exactly the connections
named: a municipality's Superset login can only run queries through its municipality's warehouse login, so
what it sees is decided by that database role's row-level security, not by a Superset filter. Idempotent:
roles are reset to Gamma + their databases, users to their one role and the given password.
Why not Superset's REST API: the role/permission API needs FAB_ADD_SECURITY_API and permission ids looked up
one by one; the security manager does the same in a few lines.
"""

import json
import sys


def main() -> int:
    if "--admin-from-env" in sys.argv:  # docker-compose's superset service: the admin login from .env
        import os

        spec = {"users": [{"username": "admin", "password": os.environ["TRIVSEL_BI_SUPERSET_ADMIN"],
                           "role": "Admin", "first_name": "trivsel", "last_name": "admin"}]}
    else:
        spec = json.load(sys.stdin)
    from superset.app import create_app

    app = create_app()
    with app.app_context():
        from superset import db
        from superset import security_manager as sm
        from superset.models.core import Database

        gamma = sm.find_role("Gamma")
        for r in spec.get("roles", []):
            role = sm.find_role(r["name"]) or sm.add_role(r["name"])
            perms = list(gamma.permissions)
            for name in r["databases"]:
                database = db.session.query(Database).filter_by(database_name=name).one()
                pv = sm.add_permission_view_menu("database_access", database.perm)
                perms.append(pv)
            role.permissions = perms
            db.session.commit()
        for u in spec.get("users", []):
            role = sm.find_role(u["role"])
            user = sm.find_user(username=u["username"])
            if user is None:
                user = sm.add_user(u["username"], u.get("first_name", u["username"]),
                                   u.get("last_name", "trivsel"), u.get("email", f"{u['username']}@trivsel.invalid"),
                                   role, password=u["password"])
                if not user:
                    print(f"could not create Superset user {u['username']}", file=sys.stderr)
                    return 1
            else:
                user.roles = [role]
                user.active = True
                db.session.commit()
                sm.reset_password(user.id, u["password"])
            db.session.commit()
    print(json.dumps({"roles": [r["name"] for r in spec.get("roles", [])],
                      "users": [u["username"] for u in spec.get("users", [])]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
