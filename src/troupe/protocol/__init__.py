"""Typed, immutable messages: ``@message``, system messages and the codec."""

from . import codec as codec
from ._errors import DecodeError as DecodeError
from ._errors import TroupeError as TroupeError
from ._message import message as message
from ._message import wire_name as wire_name
from ._system import BusEvent as BusEvent
from ._system import DeadLetter as DeadLetter
from ._system import DeadLetterReason as DeadLetterReason
from ._system import Terminated as Terminated
