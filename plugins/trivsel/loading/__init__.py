"""From a municipal inbox to raw: discover, archive, register, parse, COPY, validate, decide.

Every file is archived as received, with its SHA-256, before anything else happens. Its rows are
COPYed under a new delivery_id while the delivery is `validating` (staging reads only `loaded`
deliveries, so nothing half-checked is ever visible). Then, in one transaction, it becomes `loaded`
and replaces the previous delivery of the same municipality, source, period and scheme, or it becomes
`quarantined` with every reason, and its raw rows are removed. A delivery that refers to another
delivery not loaded yet (a case review without its registry export) becomes `waiting` instead, and loads
when its partner does (trivsel.consistency).

One module per job, so each can be read, changed and tested without the others:

- discovery: the inbox's layout, the period lock, unroutable files;
- archiving: checksum, the archived copy, the row in audit.delivery;
- parsing: the scheme's Python parser, spooled and COPYed (the reference path);
- bulk: the set-based path (trivsel.sources.bulk), which falls back to parsing;
- decision: unchanged / duplicate, the deciding transaction, quarantine and its reasons, waiting partners,
  interrupted loads;
- validating: the loaded deliveries validated together (each raw table once, trivsel.validation.validate_batch)
  and decided one by one; in the DAG, one validate task for the whole run (validate_run);
- ingest: one file and one municipality's period through all of them, in order;
- outcome: what each file became; config_sync: config/municipalities.yml and the run's periods into the
  warehouse.

The names below are the package's interface (`from trivsel.loading import ingest_municipality`). A test
that replaces a function the loader calls patches the module that calls it (e.g. trivsel.loading.ingest
for discover and get_scheme), since replacing the name here does not change what that module looks up.
"""

from trivsel.loading.archiving import COPY_CHUNK, _register, archive, archive_to, checksum
from trivsel.loading.config_sync import record_period_run, sync_config
from trivsel.loading.decision import (
    _quarantine,
    _summarise,
    cleanup_interrupted,
    decide,
    readable_issues,
    reevaluate,
)
from trivsel.loading.discovery import (
    PERIOD_DIR_RE,
    Unroutable,
    discover,
    find_unroutable,
    holds_period_lock,
    inbox_dir,
    period_lock,
    period_lock_name,
    periods_with_deliveries,
    record_unroutable,
)
from trivsel.loading.ingest import ingest_file, ingest_municipality
from trivsel.loading.outcome import Outcome, summary_text
from trivsel.loading.parsing import SPOOL_BATCH, SPOOL_IN_MEMORY
from trivsel.loading.validating import (
    ANALYZE_FROM_ROWS,
    validate_and_decide,
    validate_run,
    wait_for_other_runs,
)

__all__ = [
    "ANALYZE_FROM_ROWS", "COPY_CHUNK", "PERIOD_DIR_RE", "SPOOL_BATCH", "SPOOL_IN_MEMORY", "Outcome", "Unroutable",
    "_quarantine", "_register", "_summarise", "archive", "archive_to", "checksum", "cleanup_interrupted",
    "decide", "discover", "find_unroutable", "holds_period_lock", "inbox_dir", "ingest_file",
    "ingest_municipality", "period_lock", "period_lock_name", "periods_with_deliveries", "readable_issues",
    "record_period_run", "record_unroutable", "reevaluate", "summary_text", "sync_config", "validate_and_decide",
    "validate_run", "wait_for_other_runs",
]
