"""Small actor programs with real concurrency bugs, and their corrected versions, for ``test_explore_bugs``.

Each ``buggy_*`` / ``fixed_*`` is an explore body: an ``async def`` taking no
arguments that opens its own system, runs the program and asserts what the
program promises. Every bug needs a particular order of message deliveries;
the order a plain ``trio.run`` takes is, by construction, the safe one
(see each program's docstring for why), so the plain test passes and only an
exploration finds the bug.

Why a plain run takes the safe order: outside exploration an actor handles
the messages already queued for it back to back (troupe yields to trio once
every 1024 messages), so a short backlog costs it no scheduling turn. Under
``explore`` every message is a scheduling point, as it is in production as
soon as a ``receive`` awaits anything (a database, a log, another actor):
the backlog then costs turns, and the other actors' messages can land in
between.
"""

from __future__ import annotations

from typing import Any

import troupe

# --- 1. A lost update through ask-then-tell --------------------------------------------------


@troupe.message
class Balance:
    pass


@troupe.message
class SetBalance:
    value: int


@troupe.message
class Add:
    """The fix: the account does the read-modify-write itself, in one message."""

    amount: int


AccountMsg = Balance | SetBalance | Add


class Account(troupe.Actor[AccountMsg]):
    def __init__(self) -> None:
        self.balance = 0

    async def receive(self, msg: AccountMsg) -> int | None:
        match msg:
            case Balance():
                return self.balance
            case SetBalance(value=value):
                self.balance = value
            case Add(amount=amount):
                self.balance += amount
                return self.balance
        return None


@troupe.message
class Hire:
    name: str


@troupe.message
class PaySalary:
    amount: int


class Payroll(troupe.Actor[Hire | PaySalary]):
    """Pays salaries into the account: reads the balance (ask), then writes the new one (tell)."""

    def __init__(self, account: troupe.ActorRef[AccountMsg], *, atomic: bool) -> None:
        self.account = account
        self.atomic = atomic
        self.staff: list[str] = []

    async def receive(self, msg: Hire | PaySalary) -> None:
        match msg:
            case Hire(name=name):
                self.staff.append(name)
            case PaySalary(amount=amount) if self.atomic:
                await self.account.ask(Add(amount))
            case PaySalary(amount=amount):
                balance = await self.account.ask(Balance())
                # another writer's update between the ask and this tell is overwritten
                await self.account.tell(SetBalance(balance + amount))


@troupe.message
class Price:
    item: str


class Catalog(troupe.Actor[Price]):
    async def receive(self, msg: Price) -> int:
        return {"tea": 3, "cake": 4}.get(msg.item, 10)


@troupe.message
class Buy:
    items: tuple[str, ...]


class Shop(troupe.Actor[Buy]):
    """Charges a purchase to the account: prices each item (an ask each), then ask-then-tell."""

    def __init__(
        self, account: troupe.ActorRef[AccountMsg], catalog: troupe.ActorRef[Price], *, atomic: bool
    ) -> None:
        self.account = account
        self.catalog = catalog
        self.atomic = atomic

    async def receive(self, msg: Buy) -> None:
        total = 0
        for item in msg.items:
            total += await self.catalog.ask(Price(item))
        if self.atomic:
            await self.account.ask(Add(-total))
            return
        balance = await self.account.ask(Balance())
        await self.account.tell(SetBalance(balance - total))


async def _lost_update(*, atomic: bool) -> None:
    """Payroll pays 100 while the shop charges 7 (tea and cake); the balance must end at 93.

    The payroll first files two hires, so its read-modify-write starts
    two messages late; the shop prices two items first. In a plain run the
    payroll handles the hires without yielding and its write lands before
    the shop reads; when the hires cost turns, the shop's read falls
    between the payroll's read and its write, and one update is lost.
    """
    async with troupe.open_system() as system:
        account = await system.spawn(Account, name="account")
        catalog = await system.spawn(Catalog, name="catalog")
        payroll = await system.spawn(lambda: Payroll(account, atomic=atomic), name="payroll")
        shop = await system.spawn(lambda: Shop(account, catalog, atomic=atomic), name="shop")
        payroll.tell_nowait(Hire("ada"))
        payroll.tell_nowait(Hire("bob"))
        payroll.tell_nowait(PaySalary(100))
        await shop.ask(Buy(("tea", "cake")))
        await payroll.ask(Hire("cyd"))  # behind the salary: it has been paid (or lost) by now
        balance = await account.ask(Balance())
        assert balance == 93, f"the balance is {balance}, not 100 - 7: an update was lost"


async def buggy_lost_update() -> None:
    await _lost_update(atomic=False)


async def fixed_lost_update() -> None:
    await _lost_update(atomic=True)


# --- 2. Check-then-act across two actors ---------------------------------------------------------


@troupe.message
class IsFree:
    seat: int


@troupe.message
class Take:
    seat: int


@troupe.message
class Claim:
    """The fix: check and take in one message to the actor that owns the seats."""

    seat: int


SeatsMsg = IsFree | Take | Claim


class Seats(troupe.Actor[SeatsMsg]):
    def __init__(self) -> None:
        self.taken: set[int] = set()

    async def receive(self, msg: SeatsMsg) -> bool | None:
        match msg:
            case IsFree(seat=seat):
                return seat not in self.taken
            case Take(seat=seat):
                self.taken.add(seat)
            case Claim(seat=seat):
                free = seat not in self.taken
                self.taken.add(seat)
                return free
        return None


@troupe.message
class Issue:
    seat: int
    buyer: str


@troupe.message
class Issued:
    pass


class BoxOffice(troupe.Actor[Issue | Issued]):
    """Issues tickets; tells the seats actor each seat it sold."""

    def __init__(self, seats: troupe.ActorRef[SeatsMsg]) -> None:
        self.seats = seats
        self.tickets: list[tuple[int, str]] = []

    async def receive(self, msg: Issue | Issued) -> list[tuple[int, str]] | None:
        match msg:
            case Issue(seat=seat, buyer=buyer):
                self.tickets.append((seat, buyer))
                await self.seats.tell(Take(seat))
            case Issued():
                return list(self.tickets)
        return None


@troupe.message
class Authorize:
    check: str


class Bank(troupe.Actor[Authorize]):
    async def receive(self, msg: Authorize) -> bool:
        return True


@troupe.message
class Browse:
    seat: int


@troupe.message
class Book:
    seat: int


class Buyer(troupe.Actor[Browse | Book]):
    """Books a seat: has the bank run its card checks, asks the seats actor, then the box office."""

    def __init__(
        self,
        name: str,
        seats: troupe.ActorRef[SeatsMsg],
        office: troupe.ActorRef[Issue | Issued],
        bank: troupe.ActorRef[Authorize],
        *,
        checks: int,
        atomic: bool,
    ) -> None:
        self.name = name
        self.seats = seats
        self.office = office
        self.bank = bank
        self.checks = checks
        self.atomic = atomic
        self.seen: list[int] = []

    async def receive(self, msg: Browse | Book) -> None:
        match msg:
            case Browse(seat=seat):
                self.seen.append(seat)
            case Book(seat=seat):
                for check in ("card", "address", "limit")[: self.checks]:
                    await self.bank.ask(Authorize(check))
                if self.atomic:
                    free = await self.seats.ask(Claim(seat))
                else:
                    free = await self.seats.ask(IsFree(seat))  # check on one actor ...
                if free:
                    await self.office.ask(Issue(seat, self.name))  # ... act on another


async def _double_booking(*, atomic: bool) -> None:
    """Alice and Bob both book seat 7; exactly one ticket may be issued for it.

    Alice browses three seats first; Bob's bank runs three card checks.
    In a plain run Alice handles her browsing without yielding, books, and
    the box office has told the seats actor that seat 7 is taken before Bob
    asks; when her browsing costs turns, Bob's check falls between hers
    and the box office's ``Take``, and both get a ticket.
    """
    async with troupe.open_system() as system:
        seats = await system.spawn(Seats, name="seats")
        office = await system.spawn(lambda: BoxOffice(seats), name="office")
        bank = await system.spawn(Bank, name="bank")

        def buyer(name: str, checks: int) -> Buyer:
            return Buyer(name, seats, office, bank, checks=checks, atomic=atomic)

        alice = await system.spawn(lambda: buyer("alice", 0), name="alice")
        bob = await system.spawn(lambda: buyer("bob", 3), name="bob")
        for seat in (3, 4, 5):
            alice.tell_nowait(Browse(seat))
        alice.tell_nowait(Book(7))
        await bob.ask(Book(7))
        await alice.ask(Browse(8))  # behind her booking: it is done
        tickets = [who for seat, who in await office.ask(Issued()) if seat == 7]
        assert len(tickets) == 1, f"seat 7 was sold to {tickets}"


async def buggy_double_booking() -> None:
    await _double_booking(atomic=False)


async def fixed_double_booking() -> None:
    await _double_booking(atomic=True)


# --- 3. An ordering assumption between two senders -----------------------------------------------


@troupe.message
class Open:
    session: str


@troupe.message
class Append:
    session: str
    line: str


@troupe.message
class Lines:
    session: str


JournalMsg = Open | Append | Lines


class Journal(troupe.Actor[JournalMsg]):
    """Keeps one log per session; a session must be opened before anything is appended to it."""

    def __init__(self) -> None:
        self.logs: dict[str, list[str]] = {}

    async def receive(self, msg: JournalMsg) -> list[str] | None:
        match msg:
            case Open(session=session):
                self.logs.setdefault(session, [])
            case Append(session=session, line=line):
                self.logs[session].append(line)  # KeyError if the Open has not arrived yet
            case Lines(session=session):
                return self.logs[session]
        return None


@troupe.message
class Login:
    session: str


@troupe.message
class Logout:
    session: str


class Sessions(troupe.Actor[Login | Logout]):
    """Opens each new session's log in the journal."""

    def __init__(self, journal: troupe.ActorRef[JournalMsg]) -> None:
        self.journal = journal
        self.live: set[str] = set()

    async def receive(self, msg: Login | Logout) -> None:
        match msg:
            case Login(session=session):
                self.live.add(session)
                await self.journal.tell(Open(session))
            case Logout(session=session):
                self.live.discard(session)


@troupe.message
class Setting:
    key: str


class Config(troupe.Actor[Setting]):
    async def receive(self, msg: Setting) -> str:
        return f"{msg.key}=on"


@troupe.message
class Start:
    session: str


class Worker(troupe.Actor[Start]):
    """Starts a session's job: reads its settings, then logs the start in the session's journal."""

    def __init__(self, journal: troupe.ActorRef[JournalMsg], config: troupe.ActorRef[Setting]) -> None:
        self.journal = journal
        self.config = config

    async def receive(self, msg: Start) -> None:
        verbose = await self.config.ask(Setting("verbose"))
        await self.journal.tell(Append(msg.session, f"started ({verbose})"))


class Gateway(troupe.Actor[Login]):
    """Logs a user in: tells the sessions actor (which opens the log), then the worker (which logs)."""

    def __init__(
        self, sessions: troupe.ActorRef[Login | Logout], worker: troupe.ActorRef[Start], *, wait: bool
    ) -> None:
        self.sessions = sessions
        self.worker = worker
        self.wait = wait

    async def receive(self, msg: Login) -> None:
        if self.wait:  # the fix: the Open is in the journal's mailbox once the sessions actor answers
            await self.sessions.ask(msg)
        else:
            # assumes the journal gets the sessions actor's Open before the worker's Append,
            # since the Login was sent first: nothing orders two senders' messages
            await self.sessions.tell(msg)
        await self.worker.tell(Start(msg.session))


async def _log_before_open(*, wait: bool) -> None:
    """A login opens the session's log (via the sessions actor), then starts its job (via the worker).

    The sessions actor first handles five earlier logouts. In a plain run it
    handles them without yielding and its ``Open`` reaches the journal
    well before the worker, which reads a setting first, appends; when the
    logouts cost turns, the ``Append`` can arrive first: the journal fails
    on it and the line is lost.
    """
    async with troupe.open_system() as system:
        journal = await system.spawn(Journal, name="journal")
        config = await system.spawn(Config, name="config")
        sessions = await system.spawn(lambda: Sessions(journal), name="sessions")
        worker = await system.spawn(lambda: Worker(journal, config), name="worker")
        gateway = await system.spawn(lambda: Gateway(sessions, worker, wait=wait), name="gateway")
        for earlier in range(5):
            sessions.tell_nowait(Logout(f"s{earlier}"))
        await gateway.ask(Login("s9"))
        await worker.ask(Start("s9"))  # behind the first Start, from the same sender: that one was handled
        lines = await journal.ask(Lines("s9"))
        assert lines == ["started (verbose=on)"] * 2, f"the journal holds {lines}: a line was lost"


async def buggy_log_before_open() -> None:
    await _log_before_open(wait=False)


async def fixed_log_before_open() -> None:
    await _log_before_open(wait=True)


# --- 4. A circular ask that deadlocks ------------------------------------------------------------


@troupe.message
class Deposit:
    amount: int


@troupe.message
class Transfer:
    to: troupe.ActorRef[Any]
    amount: int


@troupe.message
class Statement:
    pass


WalletMsg = Deposit | Transfer | Statement


class Wallet(troupe.Actor[WalletMsg]):
    """Moves money to another wallet: takes it out, then asks the other wallet to deposit it."""

    def __init__(self, balance: int, *, ask_timeout: float | None, wait: bool = True) -> None:
        self.balance = balance
        self.ask_timeout = ask_timeout
        self.wait = wait
        self.statements = 0

    async def receive(self, msg: WalletMsg) -> int | None:
        match msg:
            case Deposit(amount=amount):
                self.balance += amount
            case Transfer(to=to, amount=amount) if self.wait:
                self.balance -= amount
                # waits for the other wallet while holding this one: if the other is in
                # its own Transfer to this one, each waits for the other for ever
                await to.ask(Deposit(amount), timeout=self.ask_timeout)
            case Transfer(to=to, amount=amount):
                self.balance -= amount
                await to.tell(Deposit(amount))  # the fix: queued, nothing waited for
            case Statement():
                self.statements += 1
        return self.balance


@troupe.message
class Due:
    pass


class StandingOrder(troupe.Actor[Due]):
    """Pays rent from one wallet to another when due; the bank checks the order first."""

    def __init__(
        self,
        bank: troupe.ActorRef[Authorize],
        source: troupe.ActorRef[WalletMsg],
        to: troupe.ActorRef[WalletMsg],
    ) -> None:
        self.bank = bank
        self.source = source
        self.to = to

    async def receive(self, msg: Due) -> None:
        await self.bank.ask(Authorize("standing order"))
        await self.source.ask(Transfer(self.to, 30), timeout=None)


async def _crossed_transfers(*, ask_timeout: float | None, wait: bool) -> None:
    """Ann pays Ben 50 while Ben's standing order pays Ann 30; both then hold what they should.

    Ann first prints two statements; the bank checks the standing order
    first. In a plain run Ann's transfer has been deposited at Ben's before
    Ben's starts; when the statements cost turns, both wallets are in
    their ``Transfer`` at once, each asking the other: with no ask timeout
    that is a deadlock; with one, both asks time out.
    """
    async with troupe.open_system() as system:
        ann = await system.spawn(lambda: Wallet(100, ask_timeout=ask_timeout, wait=wait), name="ann")
        ben = await system.spawn(lambda: Wallet(100, ask_timeout=ask_timeout, wait=wait), name="ben")
        bank = await system.spawn(Bank, name="bank")
        rent = await system.spawn(lambda: StandingOrder(bank, ben, ann), name="rent")
        ann.tell_nowait(Statement())
        ann.tell_nowait(Statement())
        ann.tell_nowait(Transfer(ben, 50))
        await rent.ask(Due(), timeout=None)
        await ann.ask(Statement(), timeout=None)  # behind her transfer: it is done
        assert await ann.ask(Statement()) == 100 - 50 + 30
        assert await ben.ask(Statement()) == 100 + 50 - 30


async def buggy_crossed_transfers_hang() -> None:
    await _crossed_transfers(ask_timeout=None, wait=True)


async def buggy_crossed_transfers_timeout() -> None:
    await _crossed_transfers(ask_timeout=5.0, wait=True)


async def fixed_crossed_transfers() -> None:
    await _crossed_transfers(ask_timeout=None, wait=False)


# --- 5. A race between a restart and a message ---------------------------------------------------


@troupe.message
class SignIn:
    user: str


@troupe.message
class Fetch:
    token: int


@troupe.message
class Reload:
    config: str


ServerMsg = SignIn | Fetch | Reload


class Server(troupe.Actor[ServerMsg]):
    """Hands out session tokens and serves data for them; a bad config makes it fail (and restart).

    Its sessions live in ``sessions``: a fresh dict per instance (the bug: a
    restart forgets every session), or one the factory hands to every
    instance (the fix: they outlive a restart).
    """

    def __init__(self, sessions: dict[int, str] | None = None) -> None:
        self.sessions = {} if sessions is None else sessions
        self.config = "v1"

    async def receive(self, msg: ServerMsg) -> int | str | None:
        match msg:
            case SignIn(user=user):
                token = len(self.sessions) + 1
                self.sessions[token] = user
                return token
            case Fetch(token=token):
                return f"{self.sessions[token]}'s data"  # KeyError for a session the restart forgot
            case Reload(config=config):
                if not config.startswith("v"):
                    msg_ = f"bad config {config!r}"
                    raise ValueError(msg_)
                self.config = config
        return None


@troupe.message
class Visit:
    user: str


@troupe.message
class Bookmark:
    page: str


class Client(troupe.Actor[Visit | Bookmark]):
    """Signs in, looks the user's profile up, then fetches the user's data with the token."""

    def __init__(self, server: troupe.ActorRef[ServerMsg], profiles: troupe.ActorRef[Price]) -> None:
        self.server = server
        self.profiles = profiles
        self.bookmarks: list[str] = []

    async def receive(self, msg: Visit | Bookmark) -> str | None:
        if isinstance(msg, Bookmark):
            self.bookmarks.append(msg.page)
            return None
        token = await self.server.ask(SignIn(msg.user))
        await self.profiles.ask(Price(msg.user))
        page: str | None = await self.server.ask(Fetch(token))  # assumes the session is still there
        return page


@troupe.message
class Deploy:
    config: str


class Admin(troupe.Actor[Deploy]):
    """Deploys a config to the server once the approval service has run its three checks on it."""

    def __init__(self, server: troupe.ActorRef[ServerMsg], approvals: troupe.ActorRef[Authorize]) -> None:
        self.server = server
        self.approvals = approvals

    async def receive(self, msg: Deploy) -> None:
        for check in ("syntax", "owner", "window"):
            await self.approvals.ask(Authorize(f"{check} of {msg.config}"))
        await self.server.tell(Reload(msg.config))


async def _restart_race(*, shared: bool) -> None:
    """An admin deploys a bad config (the server fails and is restarted) while a client visits.

    The client first files two bookmarks. In a plain run it files them
    without yielding, and has signed in and fetched before the ``Reload``
    reaches the server; when the bookmarks cost turns, the restart falls
    between its sign-in and its fetch, and the fetch fails: the restarted
    server has forgotten the session.
    """
    async with troupe.open_system() as system:
        sessions: dict[int, str] = {}
        server = await system.spawn(lambda: Server(sessions if shared else None), name="server")
        profiles = await system.spawn(Catalog, name="profiles")
        approvals = await system.spawn(Bank, name="approvals")
        client = await system.spawn(lambda: Client(server, profiles), name="client")
        admin = await system.spawn(lambda: Admin(server, approvals), name="admin")
        client.tell_nowait(Bookmark("/news"))
        client.tell_nowait(Bookmark("/shop"))
        admin.tell_nowait(Deploy("oops"))
        assert await client.ask(Visit("ann")) == "ann's data"
        await admin.ask(Deploy("v2"))  # its Reload is queued behind the bad one's ...
        await server.ask(SignIn("zed"))  # ... and this behind both: the server has failed and restarted
        restarts = server.statistics().restarts
        assert restarts == 1, f"the server was restarted {restarts} times, not once"


async def buggy_restart_race() -> None:
    await _restart_race(shared=False)


async def fixed_restart_race() -> None:
    await _restart_race(shared=True)


# --- 6. A depth-2 ordering bug (for PCT against random) -------------------------------------------


@troupe.message
class Lap:
    runner: str
    number: int


@troupe.message
class Standings:
    pass


class Scoreboard(troupe.Actor[Lap | Standings]):
    """Records who finished each lap first, and how many laps in a row each lead lasted.

    The bug: it keeps a histogram of lead lengths with room for leads of up
    to ``longest - 1`` laps ("nobody leads that long"). A lead of ``longest``
    laps that then changes hands overflows it: one runner must finish each of
    the first ``longest`` laps first, then the other one the next lap.
    """

    def __init__(self, longest: int) -> None:
        self.first: dict[int, str] = {}
        self.leader: str | None = None
        self.lead = 0
        self.leads = [0] * longest

    async def receive(self, msg: Lap | Standings) -> dict[int, str] | None:
        match msg:
            case Lap(runner=runner, number=number) if number not in self.first:
                self.first[number] = runner
                if runner == self.leader:
                    self.lead += 1
                else:
                    if self.leader is not None:
                        self.leads[self.lead] += 1  # IndexError after a lead of `longest` laps
                    self.leader = runner
                    self.lead = 1
            case Standings():
                return dict(self.first)
        return None


@troupe.message
class Race:
    laps: int


class Runner(troupe.Actor[Race]):
    """Reports each lap to the scoreboard as it finishes it."""

    def __init__(self, name: str, board: troupe.ActorRef[Lap | Standings]) -> None:
        self.name = name
        self.board = board

    async def receive(self, msg: Race) -> None:
        for number in range(1, msg.laps + 1):
            await self.board.tell(Lap(self.name, number))


def lead_change_race(longest: int) -> Any:
    """A body: two runners race ``longest + 1`` laps; a lead of ``longest`` laps, then a change, breaks it."""

    async def race() -> None:
        async with troupe.open_system() as system:
            board = await system.spawn(lambda: Scoreboard(longest), name="board")
            ann = await system.spawn(lambda: Runner("ann", board), name="ann")
            ben = await system.spawn(lambda: Runner("ben", board), name="ben")
            ann.tell_nowait(Race(longest + 1))  # both start in the same turn
            ben.tell_nowait(Race(longest + 1))
            await ann.ask(Race(0))
            await ben.ask(Race(0))
            standings = await board.ask(Standings())
            assert len(standings) == longest + 1, f"the scoreboard failed and lost laps: {standings}"

    return race
