"""troupe: actors and tasks on trio, with typed, immutable messages.

Everything public is importable from here:

```python
import troupe

async with troupe.open_system() as system:
    ref = await system.spawn(MyActor)
```
"""

from ._util import fixup_module_metadata as _fixup_module_metadata
from .actors import Actor as Actor
from .actors import ActorContext as ActorContext
from .actors import ActorCrashed as ActorCrashed
from .actors import ActorFailed as ActorFailed
from .actors import ActorRef as ActorRef
from .actors import ActorStatistics as ActorStatistics
from .actors import ActorStopped as ActorStopped
from .actors import ActorSystem as ActorSystem
from .actors import AskTimeout as AskTimeout
from .actors import Backoff as Backoff
from .actors import DeadLetters as DeadLetters
from .actors import EventBus as EventBus
from .actors import FromThread as FromThread
from .actors import JobObserver as JobObserver
from .actors import JobStoreError as JobStoreError
from .actors import Mailbox as Mailbox
from .actors import MailboxFull as MailboxFull
from .actors import MessageTypeError as MessageTypeError
from .actors import NameTaken as NameTaken
from .actors import OneForAll as OneForAll
from .actors import OneForOne as OneForOne
from .actors import Overflow as Overflow
from .actors import Ref as Ref
from .actors import Reply as Reply
from .actors import Restart as Restart
from .actors import RestForOne as RestForOne
from .actors import SpawnError as SpawnError
from .actors import SupervisorStrategy as SupervisorStrategy
from .actors import SystemStatistics as SystemStatistics
from .actors import Timers as Timers
from .actors import current_actor as current_actor
from .actors import current_system as current_system
from .cluster import Cluster as Cluster
from .cluster import ClusterError as ClusterError
from .cluster import ClusterHandle as ClusterHandle
from .cluster import ClusterMember as ClusterMember
from .cluster import ClusterStatistics as ClusterStatistics
from .cluster import NatsServer as NatsServer
from .cluster import RemoteError as RemoteError
from .cluster import RemoteRef as RemoteRef
from .cluster import UnreadableMessage as UnreadableMessage
from .cluster import open_system as open_system
from .jobs import JobRecord as JobRecord
from .jobs import Jobs as Jobs
from .jobs import JobStatus as JobStatus
from .jobs import JobStore as JobStore
from .jobs import MemoryJobStore as MemoryJobStore
from .jobs import SQLiteJobStore as SQLiteJobStore
from .jobs import report_progress as report_progress
from .jobs import submit_job as submit_job
from .protocol import BusEvent as BusEvent
from .protocol import DeadLetter as DeadLetter
from .protocol import DeadLetterReason as DeadLetterReason
from .protocol import DecodeError as DecodeError
from .protocol import Terminated as Terminated
from .protocol import TroupeError as TroupeError
from .protocol import codec as codec
from .protocol import message as message
from .protocol import wire_name as wire_name
from .tasks import AllOf as AllOf
from .tasks import AnyOf as AnyOf
from .tasks import ChannelClosed as ChannelClosed
from .tasks import ChannelEvent as ChannelEvent
from .tasks import CommandResult as CommandResult
from .tasks import DaskExecutor as DaskExecutor
from .tasks import DependencyHandle as DependencyHandle
from .tasks import DependencyReturned as DependencyReturned
from .tasks import Executor as Executor
from .tasks import ForceStop as ForceStop
from .tasks import InlineExecutor as InlineExecutor
from .tasks import Interruptible as Interruptible
from .tasks import LimitReached as LimitReached
from .tasks import Milestone as Milestone
from .tasks import MilestoneAchieved as MilestoneAchieved
from .tasks import NamedError as NamedError
from .tasks import NotWaitable as NotWaitable
from .tasks import ProcessExecutor as ProcessExecutor
from .tasks import Repeatable as Repeatable
from .tasks import RepeatTimer as RepeatTimer
from .tasks import RunOn as RunOn
from .tasks import ServiceTask as ServiceTask
from .tasks import StuckTask as StuckTask
from .tasks import TaskCancelled as TaskCancelled
from .tasks import TaskChannel as TaskChannel
from .tasks import TaskContext as TaskContext
from .tasks import TaskCounter as TaskCounter
from .tasks import TaskEvent as TaskEvent
from .tasks import TaskFailed as TaskFailed
from .tasks import TaskFinished as TaskFinished
from .tasks import TaskHandle as TaskHandle
from .tasks import TaskKind as TaskKind
from .tasks import TaskListError as TaskListError
from .tasks import TaskManager as TaskManager
from .tasks import TaskManagerError as TaskManagerError
from .tasks import TaskService as TaskService
from .tasks import TaskServiceError as TaskServiceError
from .tasks import TaskState as TaskState
from .tasks import TaskStateChanged as TaskStateChanged
from .tasks import TaskStateError as TaskStateError
from .tasks import ThreadExecutor as ThreadExecutor
from .tasks import all_of as all_of
from .tasks import any_of as any_of
from .tasks import cull_idle_workers as cull_idle_workers
from .tasks import current_task as current_task
from .tasks import delay_task as delay_task
from .tasks import immediate_task as immediate_task
from .tasks import make_task_async as make_task_async
from .tasks import new_counter as new_counter
from .tasks import new_milestone as new_milestone
from .tasks import new_task_service as new_task_service
from .tasks import on_cancellation as on_cancellation
from .tasks import on_cancellation_return as on_cancellation_return
from .tasks import open_task_manager as open_task_manager
from .tasks import run_async_task as run_async_task
from .tasks import run_command as run_command
from .tasks import run_task as run_task
from .tasks import running_tasks as running_tasks
from .tasks import schedule_async_task as schedule_async_task
from .tasks import schedule_task as schedule_task
from .tasks import use_executor as use_executor
from .tasks import wait_all as wait_all
from .tasks import wait_any as wait_any
from .testing import ExploreError as ExploreError
from .testing import ExploreSummary as ExploreSummary
from .testing import ScheduleFailure as ScheduleFailure
from .testing import ScheduleHang as ScheduleHang
from .testing import TestProbe as TestProbe
from .testing import explore as explore
from .testing import inject_failure as inject_failure

__version__ = "0.1.0"

_fixup_module_metadata(__name__, globals())
del _fixup_module_metadata
