"""The unified message body rendered for APNs, FCM and HMS, as providers.md maps each field."""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

APNS_MAX_PAYLOAD_BYTES = 4096
FCM_MAX_TTL_S = 28 * 24 * 3600
HMS_MAX_TTL_S = 15 * 24 * 3600


def dumps(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True, slots=True)
class Notification:
    """One message body with its attributes, independent of the device it goes to."""

    title: str | None = None
    title_loc_key: str | None = None
    title_loc_args: list[str] | None = None
    body: str | None = None
    body_loc_key: str | None = None
    body_loc_args: list[str] | None = None
    badge: int | None = None
    sound: str | None = None
    icon: str | None = None
    category: str | None = None
    collapse_key: str | None = None
    valid_until: datetime | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    silent: bool = False
    high_priority: bool = True

    @classmethod
    def from_body(cls, body: dict[str, Any], *, silent: bool, high_priority: bool) -> Notification:
        """From the body as stored in ``push_message.message_body`` (the API's camelCase JSON)."""
        valid_until = body.get("validUntil")
        return cls(
            title=body.get("title"),
            title_loc_key=body.get("titleLocKey"),
            title_loc_args=body.get("titleLocArgs"),
            body=body.get("body"),
            body_loc_key=body.get("bodyLocKey"),
            body_loc_args=body.get("bodyLocArgs"),
            badge=body.get("badge"),
            sound=body.get("sound"),
            icon=body.get("icon"),
            category=body.get("category"),
            collapse_key=body.get("collapseKey"),
            valid_until=datetime.fromisoformat(valid_until) if valid_until else None,
            extras=dict(body.get("extras") or {}),
            silent=silent,
            high_priority=high_priority and not silent,
        )

    def concealed(self, title: str, body: str, encrypted: dict[str, str]) -> Notification:
        """The form an end-to-end encrypted message travels in: a generic text, the rest sealed.

        What the platform needs to deliver and present it stays visible (badge, sound, icon,
        category, collapse key, expiry); texts, localisation arguments and extras exist only
        inside ``encrypted``.
        """
        return replace(
            self,
            title=title,
            body=body,
            title_loc_key=None,
            title_loc_args=None,
            body_loc_key=None,
            body_loc_args=None,
            extras={"encrypted": encrypted},
        )

    def ttl_s(self, now: datetime) -> int | None:
        if self.valid_until is None:
            return None
        return max(0, int((self.valid_until - now).total_seconds()))


def _compact(mapping: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if value is not None}


# APNs


def apns_payload(n: Notification) -> bytes:
    if n.silent:
        aps: dict[str, Any] = {"content-available": 1}
    else:
        alert = _compact(
            {
                "title": n.title,
                "body": n.body,
                "title-loc-key": n.title_loc_key,
                "title-loc-args": n.title_loc_args,
                "loc-key": n.body_loc_key,
                "loc-args": n.body_loc_args,
            }
        )
        aps = _compact(
            {"alert": alert or None, "badge": n.badge, "sound": n.sound, "category": n.category}
        )
    # Extras are top-level keys beside "aps"; the API refuses an extra named "aps".
    return dumps({"aps": aps, **n.extras})


def apns_headers(n: Notification, topic: str) -> dict[str, str]:
    """Headers shared by every device of the message (the JWT and apns-id are per request)."""
    headers = {
        "apns-topic": topic,
        "apns-push-type": "background" if n.silent else "alert",
        "apns-priority": "10" if n.high_priority else "5",
    }
    if n.valid_until is not None:
        headers["apns-expiration"] = str(max(0, int(n.valid_until.timestamp())))
    if n.collapse_key:
        headers["apns-collapse-id"] = n.collapse_key
    return headers


# FCM


def _android_notification(n: Notification) -> dict[str, Any]:
    """The notification fields FCM and HMS name alike."""
    return _compact(
        {
            "title": n.title,
            "body": n.body,
            "title_loc_key": n.title_loc_key,
            "title_loc_args": n.title_loc_args,
            "body_loc_key": n.body_loc_key,
            "body_loc_args": n.body_loc_args,
            "icon": n.icon,
            "sound": n.sound,
            "tag": n.category,
        }
    )


def _data_strings(extras: dict[str, Any]) -> dict[str, str]:
    return {
        key: value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        for key, value in extras.items()
    }


def fcm_message(n: Notification, now: datetime) -> dict[str, Any]:
    """The FCM v1 ``message`` without its ``token``."""
    android: dict[str, Any] = {"priority": "high" if n.high_priority else "normal"}
    ttl_s = n.ttl_s(now)
    if ttl_s is not None:
        android["ttl"] = f"{min(ttl_s, FCM_MAX_TTL_S)}s"
    if n.collapse_key:
        android["collapse_key"] = n.collapse_key
    if not n.silent:
        notification = _android_notification(n)
        if n.badge is not None:
            notification["notification_count"] = n.badge
        if notification:
            android["notification"] = notification
    message: dict[str, Any] = {"android": android}
    if n.extras:
        message["data"] = _data_strings(n.extras)
    return message


class TokenTemplate:
    """A JSON request body rendered once, with the device token spliced in per request."""

    _MARK = "\x00token\x00"

    def __init__(self, document: dict[str, Any], path: tuple[str, ...], as_list: bool = False):
        target = document
        for key in path:
            target = target[key]
        target["token"] = [self._MARK] if as_list else self._MARK
        rendered = dumps(document)
        marker = dumps(self._MARK)
        self._head, self._tail = rendered.split(marker, 1)

    def render(self, token: str) -> bytes:
        return self._head + dumps(token) + self._tail


def fcm_template(n: Notification, now: datetime) -> TokenTemplate:
    return TokenTemplate({"message": fcm_message(n, now)}, ("message",))


# HMS


def hms_collapse_key(key: str) -> int:
    """HMS wants an integer from -1 to 100: numeric keys in range are kept, others hashed."""
    if key.lstrip("-").isdigit() and -1 <= int(key) <= 100:
        return int(key)
    return zlib.crc32(key.encode()) % 101


def hms_message(n: Notification, now: datetime) -> dict[str, Any]:
    """The HMS ``message`` without its ``token`` list."""
    android: dict[str, Any] = {"urgency": "HIGH" if n.high_priority else "NORMAL"}
    ttl_s = n.ttl_s(now)
    if ttl_s is not None:
        android["ttl"] = f"{min(ttl_s, HMS_MAX_TTL_S)}s"
    if n.collapse_key:
        android["collapse_key"] = hms_collapse_key(n.collapse_key)
    if not n.silent:
        notification = _android_notification(n)
        notification["click_action"] = {"type": 3}
        if n.badge is not None:
            notification["badge"] = {"set_num": n.badge}
        android["notification"] = notification
    message: dict[str, Any] = {"android": android}
    if n.extras or n.silent:
        message["data"] = dumps(n.extras).decode()
    return message


def hms_template(n: Notification, now: datetime) -> TokenTemplate:
    document = {"validate_only": False, "message": hms_message(n, now)}
    return TokenTemplate(document, ("message",), as_list=True)
