"""Watching listings: sync the calendar, detect ready states, schedule and expire targets."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from application import repository
from application.errors import ConcurrencyConflict, ListingFeedUnavailable, NotFound
from application.ports import Clock, EventStore, ListingFeed, ScheduledJob, Scheduler, TraderDirectory
from application.timing import SnipeTiming
from application.trade_book import TradeBook
from domain.errors import DomainError
from domain.events import Cause
from domain.exit_plans import resolve_exit_plan
from domain.listing import ANNOUNCED_CONFIDENCE, Listing, assess, listing_stream, target_id_for
from domain.target import SnipeTarget, TargetStatus, target_stream

EXECUTE_SNIPE = "execute_snipe"


@dataclass(slots=True)
class CalendarSyncResult:
    new_listings: list[str] = field(default_factory=list)
    new_targets: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    feed_error: str | None = None  # the calendar could not be read: nothing recorded, poll again


class SyncCalendar:
    """Record listings new to us, and create a target for each auto-sniping user who wants it."""

    def __init__(
        self, store: EventStore, feed: ListingFeed, traders: TraderDirectory, clock: Clock, book: TradeBook,
    ) -> None:
        self.store, self.feed, self.traders, self.clock, self.book = store, feed, traders, clock, book

    async def __call__(self) -> CalendarSyncResult:
        result = CalendarSyncResult()
        try:
            entries = await self.feed.calendar()
        except ListingFeedUnavailable as exc:
            result.feed_error = str(exc)
            return result
        await self.book.catch_up(self.store)
        now = self.clock.now()
        traders = await self.traders.auto_snipers()
        for entry in entries:
            cause = Cause(now, f"listing-{entry.coin_id}")
            if entry.coin_id not in self.book.listings:
                listing = Listing.announce(
                    entry.coin_id, entry.ticker, entry.full_name, entry.symbol, entry.launch_at, cause
                )
                try:
                    await repository.save(self.store, listing)
                    result.new_listings.append(entry.symbol.code)
                except ConcurrencyConflict:
                    pass  # another worker recorded it first
            if entry.launch_at <= now:
                continue  # already launched: too late to snipe
            for trader in traders:
                if not trader.wants(entry.ticker, entry.symbol.quote):
                    continue
                target_id = target_id_for(trader.user_id, entry.coin_id)
                if target_id in self.book.targets:
                    continue
                try:
                    plan = resolve_exit_plan(trader.exit_strategy, trader.custom_exit_plans)
                except DomainError as exc:
                    result.skipped.append(f"{trader.user_id}/{entry.symbol.code}: {exc}")
                    continue
                target = SnipeTarget.create(
                    target_id, trader.user_id, entry.coin_id, entry.symbol, entry.launch_at, trader.quote_amount, plan,
                    ANNOUNCED_CONFIDENCE, trader.risk.live, Cause(now, target_id), trader.max_entry_price,
                )
                try:
                    await repository.save(self.store, target)
                    result.new_targets.append(target_id)
                except ConcurrencyConflict:
                    pass
        await self.book.catch_up(self.store)
        return result


@dataclass(slots=True)
class ReadinessResult:
    ready: list[str] = field(default_factory=list)
    scheduled: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    below_confidence: list[str] = field(default_factory=list)
    feed_error: str | None = None  # symbol states could not be read: no target moved, poll again


class DetectReadyStates:
    """Poll symbol states; a watched listing in the ready-state pattern inside the lead window
    makes its targets ready, and those confident enough are scheduled for launch."""

    def __init__(
        self,
        store: EventStore,
        feed: ListingFeed,
        traders: TraderDirectory,
        scheduler: Scheduler,
        clock: Clock,
        book: TradeBook,
        timing: SnipeTiming,
    ) -> None:
        self.store, self.feed, self.traders, self.scheduler = store, feed, traders, scheduler
        self.clock, self.book, self.timing = clock, book, timing

    async def __call__(self) -> ReadinessResult:
        result = ReadinessResult()
        await self.book.catch_up(self.store)
        now = self.clock.now()
        watched = self.book.targets_in({"watching"})
        reports = {}
        if watched:
            try:
                reports = {r.coin_id: r for r in await self.feed.symbol_states()}
            except ListingFeedUnavailable as exc:
                result.feed_error = str(exc)  # expiry below still runs: it needs no feed
        for coin_id in sorted({t.coin_id for t in watched}):
            listing_view = self.book.listings.get(coin_id)
            report = reports.get(coin_id)
            if listing_view is None or report is None:
                continue
            launch_at = listing_view.launch_at
            verdict = assess(report.state, launch_at, now, self.timing.lead_window)
            if not (verdict.ready and verdict.in_window):
                continue
            listing = await repository.get(self.store, Listing, listing_stream(coin_id))
            if not listing.ready:
                listing.detect_ready(report.state, Cause(now, f"listing-{coin_id}"))
                with contextlib.suppress(ConcurrencyConflict):
                    await repository.save(self.store, listing)
            lead_seconds = int(verdict.lead.total_seconds())
            for view in self.book.targets_of_coin(coin_id, {"watching"}):
                target = await repository.get(self.store, SnipeTarget, target_stream(view.target_id))
                if target.status is not TargetStatus.WATCHING:
                    continue  # another worker (or a person) moved it on since our book was read
                cause = Cause(now, view.target_id)
                target.mark_ready(verdict.pattern, verdict.confidence, lead_seconds, cause)
                try:
                    settings = await self.traders.settings_for(target.user_id)
                    confident = verdict.confidence >= settings.min_confidence
                except NotFound:
                    confident = False
                if confident:
                    target.schedule(launch_at, launch_at + self.timing.snipe_window, cause)
                try:
                    await repository.save(self.store, target)
                except ConcurrencyConflict:
                    continue
                result.ready.append(view.target_id)
                if confident:
                    await self.scheduler.schedule(
                        ScheduledJob(EXECUTE_SNIPE, view.target_id, launch_at - self.timing.prepare_ahead)
                    )
                    result.scheduled.append(view.target_id)
                else:
                    result.below_confidence.append(view.target_id)
        result.expired = await self._expire_stale(now)
        await self.book.catch_up(self.store)
        return result

    async def _expire_stale(self, now) -> list[str]:
        expired = []
        for view in self.book.targets_in({"watching", "ready"}):
            if now < view.launch_at + self.timing.expiry_grace:
                continue
            target = await repository.get(self.store, SnipeTarget, target_stream(view.target_id))
            if target.status not in (TargetStatus.WATCHING, TargetStatus.READY):
                continue  # moved on since our book was read
            reason = (
                "never reached the ready state before launch"
                if target.status.value == "watching"
                else "ready but not confident enough to schedule before launch"
            )
            target.expire(reason, Cause(now, view.target_id))
            try:
                await repository.save(self.store, target)
                expired.append(view.target_id)
            except ConcurrencyConflict:
                pass
        return expired
