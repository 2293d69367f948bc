"""Writes on opportunities that do more than save validated fields."""

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models import Opportunity


def stage_fields(*, stage, moved, probability=None, closed_at=None, at=None):
    """The ``(probability, closed_at)`` of an opportunity at ``stage``: the one home of the stage rules.

    - ``probability``: the one chosen, else the stage's default
      (``Opportunity.DEFAULT_PROBABILITY``);
    - ``closed_at``: None at an open stage; at a closed or lost one, ``at``
      (default: now) when the opportunity ``moved`` there (or is new), else the
      stored ``closed_at`` (when it has one).

    Writers with model instances call :func:`opportunity_set_stage`; the demo
    data, written as plain rows, calls this directly.
    """
    if probability is None:
        probability = Opportunity.DEFAULT_PROBABILITY[stage]
    if stage in Opportunity.OPEN_STAGES:
        closed_at = None
    elif moved or closed_at is None:
        closed_at = at or timezone.now()
    return probability, closed_at


def lost_reason_text(text):
    """A lost reason as kept: one line, its line breaks and runs of spaces one space, none around it.

    A form's text field shows it so, and a browser sends it back so (it drops a value's line breaks):
    the reason a lost deal's form sends back with a move away from ``lost`` is the one it has.
    """
    return " ".join(text.split())


def check_lost_reason(*, opportunity, stage, lost_reason):
    """The lost reason rule: only a deal that is lost, or is being moved to ``lost``, may be given one.

    Raises ``ValidationError`` on ``lost_reason`` when ``opportunity``, going to ``stage``, is given a
    reason otherwise (the API's serializer, ``Opportunity.clean`` for the admin's forms). The reason it
    already has, sent back as it is with a move away from ``lost``, is no new one: the move clears it
    (:func:`opportunity_set_stage`).
    """
    reason = lost_reason_text(lost_reason or "")
    if reason and stage != Opportunity.Stage.LOST and reason != lost_reason_text(opportunity.stored_lost_reason):
        raise ValidationError(
            {"lost_reason": _("Only a lost deal has a lost reason: move it to “Lost”, or leave the reason empty.")}
        )


def opportunity_set_stage(*, opportunity, stage, probability=None, at=None, lost_reason=None):
    """Put ``opportunity`` at ``stage`` (not saved), as every writer does: the API, the admin,
    imports, the legacy import and ``Opportunity.save()`` for anything else.

    Without a ``probability``, an opportunity that is new or moves to another
    stage takes the new stage's default, and one that stays keeps its own.
    ``at`` is when it moved (default: now), for ``closed_at``. ``lost_reason``,
    when given, is the deal's new one (:func:`check_lost_reason` says who may
    have one), kept as one line (:func:`lost_reason_text`); at any stage but
    ``lost`` its reason is cleared (its history keeps it).
    """
    moved = opportunity.stored_stage is None or stage != opportunity.stored_stage
    if probability is None and not moved:
        probability = opportunity.probability
    opportunity.stage = stage
    opportunity.probability, opportunity.closed_at = stage_fields(
        stage=stage, moved=moved, probability=probability, closed_at=opportunity.closed_at, at=at
    )
    if lost_reason is not None:
        opportunity.lost_reason = lost_reason
    opportunity.lost_reason = lost_reason_text(opportunity.lost_reason) if stage == Opportunity.Stage.LOST else ""
    # Applied: save() does not apply the rules a second time (which would move ``closed_at`` to now).
    opportunity.stage_rules_applied = True


def move_to_stage(opportunities, stage, *, lost_reason=None):
    """Move each of ``opportunities`` that is not at ``stage`` there, as the API and the board move one:
    the stage rules (default probability, ``closed_at``), then its save (the stage-change log, the
    history entry, the event). ``lost_reason`` is given to those moved to ``lost``, and to those lost
    already without one (those with one keep theirs). Returns the opportunities moved, and those given
    the reason without a move (the admin's bulk "Set stage…")."""
    check_lost_reason(opportunity=Opportunity(), stage=stage, lost_reason=lost_reason)
    moved, reasoned = [], []
    for opportunity in opportunities:
        if opportunity.stage != stage:
            moved.append(opportunity)
        elif stage == Opportunity.Stage.LOST and lost_reason and not opportunity.lost_reason:
            reasoned.append(opportunity)
        else:
            continue
        opportunity_set_stage(opportunity=opportunity, stage=stage, lost_reason=lost_reason or None)
        opportunity.save()
    return moved, reasoned
