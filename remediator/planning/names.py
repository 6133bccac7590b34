"""Names beside ids: what a person reads says "Alice Example · alice@contoso.example (9d2c5e7f-…)".

A reviewer cannot judge "revoke Owner of 9d2c5e7f-…" or "Azure Policy non-compliance: 0b60c0b2-…".
Every text a person reads (a plan, a Slack message, the console, the audit's human view, the
evidence report) goes through one ``Names`` made for the whole batch:

1. ``wanted(texts)`` finds what could be named: standalone GUIDs (a principal's object id, a built-in
   policy definition's name) and policy (set) definition ids
   (``[/subscriptions/…|/providers/Microsoft.Management/managementGroups/…]/providers/Microsoft.Authorization/
   policy[Set]Definitions/<name>``). A GUID inside a path (a role assignment's name in its id, a
   subscription in a resource id) is part of that id, never named on its own.
2. ``NameResolver.resolve`` looks them all up at once: built-in policy definitions from the catalog
   (``remediator.playbooks.catalog``, offline), other definitions through the state reader (an ARM
   GET, cached by ``LiveState``; saved definitions offline), the rest through Microsoft Graph
   (``remediator.azure.directory``: one ``getByIds`` per 1,000 ids). Answers, found or not, are kept
   ``ttl`` (the setting ``names_ttl``); a failure is not kept, but Graph is left alone for
   ``pause`` seconds after one, so that messages do not each wait for a timeout while it is down.
3. ``Names.annotate(text)`` puts the name before each id it knows: ``name (id)``. Ids it does not
   know stay as they are. ``Names.to_json(texts)`` is what JSON outputs add beside the ids.

If Graph or ARM cannot be reached, the ids are shown and ``Names.problems`` holds one line per source
(never one per id), which the caller shows once; nothing fails for a missing name.

Display names are user-controlled (anyone who can create a group or an app registration names it):
``label`` makes one line of them, drops format characters (bidirectional overrides that would make a
name read backwards) and caps them at ``NAME_MAX`` characters. Slack escaping stays the adapter's
(``bot.blocks.esc`` runs over the annotated text).
"""

from __future__ import annotations

import logging
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from remediator.azure.directory import DirectoryClient, Principal
from remediator.errors import NamesUnavailable, RemediatorError, one_line

log = logging.getLogger("remediator.planning.names")
T = TypeVar("T")

NAME_MAX = 120  # characters of a display name as shown (they are user-controlled; a policy name fits)
DEFAULT_TTL = timedelta(hours=1)
FAILURE_PAUSE = 60.0  # seconds Graph is not asked again after it failed
CACHE_MAX = 100_000  # names (and absences) kept at most; a long-running server drops the expired first
_GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_SEGMENT = r"[^/\s\"'`()<>,;]+"
_DEFINITION = (rf"(?:/subscriptions/{_SEGMENT}|/providers/Microsoft\.Management/managementGroups/{_SEGMENT})?"
               rf"/providers/Microsoft\.Authorization/policy(?:Set)?Definitions/{_SEGMENT}")
_TOKEN = re.compile(rf"(?P<definition>{_DEFINITION})|(?<![\w/.\-])(?P<guid>{_GUID})(?![\w\-])", re.IGNORECASE)
_BUILT_IN = "/providers/microsoft.authorization/policydefinitions/"


class DefinitionReader(Protocol):
    """What reads a policy (set) definition by id: any ``StateReader`` (``LiveState``, saved state)."""

    def get(self, resource_id: str) -> dict[str, Any] | None: ...


def label(display_name: str, detail: str | None = None) -> str:
    """A display name (and what tells it apart) as one safe line of at most ``NAME_MAX`` characters."""
    def clean(text: str) -> str:
        return "".join(c for c in one_line(text, None) if unicodedata.category(c) != "Cf")

    name = clean(display_name)
    extra = clean(detail) if detail else ""
    text = f"{name} · {extra}" if name and extra and extra.lower() != name.lower() else name
    return one_line(text, NAME_MAX)


@dataclass(frozen=True, kw_only=True, slots=True)
class Name:
    """What one id is called: ``kind`` user, group, servicePrincipal, managedIdentity, policyDefinition
    or policySetDefinition; ``detail`` a UPN, app id or mail."""

    id: str
    kind: str
    display_name: str
    detail: str | None = None

    @property
    def label(self) -> str:
        return label(self.display_name, self.detail)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "displayName": self.display_name}
        if self.detail:
            out["detail"] = self.detail
        return out

    @classmethod
    def of(cls, p: Principal) -> Name:
        return cls(id=p.id, kind=p.kind, display_name=p.display_name, detail=p.detail)


@dataclass(frozen=True, kw_only=True)
class Wanted:
    """What a batch of texts could have named: object ids (standalone GUIDs) and definition ids, lower case."""

    guids: frozenset[str] = frozenset()
    definitions: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.guids or self.definitions)


def wanted(texts: Iterable[str | None]) -> Wanted:
    guids: set[str] = set()
    definitions: set[str] = set()
    for text in texts:
        for m in _TOKEN.finditer(text or ""):
            if m.group("definition"):
                definitions.add(m.group("definition").lower())
            else:
                guids.add(m.group("guid").lower())
    return Wanted(guids=frozenset(guids), definitions=frozenset(definitions))


@dataclass(frozen=True, kw_only=True)
class Names:
    """The names of one batch (``by_id``: lower-case id → ``Name``) and what could not be looked up
    (``problems``: at most one line per source)."""

    by_id: Mapping[str, Name] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    def get(self, some_id: str) -> Name | None:
        return self.by_id.get(some_id.strip().lower())

    def annotate(self, text: str) -> str:
        """``text`` with ``name (id)`` for each id this batch knows (see the module docstring); idempotent."""
        if not self.by_id or not text:
            return text

        def sub(m: re.Match[str]) -> str:
            token = m.group(0)
            name = self.by_id.get(token.lower())
            if name is None:
                return token
            shown = name.label
            if not shown or text.endswith(f"{shown} (", 0, m.start()):  # already annotated
                return token
            return f"{shown} ({token})"

        return _TOKEN.sub(sub, text)

    def to_json(self, texts: Iterable[str | None] | None = None) -> dict[str, dict[str, Any]]:
        """``{id: {kind, displayName, detail}}`` of the ids in ``texts`` (all known ones when None)."""
        if texts is None:
            return {k: v.to_json() for k, v in sorted(self.by_id.items())}
        want = wanted(texts)
        keys = sorted(k for k in (*want.guids, *want.definitions) if k in self.by_id)
        return {k: self.by_id[k].to_json() for k in keys}

    def __bool__(self) -> bool:
        return bool(self.by_id)


NO_NAMES = Names()
_CURRENT: ContextVar[Names | None] = ContextVar("remediator_names", default=None)


@contextmanager
def naming(names: Names | None) -> Iterator[None]:
    """While inside, ``named(text)`` annotates with ``names``: the renderers of every adapter (Slack's
    ``bot.blocks.esc``/``plain``, the terminal's ``briefs.printable``) call it on the text they show,
    so one batch's names reach every line without each renderer taking a parameter."""
    token = _CURRENT.set(names if names else None)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def current() -> Names | None:
    """The names of the batch being rendered (``naming``), None outside one."""
    return _CURRENT.get()


def named(text: str) -> str:
    """``text`` annotated with the names of the batch being rendered (``naming``); as is outside one."""
    names = _CURRENT.get()
    return names.annotate(text) if names is not None else text


def not_principals(findings: Iterable[Mapping[str, Any]]) -> set[str]:
    """GUIDs of findings that name no principal: their ``type`` (an assessment key, a policy definition's
    name) and subscription ids (``resolve(skip=…)``)."""
    out: set[str] = set()
    for f in findings:
        for key in ("type", "subscription_id"):
            value = f.get(key)
            if isinstance(value, str) and value:
                out.add(value.lower())
        rid = f.get("resource_id")
        if isinstance(rid, str) and rid.lower().startswith("/subscriptions/"):
            out.add(rid.split("/")[2].lower())
    return out


def _catalog() -> dict[str, str]:
    """Built-in definitions' display names by GUID, from the shipped catalog (offline)."""
    from remediator.playbooks.catalog import catalog  # noqa: PLC0415

    return {e.id: e.display_name for e in catalog() if e.display_name}


class NameResolver:
    """Looks names up in batches, with a cache (see the module docstring).

    ``directory``: Microsoft Graph (None: principals stay ids); ``definitions``: reads custom policy
    definitions (None: built-ins from the catalog only); ``clock``: monotonic seconds (tests: a
    virtual clock); ``catalog``: built-in definition names by GUID (default: the shipped catalog);
    ``report``: called with a problem line once when a source (Graph, ARM) fails, not again until it
    answered once more (default: a logged warning), so a long outage is one warning, not one per message.
    """

    def __init__(self, *, directory: DirectoryClient | None = None, definitions: DefinitionReader | None = None,
                 ttl: timedelta = DEFAULT_TTL, clock: Callable[[], float] = time.monotonic,
                 catalog: Mapping[str, str] | None = None, pause: float = FAILURE_PAUSE,
                 report: Callable[[str], None] | None = None) -> None:
        self.report = report or (lambda problem: log.warning("%s", problem))
        self._down: set[str] = set()  # sources reported down and not answered since
        self.directory = directory
        self.definitions = definitions
        self.ttl = ttl.total_seconds()
        self.clock = clock
        self.pause = pause
        self._catalog = dict(catalog) if catalog is not None else None
        self._cache: dict[str, tuple[float, Name | None]] = {}
        self._graph_down: tuple[float, str] | None = None  # (until, why)
        self._lock = threading.Lock()

    @property
    def built_ins(self) -> Mapping[str, str]:
        if self._catalog is None:
            self._catalog = _catalog()
        return self._catalog

    def render(self, build: Callable[[], T], texts: Callable[[T], Iterable[str | None]], *,
               skip: Iterable[str | None] = (), fetch: bool = True) -> T:
        """``build()`` with names: built once to see which ids it shows, the names looked up in one batch,
        built again inside ``naming`` (a build with nothing to name is returned as it is)."""
        first = build()
        names = self.resolve(texts(first), skip=skip, fetch=fetch)
        if not names:
            return first
        with naming(names):
            return build()

    def resolve(self, texts: Iterable[str | None], *, ids: Iterable[str | None] = (),
                skip: Iterable[str | None] = (), fetch: bool = True) -> Names:
        """The names of every id in ``texts`` (and of ``ids``: object ids or definition ids), in one batch.
        ``skip``: GUIDs known not to be principals (a recommendation's assessment key, a subscription id):
        never sent to Graph. ``fetch=False``: what the cache and the catalog know, no request (an answer
        due within Slack's 3 seconds)."""
        want = wanted([*texts, *ids])
        if not want:
            return NO_NAMES
        found: dict[str, Name] = {}
        problems: list[str] = []
        pending_guids = set(want.guids)
        not_principals = {s.strip().lower() for s in skip if s}
        # policy definitions: the catalog for built-ins, the reader for the rest; the GUID alone is named too
        definition_problem: str | None = None
        for did in sorted(want.definitions):
            last = did.rsplit("/", 1)[-1]
            name = self._cached(did)
            if name is _MISS:
                name = self._built_in(did)
                if name is None and self.definitions is not None and definition_problem is None and fetch:
                    try:
                        name = self._read_definition(did)
                    except RemediatorError as e:
                        definition_problem = f"policy names not read ({one_line(e, 300)}); ids shown"
                        continue
                    self._keep(did, name)
                elif name is not None:
                    self._keep(did, name)
            if isinstance(name, Name):
                found[did] = name
                if last in pending_guids:
                    found[last] = Name(id=last, kind=name.kind, display_name=name.display_name)
                    pending_guids.discard(last)
        if definition_problem:
            problems.append(definition_problem)
            self._failed("arm", definition_problem)
        elif want.definitions and self.definitions is not None and fetch:
            self._answered("arm")
        # GUIDs: a built-in definition's name, else a directory object
        ask: list[str] = []
        for guid in sorted(pending_guids):
            hit = self._cached(guid)
            if hit is _MISS:
                built_in = self.built_ins.get(guid)
                if built_in:
                    hit = Name(id=guid, kind="policyDefinition", display_name=built_in)
                    self._keep(guid, hit)
                elif guid not in not_principals:
                    ask.append(guid)
                    continue
                else:
                    continue
            if isinstance(hit, Name):
                found[guid] = hit
        if ask and self.directory is not None and fetch:
            problem = self._ask_graph(ask, found)
            if problem:
                problems.append(problem)
        return Names(by_id=found, problems=tuple(problems))

    def _ask_graph(self, ask: list[str], found: dict[str, Name]) -> str | None:
        assert self.directory is not None
        now = self.clock()
        with self._lock:
            down = self._graph_down
        if down is not None and down[0] > now:
            return f"principal names not read ({down[1]}); ids shown"
        try:
            principals = self.directory.get_by_ids(ask)
        except NamesUnavailable as e:
            why = one_line(e, 300)
            with self._lock:
                self._graph_down = (now + self.pause, why)
            problem = f"principal names not read ({why}); ids shown"
            self._failed("graph", problem)
            return problem
        with self._lock:
            self._graph_down = None
        self._answered("graph")
        for guid in ask:
            p = principals.get(guid)
            name = Name.of(p) if p is not None and p.display_name else None
            self._keep(guid, name)
            if name is not None:
                found[guid] = name
        return None

    def _failed(self, source: str, problem: str) -> None:
        with self._lock:
            first = source not in self._down
            self._down.add(source)
        if first:
            self.report(problem)

    def _answered(self, source: str) -> None:
        with self._lock:
            self._down.discard(source)

    def _built_in(self, definition_id: str) -> Name | None:
        if not definition_id.startswith(_BUILT_IN):
            return None
        guid = definition_id.rsplit("/", 1)[-1]
        display = self.built_ins.get(guid)
        return Name(id=definition_id, kind="policyDefinition", display_name=display) if display else None

    def _read_definition(self, definition_id: str) -> Name | None:
        assert self.definitions is not None
        try:
            doc = self.definitions.get(definition_id)
        except RemediatorError:
            raise
        except Exception as e:  # a reader's own failure (connection, SDK): still one line, never a failed plan
            raise NamesUnavailable(f"{type(e).__name__}: {e}") from e
        props = doc.get("properties") if isinstance(doc, dict) else None
        display = props.get("displayName") if isinstance(props, dict) else None
        if not isinstance(display, str) or not display.strip():
            return None
        kind = "policySetDefinition" if "/policysetdefinitions/" in definition_id else "policyDefinition"
        return Name(id=definition_id, kind=kind, display_name=display)

    def _cached(self, key: str) -> Name | object | None:
        with self._lock:
            hit = self._cache.get(key)
        if hit is None or hit[0] <= self.clock():
            return _MISS
        return hit[1]

    def _keep(self, key: str, name: Name | None) -> None:
        if self.ttl <= 0:
            return
        now = self.clock()
        with self._lock:
            if len(self._cache) >= CACHE_MAX:  # a long-running server: expired entries go first, then the oldest tenth
                live = {k: v for k, v in self._cache.items() if v[0] > now}
                self._cache = live if len(live) < CACHE_MAX else dict(list(live.items())[CACHE_MAX // 10:])
            self._cache[key] = (now + self.ttl, name)


_MISS = object()
