"""Linking a Telegram chat with a one-time code: single use, short-lived, stored hashed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.clock import ManualClock
from adapters.eventstore.memory import InMemoryEventStore
from application.errors import ConcurrencyConflict
from application.telegram import FindLinkedUser, IssueTelegramLinkCode, RedeemTelegramLinkCode, UnlinkTelegram
from domain.events import Cause, TelegramChatLinked, TelegramLinkCodeIssued
from domain.telegram import LINK_CODE_TTL, LinkCodeRefused, TelegramLinks, code_hash

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def store() -> InMemoryEventStore:
    return InMemoryEventStore()


async def test_a_code_links_one_chat_once_and_is_stored_only_hashed(
    store: InMemoryEventStore, clock: ManualClock,
) -> None:
    code = await IssueTelegramLinkCode(store, clock)("alice")
    assert code.expires_at == T0 + LINK_CODE_TTL and len(code.code) == 10
    # Case and spaces do not matter.
    assert await RedeemTelegramLinkCode(store, clock)(111, code.code.lower()) == "alice"
    assert await FindLinkedUser(store)(111) == "alice"
    with pytest.raises(LinkCodeRefused):
        await RedeemTelegramLinkCode(store, clock)(222, code.code)  # used already
    assert await FindLinkedUser(store)(222) is None
    events = await store.read_all()
    assert [type(r.event) for r in events] == [TelegramLinkCodeIssued, TelegramChatLinked]
    assert all(r.user_id == "alice" for r in events)  # each in alice's audit trail
    assert code.code not in repr([r.event for r in events])
    assert events[0].event.code_hash == code_hash(code.code)


async def test_an_expired_or_unknown_code_is_refused_alike(store: InMemoryEventStore, clock: ManualClock) -> None:
    code = await IssueTelegramLinkCode(store, clock)("alice")
    await clock.sleep(LINK_CODE_TTL)
    with pytest.raises(LinkCodeRefused) as expired:
        await RedeemTelegramLinkCode(store, clock)(111, code.code)
    with pytest.raises(LinkCodeRefused) as unknown:
        await RedeemTelegramLinkCode(store, clock)(111, "NOPE")
    assert str(expired.value) == str(unknown.value)
    assert await FindLinkedUser(store)(111) is None


async def test_a_new_code_replaces_the_users_earlier_one(store: InMemoryEventStore, clock: ManualClock) -> None:
    first = await IssueTelegramLinkCode(store, clock)("alice")
    bob = await IssueTelegramLinkCode(store, clock)("bob")
    await IssueTelegramLinkCode(store, clock)("alice")
    with pytest.raises(LinkCodeRefused):
        await RedeemTelegramLinkCode(store, clock)(111, first.code)
    assert await RedeemTelegramLinkCode(store, clock)(222, bob.code) == "bob"  # another user's code still counts


async def test_unlinking_forgets_every_chat_of_the_user_only(store: InMemoryEventStore, clock: ManualClock) -> None:
    for chat, user in ((111, "alice"), (112, "alice"), (222, "bob")):
        await RedeemTelegramLinkCode(store, clock)(chat, (await IssueTelegramLinkCode(store, clock)(user)).code)
    assert await UnlinkTelegram(store, clock)("alice") == 2
    assert await UnlinkTelegram(store, clock)("alice") == 0
    find = FindLinkedUser(store)
    assert (await find(111), await find(112), await find(222)) == (None, None, "bob")


async def test_the_store_refuses_the_second_of_two_racing_links(store: InMemoryEventStore, clock: ManualClock) -> None:
    from application import repository
    from domain.telegram import TELEGRAM_LINKS_STREAM

    code = await IssueTelegramLinkCode(store, clock)("alice")
    one = await repository.get(store, TelegramLinks, TELEGRAM_LINKS_STREAM)
    two = await repository.get(store, TelegramLinks, TELEGRAM_LINKS_STREAM)
    one.link(1, code_hash(code.code), Cause(T0, "c"))
    two.link(2, code_hash(code.code), Cause(T0, "c"))
    await repository.save(store, one)
    with pytest.raises(ConcurrencyConflict):
        await repository.save(store, two)
    assert await FindLinkedUser(store)(2) is None


async def test_a_linked_chat_linked_again_acts_for_the_new_user(store: InMemoryEventStore, clock: ManualClock) -> None:
    await RedeemTelegramLinkCode(store, clock)(111, (await IssueTelegramLinkCode(store, clock)("alice")).code)
    await RedeemTelegramLinkCode(store, clock)(111, (await IssueTelegramLinkCode(store, clock)("bob")).code)
    assert await FindLinkedUser(store)(111) == "bob"
    assert await UnlinkTelegram(store, clock)("alice") == 0


def test_expired_codes_are_dropped_from_the_state_when_newer_ones_come() -> None:
    links = TelegramLinks.new()
    links.issue("alice", code_hash("A"), Cause(T0, "c"))
    links.issue("bob", code_hash("B"), Cause(T0 + LINK_CODE_TTL + timedelta(seconds=1), "c"))
    assert set(links.codes) == {code_hash("B")}
