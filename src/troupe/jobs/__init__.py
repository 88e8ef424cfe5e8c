"""Persistent jobs (Grassroots' JobsManager): job records in a store that outlives the process."""

from ..actors import JobObserver as JobObserver
from ..actors import JobStoreError as JobStoreError
from ..tasks._jobs import report_progress as report_progress
from ..tasks._jobs import submit_job as submit_job
from ._jobs import Jobs as Jobs
from ._jobs import open_system as open_system
from ._record import JobRecord as JobRecord
from ._record import JobStatus as JobStatus
from ._sqlite import SQLiteJobStore as SQLiteJobStore
from ._store import JobStore as JobStore
from ._store import MemoryJobStore as MemoryJobStore
