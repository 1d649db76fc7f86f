"""Superset's configuration (SUPERSET_CONFIG_PATH), read by Superset's own interpreter: no trivsel import.

Everything secret or machine-specific comes from the environment trivsel.bi.server gives the process: the
metadata database (a database `superset` in the warehouse's server), the generated secret key.
"""

import os

SQLALCHEMY_DATABASE_URI = os.environ["TRIVSEL_SUPERSET_METADATA_URL"]
SECRET_KEY = os.environ["TRIVSEL_SUPERSET_SECRET_KEY"]
# Offline machine, and nobody asked to be tracked.
SCARF_ANALYTICS = False
# A laptop server on 127.0.0.1 (no TLS): Talisman's HTTPS-only content policy would block the UI.
TALISMAN_ENABLED = False
# Dashboards list the municipality's own rows; the result cache must never serve one login's rows to another
# login: every connection is its own database in Superset, and caching is off.
DATA_CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
FEATURE_FLAGS = {"DASHBOARD_RBAC": False, "EMBEDDED_SUPERSET": False}
ROW_LIMIT = 50000
SQLLAB_TIMEOUT = 120
SUPERSET_WEBSERVER_TIMEOUT = 120
# Charts render in the browser from the bundled assets (the wheel ships them): no CDN.
PREVENT_UNSAFE_DB_CONNECTIONS = True
LOG_LEVEL = "INFO"
