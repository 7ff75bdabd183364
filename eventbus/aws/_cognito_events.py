"""Typed events for Amazon Cognito: Sync triggers and User Pool triggers.

Cognito payloads carry no timestamp and no id: the envelope ``time`` of
these events is the Unix epoch and their ``id`` is derived from the payload,
so that equal payloads read as equal events. Subscriptions that retry them
should not set ``max_event_age``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

import attrs

from .._events import Event

__all__ = [
    "CognitoCreateAuthChallenge",
    "CognitoCustomEmailSender",
    "CognitoCustomMessage",
    "CognitoCustomSmsSender",
    "CognitoDefineAuthChallenge",
    "CognitoPostAuthentication",
    "CognitoPostConfirmation",
    "CognitoPreAuthentication",
    "CognitoPreSignUp",
    "CognitoPreTokenGeneration",
    "CognitoSync",
    "CognitoUserMigration",
    "CognitoVerifyAuthChallengeResponse",
    "DatasetRecord",
    "UserPoolTrigger",
]


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _session(value: object) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


@attrs.frozen
class DatasetRecord:
    """One changed record of a Cognito Sync dataset.

    Attributes:
        old_value: the value before the change, or ``None``.
        new_value: the value after it, or ``None`` (removed).
        op: the operation: ``"replace"`` or ``"remove"``.

    .. versionadded:: 0.2
    """

    old_value: str | None
    new_value: str | None
    op: str = "replace"


@attrs.frozen
class CognitoSync(Event, type_name="eventbus.aws.CognitoSync"):
    """A Cognito Sync trigger: a client synchronized a dataset (``eventType: SyncTrigger``).

    The envelope ``source`` is the identity pool id.

    Attributes:
        identity_pool_id: the identity pool.
        identity_id: the identity whose dataset changed.
        dataset: the dataset name.
        records: the changed records by key.
        region: the region of the identity pool.
        version: the payload version (2).

    .. versionadded:: 0.2
    """

    identity_pool_id: str
    identity_id: str
    dataset: str
    records: Mapping[str, DatasetRecord] = attrs.field(factory=dict)
    region: str = ""
    version: int = 2


@attrs.frozen
class UserPoolTrigger(Event, type_name="eventbus.aws.UserPoolTrigger"):
    """A Cognito User Pool Lambda trigger; the subclasses name each kind.

    Subscribe to a subclass (:class:`CognitoPreSignUp`, ...) or to this base
    class for every kind. The ``request`` and ``response`` objects are kept
    as Cognito sends them (camelCase keys); :meth:`with_response` returns the
    event with a handler's response, which
    :func:`~eventbus.aws.to_lambda_event` renders into the trigger's
    ``response`` -- what the function returns to Cognito. The envelope
    ``source`` is the user pool id.

    Attributes:
        trigger_source: the exact trigger (``"PreSignUp_SignUp"``,
            ``"TokenGeneration_RefreshTokens"``, ...).
        user_pool_id: the user pool.
        user_name: the user's name (may be a placeholder when the user is
            not found).
        region: the user pool's region.
        version: the trigger's payload version (``"1"``; ``"2"`` or ``"3"``
            for the newer token-generation triggers).
        caller_context: ``awsSdkVersion`` and ``clientId``.
        request: the trigger's request.
        response: the trigger's response (as received: mostly nulls).

    .. versionadded:: 0.2
    """

    trigger_source: str
    user_pool_id: str
    user_name: str | None = None
    region: str = ""
    version: str = "1"
    caller_context: Mapping[str, Any] = attrs.field(factory=dict)
    request: Mapping[str, Any] = attrs.field(factory=dict)
    response: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def user_attributes(self) -> Mapping[str, Any]:
        """The user's attributes (``request.userAttributes``), or an empty mapping."""
        return _mapping(self.request.get("userAttributes"))

    @property
    def client_metadata(self) -> Mapping[str, Any]:
        """The ``request.clientMetadata`` the app passed, or an empty mapping."""
        return _mapping(self.request.get("clientMetadata"))

    def with_response(self, response: Mapping[str, Any]) -> Self:
        """This trigger with *response* as its response (Cognito's keys, e.g. ``autoConfirmUser``).

        The keys given replace those received; the others are kept.
        """
        return attrs.evolve(self, response={**self.response, **response})


@attrs.frozen
class CognitoPreSignUp(UserPoolTrigger, type_name="eventbus.aws.CognitoPreSignUp"):
    """``PreSignUp_*``: before a user signs up; respond with ``autoConfirmUser`` and friends.

    .. versionadded:: 0.2
    """

    @property
    def validation_data(self) -> Mapping[str, Any]:
        """The ``request.validationData`` the app sent with the sign-up, or an empty mapping."""
        return _mapping(self.request.get("validationData"))


@attrs.frozen
class CognitoPostConfirmation(UserPoolTrigger, type_name="eventbus.aws.CognitoPostConfirmation"):
    """``PostConfirmation_*``: after a user confirmed sign-up or a forgotten password.

    .. versionadded:: 0.2
    """


@attrs.frozen
class CognitoPreAuthentication(UserPoolTrigger, type_name="eventbus.aws.CognitoPreAuthentication"):
    """``PreAuthentication_Authentication``: before a sign-in is checked.

    .. versionadded:: 0.2
    """


@attrs.frozen
class CognitoPostAuthentication(
    UserPoolTrigger, type_name="eventbus.aws.CognitoPostAuthentication"
):
    """``PostAuthentication_Authentication``: after a user signed in.

    .. versionadded:: 0.2
    """


@attrs.frozen
class CognitoPreTokenGeneration(
    UserPoolTrigger, type_name="eventbus.aws.CognitoPreTokenGeneration"
):
    """``TokenGeneration_*``: before tokens are issued; respond with claims to override.

    .. versionadded:: 0.2
    """

    @property
    def group_configuration(self) -> Mapping[str, Any]:
        """The user's groups and IAM roles (``request.groupConfiguration``)."""
        return _mapping(self.request.get("groupConfiguration"))


@attrs.frozen
class CognitoCustomMessage(UserPoolTrigger, type_name="eventbus.aws.CognitoCustomMessage"):
    """``CustomMessage_*``: before a verification or invitation message is sent.

    .. versionadded:: 0.2
    """

    @property
    def code_parameter(self) -> str | None:
        """The placeholder for the code in the message (``request.codeParameter``)."""
        return _text(self.request.get("codeParameter"))


@attrs.frozen
class CognitoDefineAuthChallenge(
    UserPoolTrigger, type_name="eventbus.aws.CognitoDefineAuthChallenge"
):
    """``DefineAuthChallenge_Authentication``: choose the next custom challenge.

    .. versionadded:: 0.2
    """

    @property
    def session(self) -> list[Mapping[str, Any]]:
        """The challenges answered so far (``request.session``)."""
        return _session(self.request.get("session"))

    @property
    def user_not_found(self) -> bool:
        """Whether Cognito did not find the user (``request.userNotFound``)."""
        return self.request.get("userNotFound") is True


@attrs.frozen
class CognitoCreateAuthChallenge(
    UserPoolTrigger, type_name="eventbus.aws.CognitoCreateAuthChallenge"
):
    """``CreateAuthChallenge_Authentication``: create a custom challenge.

    .. versionadded:: 0.2
    """

    @property
    def challenge_name(self) -> str | None:
        """The challenge to create (``request.challengeName``)."""
        return _text(self.request.get("challengeName"))

    @property
    def session(self) -> list[Mapping[str, Any]]:
        """The challenges answered so far (``request.session``)."""
        return _session(self.request.get("session"))


@attrs.frozen
class CognitoVerifyAuthChallengeResponse(
    UserPoolTrigger, type_name="eventbus.aws.CognitoVerifyAuthChallengeResponse"
):
    """``VerifyAuthChallengeResponse_Authentication``: check a challenge answer.

    .. versionadded:: 0.2
    """

    @property
    def challenge_answer(self) -> Any:
        """The user's answer (``request.challengeAnswer``)."""
        return self.request.get("challengeAnswer")

    @property
    def private_challenge_parameters(self) -> Mapping[str, Any]:
        """What CreateAuthChallenge kept to check the answer (``request.privateChallengeParameters``)."""
        return _mapping(self.request.get("privateChallengeParameters"))


@attrs.frozen
class CognitoUserMigration(UserPoolTrigger, type_name="eventbus.aws.CognitoUserMigration"):
    """``UserMigration_*``: migrate a user from another directory at sign-in.

    .. versionadded:: 0.2
    """

    @property
    def password(self) -> str | None:
        """The password the user signed in with (``request.password``; absent for ForgotPassword)."""
        return _text(self.request.get("password"))


@attrs.frozen
class CognitoCustomEmailSender(UserPoolTrigger, type_name="eventbus.aws.CognitoCustomEmailSender"):
    """``CustomEmailSender_*``: send an email with a third-party provider.

    .. versionadded:: 0.2
    """


@attrs.frozen
class CognitoCustomSmsSender(UserPoolTrigger, type_name="eventbus.aws.CognitoCustomSmsSender"):
    """``CustomSMSSender_*``: send an SMS with a third-party provider.

    .. versionadded:: 0.2
    """


#: triggerSource prefix (before the first ``_``) -> event class.
TRIGGER_CLASSES: Mapping[str, type[UserPoolTrigger]] = {
    "PreSignUp": CognitoPreSignUp,
    "PostConfirmation": CognitoPostConfirmation,
    "PreAuthentication": CognitoPreAuthentication,
    "PostAuthentication": CognitoPostAuthentication,
    "TokenGeneration": CognitoPreTokenGeneration,
    # Placeholders some published samples use for the token-generation trigger.
    "PreTokenGen": CognitoPreTokenGeneration,
    "PreTokenGeneration": CognitoPreTokenGeneration,
    "CustomMessage": CognitoCustomMessage,
    "DefineAuthChallenge": CognitoDefineAuthChallenge,
    "CreateAuthChallenge": CognitoCreateAuthChallenge,
    "VerifyAuthChallengeResponse": CognitoVerifyAuthChallengeResponse,
    "UserMigration": CognitoUserMigration,
    "CustomEmailSender": CognitoCustomEmailSender,
    "CustomSMSSender": CognitoCustomSmsSender,
}
