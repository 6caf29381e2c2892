"""Telegram, Twilio (WhatsApp and SMS) and Facebook Messenger, configured from the environment.

Rasa's own connectors, with four changes:

* **Off unless configured.** Each reads its settings from environment variables (or
  from credentials.yml, which wins) and, while any is unset, registers only a
  status route: ``GET /webhooks/<name>/`` says ``disabled``, and the webhook
  answers 404 with a JSON error. Nothing calls the provider's API.
* **Usable without buttons.** Options become a numbered list in the text
  (channels/options.py), and a reply that is just a number is replaced by that
  option's payload, read from the conversation's tracker.
* **Widget payloads stay in the widget.** ``custom`` payloads for the web widget
  (escalation, checklist) are not sent: the text beside them stands on its own.
* **Checked input.** Telegram updates that are not JSON objects get a 400; Twilio
  requests must carry a valid ``X-Twilio-Signature`` (Rasa's connector checks none).

``TELEGRAM_API_BASE`` points the Telegram connector at another Bot API server (a
self-hosted one, or the stand-in the tests use).
"""
from __future__ import annotations

import asyncio
import logging
import os
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text

from aiogram import Bot
from aiogram.bot.api import TELEGRAM_PRODUCTION, TelegramAPIServer
from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.core.channels.facebook import FacebookInput, MessengerBot
from rasa.core.channels.telegram import TelegramInput, TelegramOutput
from rasa.core.channels.twilio import TwilioInput, TwilioOutput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from channels import options

logger = logging.getLogger(__name__)

Handler = Callable[[UserMessage], Awaitable[Any]]


def _settings(credentials: Optional[Dict[Text, Any]], names: Dict[str, str]) -> Dict[str, str]:
    """Each setting from credentials.yml when given there, else from its environment variable."""
    credentials = credentials or {}
    return {key: str(credentials.get(key) or os.environ.get(env, "")).strip() for key, env in names.items()}


def disabled_blueprint(name: str, needs: List[str]) -> Blueprint:
    """Routes of a channel that is off: a status, and a 404 for its webhook."""
    blueprint = Blueprint(f"{name}_disabled", __name__)
    reason = f"the {name} channel is off; set {', '.join(needs)} to turn it on"

    @blueprint.route("/", methods=["GET"])
    async def status(_: Request) -> HTTPResponse:
        return response.json({"status": "disabled", "reason": reason})

    @blueprint.route("/webhook", methods=["GET", "POST"])
    async def webhook(_: Request) -> HTTPResponse:
        return response.json({"error": reason}, status=404)

    return blueprint


class TextOptionsOutput(OutputChannel):
    """Mixin for an output channel: numbered options, and no widget payloads."""

    async def send_text_with_buttons(self, recipient_id: Text, text: Text,
                                     buttons: List[Dict[Text, Any]], **kwargs: Any) -> None:
        await self.send_text_message(recipient_id, options.numbered(text, buttons), **kwargs)

    async def send_custom_json(self, recipient_id: Text, json_message: Dict[Text, Any], **kwargs: Any) -> None:
        if options.is_widget_payload(json_message):
            return
        await super().send_custom_json(recipient_id, json_message, **kwargs)


class MessagingChannel(InputChannel):
    """Mixin for an input channel: off unless configured; numbered replies resolved."""

    #: setting name -> environment variable, all required
    SETTINGS: Dict[str, str] = {}

    settings: Dict[str, str]
    _agent: Any = None

    @classmethod
    def configured(cls, settings: Dict[str, str]) -> bool:
        return all(settings.get(key) for key in cls.SETTINGS)

    def missing(self) -> List[str]:
        return [env for key, env in self.SETTINGS.items() if not self.settings.get(key)]

    def adapt_output(self, output: Optional[OutputChannel]) -> Optional[OutputChannel]:
        """The output channel to answer on (a connector may build its own per message)."""
        return output

    #: app commands that mean one of our intents, e.g. Telegram's /start
    COMMANDS: Dict[str, str] = {}

    def resolving(self, on_new_message: Handler) -> Handler:
        async def handle(message: UserMessage) -> Any:
            message.output_channel = self.adapt_output(message.output_channel)
            command = (message.text or "").strip().lower()
            if command in self.COMMANDS:
                message.text = self.COMMANDS[command]
            elif self._agent is not None and options.is_number(message.text):  # only then read the tracker
                tracker = await self._agent.tracker_store.retrieve(message.sender_id)
                if tracker is not None:
                    message.text = options.resolve(message.text, [e.as_dict() for e in tracker.events])
            return await on_new_message(message)

        return handle

    def messaging_blueprint(self, build: Callable[[Handler], Blueprint], on_new_message: Handler) -> Blueprint:
        if not self.configured(self.settings):
            logger.info("%s channel is off (missing %s)", self.name(), ", ".join(self.missing()))
            return disabled_blueprint(self.name(), self.missing())
        blueprint = build(self.resolving(on_new_message))

        @blueprint.middleware("request")
        async def remember_agent(request: Request) -> None:
            self._agent = getattr(request.app.ctx, "agent", None)

        return blueprint


# Telegram -----------------------------------------------------------------------

class ClinicTelegramOutput(TextOptionsOutput, TelegramOutput):
    """Telegram with inline buttons and the same options numbered in the text.

    A button's callback data is its number, not its payload: Telegram allows 64
    bytes of callback data, less than some payloads, and the number is resolved
    to the payload like a typed one.
    """

    def __init__(self, access_token: Optional[Text], api_base: str = "") -> None:
        # TelegramOutput's own __init__ takes no API server; aiogram's Bot does.
        server = TelegramAPIServer.from_base(api_base) if api_base else TELEGRAM_PRODUCTION
        Bot.__init__(self, access_token, server=server)

    async def send_text_with_buttons(self, recipient_id: Text, text: Text,
                                     buttons: List[Dict[Text, Any]], **kwargs: Any) -> None:
        numbered = [{**button, "payload": str(index)} for index, button in enumerate(buttons, start=1)]
        await TelegramOutput.send_text_with_buttons(
            self, recipient_id, options.numbered(text, buttons), numbered, **kwargs)


class ClinicTelegramInput(MessagingChannel, TelegramInput):
    SETTINGS = {"access_token": "TELEGRAM_ACCESS_TOKEN", "verify": "TELEGRAM_BOT_USERNAME",
                "webhook_url": "TELEGRAM_WEBHOOK_URL"}
    # Telegram sends /start when someone opens the bot: greet them, with the disclaimer.
    COMMANDS = {"/start": "/greet"}

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        settings = _settings(credentials, {**cls.SETTINGS, "api_base": "TELEGRAM_API_BASE"})
        return cls(settings)

    def __init__(self, settings: Dict[str, str]) -> None:
        self.settings = settings
        super().__init__(settings["access_token"], settings["verify"], settings["webhook_url"])

    def get_output_channel(self) -> TelegramOutput:
        channel = ClinicTelegramOutput(self.access_token, self.settings.get("api_base", ""))
        if self.webhook_url:
            try:
                asyncio.run(self._register_webhook(channel))
            except Exception as error:  # noqa: BLE001 - the other channels must still start
                logger.error("Telegram: could not register the webhook %s: %s", self.webhook_url, error)
        return channel

    async def _register_webhook(self, channel: TelegramOutput) -> None:
        try:
            await channel.set_webhook(url=self.webhook_url)
        finally:  # the session belongs to this short-lived loop; the server's loop opens its own
            await channel.session.close()

    def blueprint(self, on_new_message: Handler) -> Blueprint:
        blueprint = self.messaging_blueprint(super().blueprint, on_new_message)

        @blueprint.middleware("request")
        async def check_update(request: Request) -> Optional[HTTPResponse]:
            if request.method == "POST" and request.path.endswith("/webhook"):
                try:
                    body = request.json
                except Exception:  # noqa: BLE001 - sanic raises on malformed JSON
                    body = None
                if not isinstance(body, dict) or "update_id" not in body:
                    return response.json({"error": "expected a Telegram Update object"}, status=400)
            return None

        return blueprint


# Twilio (WhatsApp and SMS) --------------------------------------------------------

TWILIO_MAX_BODY = 1600  # characters Twilio accepts in one message body


def sms_parts(text: str, limit: int = TWILIO_MAX_BODY) -> List[str]:
    """The text in as few messages as fit, split only between paragraphs (or hard at the limit)."""
    parts: List[str] = []
    for paragraph in text.strip().split("\n\n"):
        if parts and len(parts[-1]) + 2 + len(paragraph) <= limit:
            parts[-1] += "\n\n" + paragraph
        else:
            parts.extend(paragraph[i:i + limit] for i in range(0, len(paragraph), limit))
    return parts


class ClinicTwilioOutput(TextOptionsOutput, TwilioOutput):
    """SMS and WhatsApp: one message per bot message (Rasa's sends one per paragraph), options numbered."""

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        for part in sms_parts(text):
            await self._send_message({"to": recipient_id, "from_": self.twilio_number, "body": part})


class ClinicTwilioInput(MessagingChannel, TwilioInput):
    SETTINGS = {"account_sid": "TWILIO_ACCOUNT_SID", "auth_token": "TWILIO_AUTH_TOKEN",
                "twilio_number": "TWILIO_NUMBER"}

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        return cls(_settings(credentials, {**cls.SETTINGS, "webhook_url": "TWILIO_WEBHOOK_URL"}))

    def __init__(self, settings: Dict[str, str]) -> None:
        self.settings = settings
        super().__init__(settings["account_sid"], settings["auth_token"], settings["twilio_number"])

    def get_output_channel(self) -> OutputChannel:
        return ClinicTwilioOutput(self.account_sid, self.auth_token, self.twilio_number)

    def blueprint(self, on_new_message: Handler) -> Blueprint:
        blueprint = self.messaging_blueprint(super().blueprint, on_new_message)
        if not self.configured(self.settings):
            return blueprint
        from twilio.request_validator import RequestValidator

        validator = RequestValidator(self.auth_token)

        @blueprint.middleware("request")
        async def check_signature(request: Request) -> Optional[HTTPResponse]:
            if request.method != "POST":
                return None
            # Behind a proxy the public URL differs from the one Sanic sees: TWILIO_WEBHOOK_URL.
            url = self.settings.get("webhook_url") or request.url
            form = {key: request.form.get(key) for key in request.form}
            if not validator.validate(url, form, request.headers.get("X-Twilio-Signature", "")):
                return response.json({"error": "invalid or missing X-Twilio-Signature"}, status=403)
            return None

        return blueprint


# Facebook Messenger ---------------------------------------------------------------

class ClinicMessengerBot(TextOptionsOutput, MessengerBot):
    """Messenger: up to three options as native buttons, more as a numbered list."""

    async def send_text_with_buttons(self, recipient_id: Text, text: Text,
                                     buttons: List[Dict[Text, Any]], **kwargs: Any) -> None:
        if len(buttons) <= 3:
            await MessengerBot.send_text_with_buttons(self, recipient_id, text, buttons, **kwargs)
        else:
            await TextOptionsOutput.send_text_with_buttons(self, recipient_id, text, buttons, **kwargs)


class ClinicFacebookInput(MessagingChannel, FacebookInput):
    SETTINGS = {"verify": "FACEBOOK_VERIFY_TOKEN", "secret": "FACEBOOK_APP_SECRET",
                "page-access-token": "FACEBOOK_PAGE_ACCESS_TOKEN"}

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        return cls(_settings(credentials, cls.SETTINGS))

    def __init__(self, settings: Dict[str, str]) -> None:
        self.settings = settings
        super().__init__(settings["verify"], settings["secret"], settings["page-access-token"])

    def adapt_output(self, output: Optional[OutputChannel]) -> Optional[OutputChannel]:
        # Rasa's Messenger handler builds a MessengerBot per message; answer through ours.
        if isinstance(output, MessengerBot) and not isinstance(output, ClinicMessengerBot):
            return ClinicMessengerBot(output.messenger_client)
        return output

    def blueprint(self, on_new_message: Handler) -> Blueprint:
        return self.messaging_blueprint(super().blueprint, on_new_message)
