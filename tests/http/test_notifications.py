"""GET/PUT /api/v1/notifications and /notifications/undelivered: settings per user, secrets
write-only, bad input a clear 4xx."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from tests.http.support import ALICE, BOB, auth

A, B = auth(ALICE), auth(BOB)


async def test_defaults_then_round_trip_without_echoing_secrets(client: AsyncTestClient) -> None:
    r = await client.get("/api/v1/notifications", headers=A)
    assert r.status_code == 200
    body = r.json()
    assert body["channels"] == [] and body["daily_summary_at"] is None
    assert body["kinds"]["snipe_filled"] == "on" and body["kinds"]["daily_summary"] == "off"

    wanted = {
        "kinds": {"exit": "silent", "target_created": "off", "daily_summary": "on"},
        "channels": [
            {"kind": "telegram", "address": "123456789"},
            {"kind": "webhook", "address": "https://hooks.example.com/sniper", "secret": "s3cret-hmac-key"},
            {"kind": "discord", "address": "", "secret": "https://discord.com/api/webhooks/1/abc-token"},
            {"kind": "email", "address": "alice@example.com", "enabled": False},
        ],
        "daily_summary_at": "21:30",
    }
    r = await client.put("/api/v1/notifications", headers=A, json=wanted)
    assert r.status_code == 200, r.text
    assert "s3cret" not in r.text and "abc-token" not in r.text
    got = (await client.get("/api/v1/notifications", headers=A)).json()
    assert got == r.json()
    assert got["kinds"]["exit"] == "silent" and got["kinds"]["target_created"] == "off"
    assert got["kinds"]["snipe_filled"] == "on" and got["kinds"]["daily_summary"] == "on"
    assert got["daily_summary_at"] == "21:30"
    assert [(c["kind"], c["enabled"], c["secret_set"]) for c in got["channels"]] == [
        ("telegram", True, False), ("webhook", True, True), ("discord", True, True), ("email", False, False)]
    # Another user sees only their own (the defaults).
    assert (await client.get("/api/v1/notifications", headers=B)).json()["channels"] == []

    # A PUT without the secrets keeps the stored ones.
    kept = dict(wanted, channels=[{"kind": "webhook", "address": "https://hooks.example.com/v2"},
                                  {"kind": "discord"}])
    r = await client.put("/api/v1/notifications", headers=A, json=kept)
    assert r.status_code == 200, r.text
    assert [(c["kind"], c["address"], c["secret_set"]) for c in r.json()["channels"]] == [
        ("webhook", "https://hooks.example.com/v2", True), ("discord", "", True)]


async def test_bad_settings_are_a_clear_4xx(client: AsyncTestClient) -> None:
    cases = [
        ({"kinds": {"exit": "loud"}}, 400),
        ({"kinds": {"moon": "on"}}, 400),
        ({"channels": [{"kind": "pigeon"}]}, 400),
        ({"channels": [{"kind": "telegram", "address": "not a chat"}]}, 422),
        ({"channels": [{"kind": "telegram", "address": "42", "secret": "x"}]}, 422),
        ({"channels": [{"kind": "email", "address": "nobody"}]}, 422),
        ({"channels": [{"kind": "discord"}]}, 422),
        ({"channels": [{"kind": "slack", "secret": "ftp://nope"}]}, 422),
        ({"channels": [{"kind": "webhook", "address": "file:///etc/passwd"}]}, 422),
        ({"channels": [{"kind": "telegram", "address": "1"}, {"kind": "telegram", "address": "2"}]}, 422),
        ({"daily_summary_at": "25:00"}, 400),
    ]
    for body, status in cases:
        r = await client.put("/api/v1/notifications", headers=A, json=body)
        assert r.status_code == status, (body, r.status_code, r.text)
        assert "Traceback" not in r.text
    assert "ftp://nope" not in (await client.put("/api/v1/notifications", headers=A,
                                                 json={"channels": [{"kind": "slack", "secret": "ftp://nope"}]})).text


DISCORD_TOKEN = "JHZ7lQml277CDHmQKMHI8qBe7bk2ZwO5UKjCiOAF7711o"


async def test_discord_and_slack_take_only_their_own_webhook_urls_or_apprises(client: AsyncTestClient) -> None:
    """The worker posts the user's trades to this URL: only the service's own host, never another."""
    taken = [
        ("discord", f"https://discord.com/api/webhooks/417429632418316298/{DISCORD_TOKEN}"),
        ("discord", f"https://discordapp.com/api/webhooks/417429632418316298/{DISCORD_TOKEN}/"),
        ("discord", f"discord://417429632418316298/{DISCORD_TOKEN}"),
        ("slack", "https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7"),
        ("slack", "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7/#general"),
    ]
    for kind, secret in taken:
        r = await client.put("/api/v1/notifications", headers=A, json={"channels": [{"kind": kind, "secret": secret}]})
        assert r.status_code == 200, (secret, r.text)
    refused = [
        ("discord", f"https://discord.example/api/webhooks/42/{DISCORD_TOKEN}"),
        ("discord", f"https://discord.com.attacker.example/api/webhooks/42/{DISCORD_TOKEN}"),
        ("discord", f"http://discord.com/api/webhooks/42/{DISCORD_TOKEN}"),
        ("discord", f"https://attacker.example/?https://discord.com/api/webhooks/42/{DISCORD_TOKEN}"),
        ("discord", f"https://discord.com/api/webhooks/42/{DISCORD_TOKEN}@attacker.example"),
        ("slack", f"https://hooks.slack.com.attacker.example/services/T1/B1/{DISCORD_TOKEN}"),
        ("slack", f"https://attacker.example/services/T1/B1/{DISCORD_TOKEN}"),
        ("slack", f"https://discord.com/api/webhooks/42/{DISCORD_TOKEN}"),  # the other service's
    ]
    for kind, secret in refused:
        r = await client.put("/api/v1/notifications", headers=A, json={"channels": [{"kind": kind, "secret": secret}]})
        assert r.status_code == 422, (secret, r.text)
        assert f"channels[{kind}].secret" in r.text and DISCORD_TOKEN not in r.text, r.text


async def test_undelivered_is_empty_without_a_worker(client: AsyncTestClient) -> None:
    r = await client.get("/api/v1/notifications/undelivered", headers=A)
    assert r.status_code == 200 and r.json() == []
    assert (await client.get("/api/v1/notifications/undelivered?limit=0", headers=A)).status_code == 400


async def test_a_put_without_a_body_or_with_a_broken_one_says_so(client: AsyncTestClient) -> None:
    json_type = {**A, "Content-Type": "application/json"}
    for body, detail in ((b"", "data: a JSON body is required"), (b"[]", "data: Expected `object`, got `array`"),
                         (b"not json", "JSON is malformed")):
        r = await client.put("/api/v1/notifications", headers=json_type, content=body)
        assert r.status_code == 400 and r.json()["detail"].startswith(detail), (body, r.text)
    assert (await client.get("/api/v1/notifications")).status_code == 401
    assert (await client.put("/api/v1/notifications", json={})).status_code == 401


async def test_the_audit_trail_never_echoes_a_channel_secret_even_sealed(client: AsyncTestClient) -> None:
    wanted = {"channels": [{"kind": "webhook", "address": "https://hooks.example.com/sniper",
                            "secret": "s3cret-hmac-key"}, {"kind": "email", "address": "alice@example.com"}]}
    assert (await client.put("/api/v1/notifications", headers=A, json=wanted)).status_code == 200
    audit = await client.get("/api/v1/audit", headers=A)
    [changed] = [e for e in audit.json()["items"] if e["type"] == "NotificationSettingsChanged"]
    assert [(c["kind"], c["secret_set"]) for c in changed["data"]["channels"]] == [("webhook", True), ("email", False)]
    assert all("secret" not in c for c in changed["data"]["channels"])
    assert "s3cret" not in audit.text and "v1." not in audit.text  # neither the secret nor its sealed form
