"""Hemi's Task Service: task ids, actions and handlers by type, named dependencies, task lists."""

from .._errors import TaskListError as TaskListError
from .._errors import TaskServiceError as TaskServiceError
from ._handle import DependencyHandle as DependencyHandle
from ._handle import TaskService as TaskService
from ._handle import new_task_service as new_task_service
from ._model import DependencyReturned as DependencyReturned
from ._model import ServiceTask as ServiceTask
from ._model import StuckTask as StuckTask
from ._model import TaskEvent as TaskEvent
from ._model import TaskState as TaskState
from ._model import TaskStateChanged as TaskStateChanged
