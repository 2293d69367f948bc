"""Writes on opportunities that do more than save validated fields."""

from django.utils import timezone

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


def opportunity_set_stage(*, opportunity, stage, probability=None, at=None):
    """Put ``opportunity`` at ``stage`` (not saved), as every writer does: the API, the admin,
    imports, the legacy import and ``Opportunity.save()`` for anything else.

    Without a ``probability``, an opportunity that is new or moves to another
    stage takes the new stage's default, and one that stays keeps its own.
    ``at`` is when it moved (default: now), for ``closed_at``.
    """
    moved = opportunity.stored_stage is None or stage != opportunity.stored_stage
    if probability is None and not moved:
        probability = opportunity.probability
    opportunity.stage = stage
    opportunity.probability, opportunity.closed_at = stage_fields(
        stage=stage, moved=moved, probability=probability, closed_at=opportunity.closed_at, at=at
    )
    # Applied: save() does not apply the rules a second time (which would move ``closed_at`` to now).
    opportunity.stage_rules_applied = True


def move_to_stage(opportunities, stage):
    """Move each of ``opportunities`` that is not at ``stage`` there, as the API and the board move one:
    the stage rules (default probability, ``closed_at``), then its save (the stage-change log, the
    history entry, the event). Returns the opportunities moved (the admin's bulk "Set stage…")."""
    moved = []
    for opportunity in opportunities:
        if opportunity.stage == stage:
            continue
        opportunity_set_stage(opportunity=opportunity, stage=stage)
        opportunity.save()
        moved.append(opportunity)
    return moved
