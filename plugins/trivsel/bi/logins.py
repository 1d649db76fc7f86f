"""Warehouse logins for the BI tool: members of bi_reader and of each municipality_<code>.

bi_reader and municipality_<code> are group roles (NOLOGIN, trivsel.roles): people and tools log in with a
login role of their own and are made members of one group. Superset gets one login per connection:

    bi_superset                  member of bi_reader: marts, reporting, certified; every municipality's rows
    bi_superset_<code>           member of municipality_<code>: marts only, only <code>'s rows (row-level
                                 security of the table, whatever the query)

A login is a member of exactly one group and owns nothing, so row-level security applies to it. Passwords are
generated (trivsel.bi.secrets). A Power BI or Qlik login is made the same way (README, "BI tools").
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

import psycopg
from psycopg import sql

from trivsel import roles, warehouse
from trivsel.bi import credentials
from trivsel.config import load_config

BI_LOGIN = "bi_superset"


def municipality_login(code: str) -> str:
    return f"bi_superset_{code}"


def logins() -> dict[str, str]:
    """{login: the group role it is a member of}, for bi_reader and every configured municipality."""
    out = {BI_LOGIN: roles.BI_READER}
    for code in load_config().codes:
        out[municipality_login(code)] = roles.municipality_role(code)
    return out


def ensure() -> dict[str, str]:
    """Create or update every BI login (LOGIN, password, membership of its one group). Idempotent."""
    wanted = logins()
    with psycopg.connect(warehouse.url(), autocommit=True) as conn:
        for login, group in wanted.items():
            ident = sql.Identifier(login)
            pw = sql.Literal(credentials.secret(f"warehouse_{login}"))
            if conn.execute("select 1 from pg_roles where rolname = %s", (login,)).fetchone():
                conn.execute(sql.SQL("alter role {} login inherit nosuperuser nocreaterole nocreatedb "
                                     "nobypassrls password {}").format(ident, pw))
            else:
                conn.execute(sql.SQL("create role {} login inherit password {}").format(ident, pw))
            others = [r[0] for r in conn.execute(
                """select g.rolname from pg_auth_members m join pg_roles g on g.oid = m.roleid
                   join pg_roles u on u.oid = m.member where u.rolname = %s and g.rolname <> %s""",
                (login, group))]
            for other in others:  # exactly one group: what the login sees is what that group sees
                conn.execute(sql.SQL("revoke {} from {}").format(sql.Identifier(other), ident))
            conn.execute(sql.SQL("grant {} to {}").format(sql.Identifier(group), ident))
    return wanted


def login_url(login: str, driver: str = "postgresql") -> str:
    """A URL of the warehouse as `login` (for Superset: driver postgresql+psycopg2)."""
    parts = urlsplit(warehouse.url())
    pw = quote(credentials.secret(f"warehouse_{login}"), safe="")
    netloc = f"{login}:{pw}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(scheme=driver, netloc=netloc).geturl()
